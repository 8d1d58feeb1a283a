#!/usr/bin/env node
// End-to-end test: examples/spa in headless Chromium against a real tessera binary, on two origins.
//
// For each set-up this starts tessera (TESSERA_BIN, default target/release/tessera; nothing is
// built here) on 127.0.0.1:8080 with a fresh SQLite file and that set-up's environment, serves
// examples/spa on ports 5173 (an allowed origin) and 5174 (an origin NOT in ALLOWED_ORIGINS), and
// walks the whole flow by clicking and typing in Debian's Chromium (/usr/bin/chromium, driven by
// playwright-core; no browser is downloaded), checking what a person sees.
//
//   node e2e/spa.e2e.mjs                  every set-up
//   node e2e/spa.e2e.mjs same-site ...    only the named set-ups
//
// Environment: TESSERA_BIN, CHROMIUM_BIN (default /usr/bin/chromium), E2E_ARTIFACTS (default
// target/e2e: screenshots and server logs), E2E_TIMEOUT_MS (default 10000, per UI wait).
// Exit code 0 when every check passed, 1 otherwise. The servers and browsers are always stopped.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { serveStatic } from "./static-server.mjs";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SPA_DIR = path.join(REPO_ROOT, "examples", "spa");
const TESSERA_BIN = path.resolve(
  process.env.TESSERA_BIN || path.join(REPO_ROOT, "target", "release", "tessera"),
);
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARTIFACTS = path.resolve(process.env.E2E_ARTIFACTS || path.join(REPO_ROOT, "target", "e2e"));
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 10_000);

const API_PORT = 8080;
const API = `http://localhost:${API_PORT}`;
const PAGE_PORT = 5173;
const FOREIGN_PORT = 5174;

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

// Chromium's own default (a fresh profile) blocks third-party cookies: a cross-site
// `SameSite=None; Secure` cookie is refused with the reason "UserPreferences" unless it is
// `Partitioned`. The "allowed" runs flip the profile setting behind chrome://settings/cookies
// ("Allow third-party cookies") in the fresh profile's Preferences file before Chromium starts:
// cookie_controls_mode 0 = allow, 1 = block third-party cookies, 2 = block them in incognito only.
const ALLOW_THIRD_PARTY_COOKIES_PREFS = { profile: { cookie_controls_mode: 0 } };

const USERNAME = "alice";
const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "an even longer passphrase";
const COOKIE_NAME = "access_token";

const SETUPS = [
  {
    name: "same-site",
    summary: "page http://localhost:5173 -> API http://localhost:8080, SameSite=Lax",
    pageOrigin: `http://localhost:${PAGE_PORT}`,
    foreignOrigin: `http://localhost:${FOREIGN_PORT}`,
    thirdPartyCookies: "blocked",
    env: {
      COOKIE_SAMESITE: "lax",
      COOKIE_SECURE: "true",
      ALLOWED_ORIGINS: `http://localhost:${PAGE_PORT}`,
    },
    cookie: { sameSite: "Lax", partitioned: false },
    flow: fullFlow,
  },
  {
    name: "cross-site-3pc-blocked",
    summary:
      "page http://127.0.0.1:5173 -> API http://localhost:8080, SameSite=None; Secure; Partitioned, " +
      "Chromium's default third-party cookie blocking",
    pageOrigin: `http://127.0.0.1:${PAGE_PORT}`,
    foreignOrigin: `http://127.0.0.1:${FOREIGN_PORT}`,
    thirdPartyCookies: "blocked",
    env: {
      COOKIE_SAMESITE: "none",
      COOKIE_SECURE: "true",
      ALLOWED_ORIGINS: `http://127.0.0.1:${PAGE_PORT}`,
    },
    cookie: { sameSite: "None", partitioned: true },
    flow: fullFlow,
  },
  {
    name: "cross-site-3pc-allowed",
    summary:
      "page http://127.0.0.1:5173 -> API http://localhost:8080, SameSite=None; Secure; Partitioned, " +
      "third-party cookies allowed",
    pageOrigin: `http://127.0.0.1:${PAGE_PORT}`,
    foreignOrigin: `http://127.0.0.1:${FOREIGN_PORT}`,
    thirdPartyCookies: "allowed",
    env: {
      COOKIE_SAMESITE: "none",
      COOKIE_SECURE: "true",
      ALLOWED_ORIGINS: `http://127.0.0.1:${PAGE_PORT}`,
    },
    cookie: { sameSite: "None", partitioned: true },
    flow: fullFlow,
  },
  // Controls: without Partitioned, the cross-site cookie depends on the browser's third-party
  // cookie setting. They prove that the two settings above really differ, i.e. that the
  // "blocked" run passes because of Partitioned and not because nothing was blocked.
  {
    name: "control-unpartitioned-3pc-blocked",
    summary: "as cross-site-3pc-blocked but COOKIE_PARTITIONED=false: the browser must refuse the cookie",
    pageOrigin: `http://127.0.0.1:${PAGE_PORT}`,
    thirdPartyCookies: "blocked",
    env: {
      COOKIE_SAMESITE: "none",
      COOKIE_SECURE: "true",
      COOKIE_PARTITIONED: "false",
      ALLOWED_ORIGINS: `http://127.0.0.1:${PAGE_PORT}`,
    },
    cookie: { sameSite: "None", partitioned: false },
    expectCookieAccepted: false,
    blockedReason: "UserPreferences",
    flow: controlFlow,
  },
  {
    name: "control-unpartitioned-3pc-allowed",
    summary: "as cross-site-3pc-allowed but COOKIE_PARTITIONED=false: the browser must keep the cookie",
    pageOrigin: `http://127.0.0.1:${PAGE_PORT}`,
    thirdPartyCookies: "allowed",
    env: {
      COOKIE_SAMESITE: "none",
      COOKIE_SECURE: "true",
      COOKIE_PARTITIONED: "false",
      ALLOWED_ORIGINS: `http://127.0.0.1:${PAGE_PORT}`,
    },
    cookie: { sameSite: "None", partitioned: false },
    expectCookieAccepted: true,
    flow: controlFlow,
  },
  // The README's "localhost vs 127.0.0.1" trap: the same-site settings used cross-site.
  {
    name: "control-lax-cross-site",
    summary:
      "page http://127.0.0.1:5173 -> API http://localhost:8080 with the same-site settings (SameSite=Lax): " +
      "the browser must refuse the cookie",
    pageOrigin: `http://127.0.0.1:${PAGE_PORT}`,
    thirdPartyCookies: "allowed",
    env: {
      COOKIE_SAMESITE: "lax",
      COOKIE_SECURE: "true",
      ALLOWED_ORIGINS: `http://127.0.0.1:${PAGE_PORT}`,
    },
    cookie: { sameSite: "Lax", partitioned: false },
    expectCookieAccepted: false,
    blockedReason: "SchemefulSameSiteLax",
    flow: controlFlow,
  },
];

// ---------------------------------------------------------------------------------------------
// Reporting

let passed = 0;
let failed = 0;

class CheckFailed extends Error {}

/** Runs one check, logs it, and stops the set-up at the first failure. */
async function check(what, fn) {
  try {
    const result = await fn();
    passed += 1;
    console.log(`    ok   ${what}`);
    return result;
  } catch (err) {
    if (stopping) throw new CheckFailed(`stopped by ${stopping}`);
    failed += 1;
    console.log(`    FAIL ${what}`);
    const text = err instanceof Error ? err.message : String(err);
    console.log(text.replace(/^/gm, "         "));
    throw new CheckFailed(text);
  }
}

function step(text) {
  console.log(`  - ${text}`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Polls `probe` until `accept(value)` or the time-out; the error shows the last value seen. */
async function eventually(probe, accept, describe, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let value;
  for (;;) {
    value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`${describe}; after ${timeout} ms it was ${JSON.stringify(value)}`);
    }
    await sleep(50);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Processes: tessera, the static servers, Chromium

const cleanups = [];
/** The signal that asked us to stop, if any. */
let stopping = null;
/** tessera processes still running: killed on any exit, even one that skips the cleanups. */
const liveServers = new Set();
process.on("exit", () => {
  for (const child of liveServers) child.kill("SIGKILL");
});
/** The browsers of the set-up that is running, for diagnostics. */
let currentDevices = [];

async function runCleanups() {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (err) {
      console.error(`e2e: cleanup failed: ${err.message}`);
    }
  }
}

function portAnswers(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A plain HTTP request to tessera from Node, i.e. not from a browser (for direct checks). */
function rawRequest(method, requestPath, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: API_PORT,
        method,
        path: requestPath,
        headers: { Host: `localhost:${API_PORT}`, ...headers },
        timeout: 5000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${requestPath}: no answer in 5 s`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function findDotenv(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, ".env"))) return path.join(d, ".env");
    if (path.dirname(d) === d) return null;
  }
}

async function startTessera(setup, workDir) {
  for (const host of ["127.0.0.1", "::1"]) {
    if (await portAnswers(host, API_PORT)) {
      throw new Error(
        `something already listens on ${host.includes(":") ? `[${host}]` : host}:${API_PORT}; ` +
          "stop it first (the browser would talk to it instead of the tessera started here)",
      );
    }
  }
  const dotenv = findDotenv(workDir);
  if (dotenv) throw new Error(`${dotenv} exists and would configure the tessera under test; remove it`);

  const logFile = path.join(workDir, "tessera.log");
  const log = fs.openSync(logFile, "w");
  // A clean environment: nothing from the calling shell may configure the server.
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? workDir,
    DATABASE_URL: path.join(workDir, "tessera.db"),
    BIND_ADDR: `127.0.0.1:${API_PORT}`,
    // Metrics on a free loopback port, not the fixed default (servers may overlap).
    METRICS_BIND_ADDR: "127.0.0.1:0",
    // A password is always needed to end another session, so the SPA's prompt is exercised.
    FRESH_SESSION_SECONDS: "0",
    RUST_LOG: "info",
    ...setup.env,
  };
  const child = spawn(TESSERA_BIN, [], { cwd: workDir, env, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  liveServers.add(child);
  child.once("exit", () => liveServers.delete(child));
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.once("error", (err) => {
      exited = { code: null, signal: null, error: err };
      resolve(exited);
    });
  });
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    let timer;
    const done = await Promise.race([
      exitedPromise,
      new Promise((resolve) => (timer = setTimeout(() => resolve(null), 10_000))),
    ]);
    clearTimeout(timer);
    if (!done) {
      child.kill("SIGKILL");
      await exitedPromise;
    }
  };
  cleanups.push(stop);

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      throw new Error(
        `tessera exited before answering (${exited.error?.message ?? `code ${exited.code}, signal ${exited.signal}`}):\n` +
          fs.readFileSync(logFile, "utf8"),
      );
    }
    try {
      const res = await rawRequest("GET", "/health");
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`tessera did not answer /health within 30 s:\n${fs.readFileSync(logFile, "utf8")}`);
    }
    await sleep(100);
  }
  return { pid: child.pid, logFile, stop };
}

async function startStaticServers() {
  const servers = [];
  for (const port of [PAGE_PORT, FOREIGN_PORT]) {
    servers.push(await serveStatic({ root: SPA_DIR, host: "127.0.0.1", port }));
    // `localhost` may resolve to ::1 first; serve there too where the machine has IPv6.
    try {
      servers.push(await serveStatic({ root: SPA_DIR, host: "::1", port }));
    } catch (err) {
      if (!["EADDRNOTAVAIL", "EAFNOSUPPORT"].includes(err.code)) throw err;
    }
  }
  const close = async () => {
    await Promise.all(servers.map((s) => s.close()));
  };
  cleanups.push(close);
  return close;
}

/** One "device": its own Chromium with a fresh profile (user-data-dir). */
async function openDevice(setup, workDir, name) {
  const userDataDir = fs.mkdtempSync(path.join(workDir, `chromium-${name}-`));
  if (setup.thirdPartyCookies === "allowed") {
    fs.mkdirSync(path.join(userDataDir, "Default"));
    fs.writeFileSync(
      path.join(userDataDir, "Default", "Preferences"),
      JSON.stringify(ALLOW_THIRD_PARTY_COOKIES_PREFS),
    );
  }
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_BIN,
    args: CHROMIUM_ARGS,
    headless: true,
    locale: "en-US",
    viewport: { width: 1000, height: 900 },
    // Our own signal handlers close the browsers, then stop tessera and remove the profiles.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  let closing = null;
  // Every caller waits for the same close: Chromium must be gone before its profile is removed.
  const close = () => (closing ??= context.close());
  cleanups.push(close);
  context.setDefaultTimeout(TIMEOUT);
  const device = { name, context, close, pageErrors: [], console: [], blockedCookies: [] };
  currentDevices.push(device);
  device.page = context.pages()[0] ?? (await context.newPage());
  device.watch = (page) => {
    page.on("pageerror", (err) => device.pageErrors.push(`${page.url()}: ${err.message}`));
    page.on("console", (msg) => {
      device.console.push(`[${msg.type()}] ${page.url()}: ${msg.text()}`);
      if (device.console.length > 200) device.console.shift();
    });
  };
  device.watch(device.page);
  // Why the browser refused a Set-Cookie, straight from Chromium (for the log and the controls).
  const cdp = await context.newCDPSession(device.page);
  await cdp.send("Network.enable");
  cdp.on("Network.responseReceivedExtraInfo", (event) => {
    for (const blocked of event.blockedCookies ?? []) {
      device.blockedCookies.push({
        name: blocked.cookie?.name ?? blocked.cookieLine?.split("=")[0],
        reasons: blocked.blockedReasons,
      });
    }
  });
  return device;
}

// ---------------------------------------------------------------------------------------------
// The SPA, as a person uses it

function spaUrl(origin) {
  return `${origin}/?api=${encodeURIComponent(API)}`;
}

/** Waits until the SPA has no request in flight (it counts them in body[data-pending]). */
async function idle(page) {
  await page.waitForFunction(
    () =>
      document.body?.dataset.pending === "0" &&
      document.getElementById("status")?.dataset.state !== "loading",
    null,
    { timeout: TIMEOUT },
  );
}

async function visibleText(page, selector) {
  const locator = page.locator(selector);
  if (!(await locator.isVisible())) return null;
  return (await locator.innerText()).trim();
}

async function expectStatus(page, text) {
  await eventually(
    () => visibleText(page, "#status"),
    (value) => value === text,
    `the status should read ${JSON.stringify(text)}`,
  );
}

async function expectError(page, detail) {
  await eventually(
    () => visibleText(page, "#error-detail"),
    (value) => (detail instanceof RegExp ? detail.test(value ?? "") : value === detail),
    `the error box should show ${detail instanceof RegExp ? detail : JSON.stringify(detail)}`,
  );
}

async function expectNoError(page) {
  const text = await visibleText(page, "#error");
  assert(text === null, `no error should be shown, but the page shows ${JSON.stringify(text)}`);
}

async function expectMessage(page, text) {
  await eventually(
    () => visibleText(page, "#message"),
    (value) => value === text,
    `the message should read ${JSON.stringify(text)}`,
  );
}

function isApiCall(response, method, apiPath) {
  const url = new URL(response.url());
  return (
    url.origin === API && url.pathname === apiPath && response.request().method() === method
  );
}

/** Starts waiting for tessera's answer to `method apiPath`, before the click that causes it. */
function nextApiResponse(page, method, apiPath) {
  const response = page.waitForResponse((response) => isApiCall(response, method, apiPath), {
    timeout: TIMEOUT,
  });
  // A check that fails before awaiting it must not turn into an unhandled rejection.
  response.catch(() => {});
  return response;
}

async function clickButton(page, name) {
  await page.getByRole("button", { name, exact: true }).click();
}

async function typeCredentials(page, username, password) {
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
}

/** Checks the answer's status and that the page shows exactly its `detail`. */
async function expectErrorShown(page, response, status, detail) {
  assertEqual(response.status(), status, `${response.request().method()} ${new URL(response.url()).pathname} status`);
  const body = await response.json();
  if (detail !== undefined) {
    if (detail instanceof RegExp) assert(detail.test(body.detail), `detail ${JSON.stringify(body.detail)} should match ${detail}`);
    else assertEqual(body.detail, detail, "the answer's detail");
  }
  await expectError(page, body.detail);
  return body.detail;
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`    (screenshot: ${path.relative(process.cwd(), file)})`);
}

async function setCookieHeaders(response) {
  return (await response.headersArray())
    .filter((h) => h.name.toLowerCase() === "set-cookie")
    .map((h) => h.value);
}

/** Cookie text with the session token left out, for messages. */
function redact(text) {
  return text.replace(new RegExp(`(${COOKIE_NAME}=)[^;]*`, "g"), "$1[redacted]");
}

async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === COOKIE_NAME) ?? null;
}

async function expectSessionRows(page, count) {
  await eventually(
    () => page.locator("#sessions-body tr").count(),
    (n) => n === count,
    `the session list should have ${count} row(s)`,
  );
  const summary = await visibleText(page, "#sessions-count");
  assertEqual(summary, count === 1 ? "1 active session" : `${count} active sessions`, "the session count");
}

// ---------------------------------------------------------------------------------------------
// Flows

async function fullFlow(setup, workDir) {
  const laptop = await openDevice(setup, workDir, "laptop");
  const page = laptop.page;
  let loginRequestHeaders;
  let loginSetCookie;

  step(`open ${spaUrl(setup.pageOrigin)}`);
  await check("the page loads, asks tessera who is signed in, and shows \"Signed out\" without an error", async () => {
    const me = nextApiResponse(page, "GET", "/users/me");
    await page.goto(spaUrl(setup.pageOrigin));
    assertEqual((await me).status(), 401, "GET /users/me on load");
    await idle(page);
    await expectStatus(page, "Signed out");
    await expectNoError(page);
    assertEqual(await visibleText(page, "#api-base"), API, "the API base shown");
  });

  step("register");
  await check("a too-short password is refused: 422 and its detail is shown", async () => {
    await typeCredentials(page, USERNAME, "short");
    const answer = nextApiResponse(page, "POST", "/register");
    await clickButton(page, "Register");
    await expectErrorShown(page, await answer, 422, /password/);
    await idle(page);
  });
  await check(`registering ${USERNAME} succeeds: 201 and "Registered ${USERNAME}. You can log in now."`, async () => {
    await typeCredentials(page, USERNAME, PASSWORD);
    const answer = nextApiResponse(page, "POST", "/register");
    await clickButton(page, "Register");
    assertEqual((await answer).status(), 201, "POST /register status");
    await expectMessage(page, `Registered ${USERNAME}. You can log in now.`);
    await expectNoError(page);
    await idle(page);
  });
  await check("registering the same name again shows 409 \"Username already taken.\"", async () => {
    const answer = nextApiResponse(page, "POST", "/register");
    await clickButton(page, "Register");
    await expectErrorShown(page, await answer, 409, "Username already taken.");
    await idle(page);
  });

  step("log in");
  await check("a wrong password shows 401 \"Incorrect username or password.\" and stays signed out", async () => {
    await typeCredentials(page, USERNAME, "not her password");
    const answer = nextApiResponse(page, "POST", "/login");
    await clickButton(page, "Log in");
    await expectErrorShown(page, await answer, 401, "Incorrect username or password.");
    await idle(page);
    await expectStatus(page, "Signed out");
  });
  await check(`the right password signs in: "Signed in as ${USERNAME}", the profile and one session ("This device")`, async () => {
    await typeCredentials(page, USERNAME, PASSWORD);
    const answer = nextApiResponse(page, "POST", "/login");
    const me = nextApiResponse(page, "GET", "/users/me");
    await clickButton(page, "Log in");
    const login = await answer;
    assertEqual(login.status(), 200, "POST /login status");
    loginRequestHeaders = await login.request().allHeaders();
    assertEqual((await me).status(), 200, "GET /users/me after login");
    await idle(page);
    await expectStatus(page, `Signed in as ${USERNAME}`);
    await expectNoError(page);
    await expectMessage(page, `Welcome, ${USERNAME}.`);
    assertEqual(await visibleText(page, "#profile-username"), USERNAME, "the profile's username");
    await expectSessionRows(page, 1);
    assert(
      (await page.locator("#sessions-body tr", { hasText: "This device" }).count()) === 1,
      "the one session should be marked \"This device\"",
    );
    const cookies = await setCookieHeaders(login);
    assertEqual(cookies.length, 1, "Set-Cookie headers on the login answer");
    loginSetCookie = redact(cookies[0]);
    const attrs = loginSetCookie.split(";").map((a) => a.trim().toLowerCase());
    for (const want of ["secure", `samesite=${setup.cookie.sameSite.toLowerCase()}`, "path=/"]) {
      assert(attrs.includes(want), `the login's Set-Cookie should have ${want}: ${loginSetCookie}`);
    }
    assertEqual(attrs.includes("partitioned"), setup.cookie.partitioned, `Partitioned in the login's Set-Cookie (${loginSetCookie})`);
  });
  await screenshot(page, `signed-in-${setup.name}.png`);

  step("the session cookie is HttpOnly");
  await check("page script cannot read it: document.cookie on the SPA's page lacks it", async () => {
    const visible = await page.evaluate(() => document.cookie);
    assert(!visible.includes(COOKIE_NAME), `document.cookie shows the session cookie: ${redact(visible)}`);
  });
  await check(`nor on a page of the API's own origin (${API}/health)`, async () => {
    const apiPage = await laptop.context.newPage();
    laptop.watch(apiPage);
    await apiPage.goto(`${API}/health`);
    const visible = await apiPage.evaluate(() => document.cookie);
    await apiPage.close();
    assert(!visible.includes(COOKIE_NAME), `document.cookie shows the session cookie: ${redact(visible)}`);
  });
  await check("the Set-Cookie says HttpOnly, and the browser stored it HttpOnly and Secure (partitioned by the page's site when cross-site)", async () => {
    assert(/;\s*HttpOnly\b/i.test(loginSetCookie), `the login's Set-Cookie lacks HttpOnly: ${loginSetCookie}`);
    const cookie = await sessionCookie(laptop.context);
    assert(cookie, `the browser holds no ${COOKIE_NAME} cookie; blocked: ${JSON.stringify(laptop.blockedCookies)}`);
    assertEqual(cookie.domain, "localhost", "the cookie's host");
    assertEqual(cookie.httpOnly, true, "httpOnly");
    assertEqual(cookie.secure, true, "secure");
    assertEqual(cookie.sameSite, setup.cookie.sameSite, "sameSite");
    const site = setup.pageOrigin.replace(/:\d+$/, "");
    assertEqual(cookie.partitionKey ?? null, setup.cookie.partitioned ? site : null, "partitionKey");
  });

  step("reload");
  await check("after a reload the page is still signed in (the cookie is stored and sent back)", async () => {
    const me = nextApiResponse(page, "GET", "/users/me");
    await page.reload();
    assertEqual((await me).status(), 200, "GET /users/me on reload");
    await idle(page);
    await expectStatus(page, `Signed in as ${USERNAME}`);
  });

  step(`a page from ${setup.foreignOrigin}, an origin not in ALLOWED_ORIGINS, in the same browser`);
  const foreign = await laptop.context.newPage();
  laptop.watch(foreign);
  const refused = /^Could not reach the API at http:\/\/localhost:8080: the request failed or the browser refused the answer\./;
  await check("it cannot see who is signed in: \"Signed out\" and a visible error", async () => {
    await foreign.goto(spaUrl(setup.foreignOrigin));
    await idle(foreign);
    await expectStatus(foreign, "Signed out");
    await expectError(foreign, refused);
  });
  await check("logging in from it fails: the error is shown and it stays signed out", async () => {
    await typeCredentials(foreign, USERNAME, PASSWORD);
    await clickButton(foreign, "Log in");
    await idle(foreign);
    await expectError(foreign, refused);
    await expectStatus(foreign, "Signed out");
  });
  await check("a script on it that POSTs /logout with the cookie (no preflight) is refused by tessera", async () => {
    const outcome = await foreign.evaluate(async (api) => {
      try {
        const res = await fetch(`${api}/logout`, { method: "POST", credentials: "include" });
        return `read: ${res.status}`;
      } catch (err) {
        return `refused: ${err.message}`;
      }
    }, API);
    assert(outcome.startsWith("refused"), `the foreign page could read the answer: ${outcome}`);
  });
  await foreign.close();
  await check("the same forged request from outside a browser, with this browser's cookie, is 403", async () => {
    const cookie = await sessionCookie(laptop.context);
    const res = await rawRequest("POST", "/logout", {
      Origin: setup.foreignOrigin,
      Cookie: `${COOKIE_NAME}=${cookie.value}`,
      "User-Agent": loginRequestHeaders["user-agent"],
      "Accept-Language": loginRequestHeaders["accept-language"] ?? "",
    });
    assertEqual(res.status, 403, "status");
    assertEqual(
      res.json?.detail,
      `Cross-site request refused: origin ${setup.foreignOrigin} is not allowed.`,
      "detail",
    );
  });
  await check("and the session survived: the allowed page, reloaded, is still signed in", async () => {
    const me = nextApiResponse(page, "GET", "/users/me");
    await page.reload();
    assertEqual((await me).status(), 200, "GET /users/me");
    await idle(page);
    await expectStatus(page, `Signed in as ${USERNAME}`);
  });

  step("a second device signs in, and the first one ends its session");
  const phone = await openDevice(setup, workDir, "phone");
  await check("the second device (its own browser) logs in", async () => {
    await phone.page.goto(spaUrl(setup.pageOrigin));
    await idle(phone.page);
    await expectStatus(phone.page, "Signed out");
    await typeCredentials(phone.page, USERNAME, PASSWORD);
    await clickButton(phone.page, "Log in");
    await idle(phone.page);
    await expectStatus(phone.page, `Signed in as ${USERNAME}`);
  });
  await check("the first device's \"Refresh sessions\" lists 2 active sessions", async () => {
    const answer = nextApiResponse(page, "GET", "/users/me/sessions");
    await clickButton(page, "Refresh sessions");
    assertEqual((await answer).status(), 200, "GET /users/me/sessions");
    await idle(page);
    await expectSessionRows(page, 2);
  });
  const otherRow = page.locator("#sessions-body tr", { hasNotText: "This device" });
  const revokeOther = () => otherRow.getByRole("button", { name: /^Revoke/ }).click();
  const otherId = await otherRow.getAttribute("data-session-id");
  const revokePath = `/users/me/sessions/${otherId}`;
  await check("Revoke without a password: 403 re-authentication required, and a password field appears", async () => {
    const answer = nextApiResponse(page, "DELETE", revokePath);
    await revokeOther();
    await expectErrorShown(page, await answer, 403, "Re-authentication required: send your password, or sign in again.");
    await idle(page);
    assert(
      await page.getByLabel("Your password, to end another session").isVisible(),
      "the re-authentication password field should be visible",
    );
    await screenshot(page, `sessions-${setup.name}.png`);
  });
  await check("Revoke with a wrong password: 403 \"Incorrect password.\"", async () => {
    await page.getByLabel("Your password, to end another session").fill("not her password");
    const answer = nextApiResponse(page, "DELETE", revokePath);
    await revokeOther();
    await expectErrorShown(page, await answer, 403, "Incorrect password.");
    await idle(page);
  });
  await check("Revoke with the password: 204, \"Session ended\", 1 session left", async () => {
    await page.getByLabel("Your password, to end another session").fill(PASSWORD);
    const answer = nextApiResponse(page, "DELETE", revokePath);
    await revokeOther();
    assertEqual((await answer).status(), 204, `DELETE ${revokePath}`);
    await idle(page);
    await expectNoError(page);
    await expectMessage(page, "Session ended: that device is signed out.");
    await expectSessionRows(page, 1);
    assert(
      !(await page.getByLabel("Your password, to end another session").isVisible()),
      "the re-authentication field should be gone",
    );
  });
  await check("the second device, reloaded, is signed out (its /users/me is 401)", async () => {
    const me = nextApiResponse(phone.page, "GET", "/users/me");
    await phone.page.reload();
    assertEqual((await me).status(), 401, "GET /users/me");
    await idle(phone.page);
    await expectStatus(phone.page, "Signed out");
  });
  await phone.close();

  step("change the password");
  await check("a wrong current password shows 403 \"Incorrect password.\"", async () => {
    await page.getByLabel("Current password", { exact: true }).fill("not her password");
    await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    const answer = nextApiResponse(page, "PUT", "/users/me/password");
    await clickButton(page, "Change password");
    await expectErrorShown(page, await answer, 403, "Incorrect password.");
    await idle(page);
    await expectStatus(page, `Signed in as ${USERNAME}`);
  });
  await check("a too-short new password shows the 422 detail", async () => {
    await page.getByLabel("Current password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("New password", { exact: true }).fill("short");
    const answer = nextApiResponse(page, "PUT", "/users/me/password");
    await clickButton(page, "Change password");
    await expectErrorShown(page, await answer, 422, /password/);
    await idle(page);
  });
  await check("the change succeeds: a new session cookie, still signed in, 1 session", async () => {
    const before = await sessionCookie(laptop.context);
    await page.getByLabel("Current password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    const answer = nextApiResponse(page, "PUT", "/users/me/password");
    await clickButton(page, "Change password");
    const response = await answer;
    assertEqual(response.status(), 200, "PUT /users/me/password");
    await idle(page);
    await expectNoError(page);
    await expectMessage(page, "Password changed. Every other session has been signed out.");
    await expectStatus(page, `Signed in as ${USERNAME}`);
    await expectSessionRows(page, 1);
    const after = await sessionCookie(laptop.context);
    assert(after && after.value !== before.value, "the browser should hold a new session cookie");
    const cookies = await setCookieHeaders(response);
    assertEqual(
      cookies.some((c) => /;\s*Partitioned\b/i.test(c)),
      setup.cookie.partitioned,
      "Partitioned in the password change's Set-Cookie",
    );
  });

  step("log out");
  await check("\"Log out\" ends the session: the next /users/me is 401 and the page shows \"Signed out\"", async () => {
    const logout = nextApiResponse(page, "POST", "/logout");
    const me = nextApiResponse(page, "GET", "/users/me");
    await clickButton(page, "Log out");
    assertEqual((await logout).status(), 200, "POST /logout");
    assertEqual((await me).status(), 401, "GET /users/me after logout");
    await idle(page);
    await expectStatus(page, "Signed out");
    await expectMessage(page, "You are signed out.");
    await expectNoError(page);
  });
  await check("the browser dropped the cookie, and after a reload /users/me is still 401", async () => {
    assertEqual(await sessionCookie(laptop.context), null, "the session cookie after logout");
    const me = nextApiResponse(page, "GET", "/users/me");
    await page.reload();
    assertEqual((await me).status(), 401, "GET /users/me on reload");
    await idle(page);
    await expectStatus(page, "Signed out");
    await expectNoError(page);
  });

  step("sign in again");
  await check("the old password is refused", async () => {
    await typeCredentials(page, USERNAME, PASSWORD);
    const answer = nextApiResponse(page, "POST", "/login");
    await clickButton(page, "Log in");
    await expectErrorShown(page, await answer, 401, "Incorrect username or password.");
    await idle(page);
    await expectStatus(page, "Signed out");
  });
  await check("the new password signs in, and logging out signs out again", async () => {
    await typeCredentials(page, USERNAME, NEW_PASSWORD);
    await clickButton(page, "Log in");
    await idle(page);
    await expectStatus(page, `Signed in as ${USERNAME}`);
    const me = nextApiResponse(page, "GET", "/users/me");
    await clickButton(page, "Log out");
    assertEqual((await me).status(), 401, "GET /users/me after logout");
    await idle(page);
    await expectStatus(page, "Signed out");
  });

  await check("the SPA threw no uncaught exception", async () => {
    assert(laptop.pageErrors.length === 0 && phone.pageErrors.length === 0,
      [...laptop.pageErrors, ...phone.pageErrors].join("\n"));
  });
}

async function controlFlow(setup, workDir) {
  const device = await openDevice(setup, workDir, "browser");
  const page = device.page;
  step(`open ${spaUrl(setup.pageOrigin)}, register and log in`);
  await check("register succeeds", async () => {
    await page.goto(spaUrl(setup.pageOrigin));
    await idle(page);
    await expectStatus(page, "Signed out");
    await typeCredentials(page, USERNAME, PASSWORD);
    const answer = nextApiResponse(page, "POST", "/register");
    await clickButton(page, "Register");
    assertEqual((await answer).status(), 201, "POST /register");
    await idle(page);
  });
  if (setup.expectCookieAccepted) {
    await check("login works with an unpartitioned cookie: third-party cookies really are allowed", async () => {
      const login = nextApiResponse(page, "POST", "/login");
      await clickButton(page, "Log in");
      const response = await login;
      assertEqual(response.status(), 200, "POST /login");
      assert(!(await setCookieHeaders(response)).some((c) => /Partitioned/i.test(c)), "the cookie should not be Partitioned");
      await idle(page);
      await expectStatus(page, `Signed in as ${USERNAME}`);
      const cookie = await sessionCookie(device.context);
      assert(cookie && !cookie.partitionKey, `expected an unpartitioned cookie, got ${JSON.stringify(cookie && { ...cookie, value: "..." })}`);
    });
  } else {
    await check(`login answers 200, but Chromium refuses the cookie ("${setup.blockedReason}"): the page says so`, async () => {
      const login = nextApiResponse(page, "POST", "/login");
      const me = nextApiResponse(page, "GET", "/users/me");
      await clickButton(page, "Log in");
      const response = await login;
      assertEqual(response.status(), 200, "POST /login");
      assert(!(await setCookieHeaders(response)).some((c) => /Partitioned/i.test(c)), "the cookie should not be Partitioned");
      assertEqual((await me).status(), 401, "GET /users/me after login");
      await idle(page);
      await expectStatus(page, "Signed out");
      await expectError(page, /^Logged in, but the browser did not send the session cookie back/);
      assertEqual(await sessionCookie(device.context), null, "the stored session cookie");
      await eventually(
        async () => device.blockedCookies,
        (list) => list.some((b) => b.name === COOKIE_NAME && b.reasons.includes(setup.blockedReason)),
        `Chromium should report the cookie blocked for "${setup.blockedReason}"`,
      );
    });
  }
}

// ---------------------------------------------------------------------------------------------

async function runSetup(setup) {
  console.log(`\n== ${setup.name}: ${setup.summary}`);
  console.log(
    `   tessera: ${Object.entries(setup.env).map(([k, v]) => `${k}=${v}`).join(" ")}; ` +
      `Chromium: third-party cookies ${setup.thirdPartyCookies === "allowed" ? "allowed" : "blocked (its default)"}`,
  );
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `tessera-e2e-${setup.name}-`));
  const cleanupMark = cleanups.length;
  // Runs last of this set-up's clean-ups, after the browsers and tessera have stopped.
  cleanups.push(() => {
    const log = path.join(workDir, "tessera.log");
    if (fs.existsSync(log)) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.copyFileSync(log, path.join(ARTIFACTS, `tessera-${setup.name}.log`));
    }
    fs.rmSync(workDir, { recursive: true, force: true });
  });
  let tessera;
  let ok = false;
  currentDevices = [];
  try {
    tessera = await startTessera(setup, workDir);
    console.log(`   tessera pid ${tessera.pid}, database ${path.join(workDir, "tessera.db")}`);
    await setup.flow(setup, workDir);
    ok = true;
  } catch (err) {
    if (!(err instanceof CheckFailed) && !stopping) {
      failed += 1;
      console.log(`    FAIL ${setup.name} could not run: ${err.stack ?? err}`);
    }
  } finally {
    // Everything this set-up started, newest first: browsers, tessera, then its directory.
    const mine = cleanups.splice(cleanupMark);
    if (!ok && !stopping) {
      await saveDiagnostics(setup, tessera);
    }
    while (mine.length > 0) {
      try {
        await mine.pop()();
      } catch (err) {
        console.error(`e2e: cleanup failed: ${err.message}`);
      }
    }
  }
  return ok;
}

/** On failure: a screenshot of every open page, the browsers' console and tessera's log tail. */
async function saveDiagnostics(setup, tessera) {
  try {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const device of currentDevices) {
      for (const [j, page] of device.context.pages().entries()) {
        const file = path.join(ARTIFACTS, `failure-${setup.name}-${device.name}-${j}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.log(`    (screenshot: ${path.relative(process.cwd(), file)}: ${page.url()})`);
      }
      if (device.console.length > 0) {
        console.log(`    --- ${device.name}'s browser console (last lines) ---`);
        for (const line of device.console.slice(-20)) console.log(`    ${line}`);
      }
      if (device.blockedCookies.length > 0) {
        console.log(`    cookies Chromium refused: ${JSON.stringify(device.blockedCookies)}`);
      }
    }
    if (tessera) {
      const lines = fs.readFileSync(tessera.logFile, "utf8").trimEnd().split("\n");
      console.log("    --- tessera log (last lines) ---");
      for (const line of lines.slice(-30)) {
        console.log(`    ${line.length > 400 ? `${line.slice(0, 400)}...` : line}`);
      }
    }
  } catch (err) {
    console.log(`    (diagnostics failed: ${err.message})`);
  }
}


async function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SETUPS.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(`e2e: unknown set-up(s): ${unknown.join(", ")}; known: ${SETUPS.map((s) => s.name).join(", ")}`);
    return 2;
  }
  const setups = wanted.length > 0 ? SETUPS.filter((s) => wanted.includes(s.name)) : SETUPS;
  for (const [what, file] of [["tessera binary (TESSERA_BIN)", TESSERA_BIN], ["Chromium (CHROMIUM_BIN)", CHROMIUM_BIN]]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      console.error(`e2e: ${what} not found or not executable: ${file}`);
      return 2;
    }
  }
  console.log(`tessera: ${TESSERA_BIN}`);
  console.log(`chromium: ${CHROMIUM_BIN}`);
  console.log(`SPA: ${path.relative(REPO_ROOT, SPA_DIR)} served on ports ${PAGE_PORT} and ${FOREIGN_PORT}`);
  // Artifacts of an earlier run would pass for this run's.
  if (fs.existsSync(ARTIFACTS)) {
    for (const file of fs.readdirSync(ARTIFACTS)) {
      if (/^(signed-in|sessions|failure)-.*\.png$|^tessera-.*\.log$/.test(file)) {
        fs.rmSync(path.join(ARTIFACTS, file));
      }
    }
  }
  await startStaticServers();

  const results = [];
  for (const setup of setups) {
    if (stopping) break;
    results.push([setup.name, await runSetup(setup)]);
  }
  await runCleanups();
  if (stopping) return 128 + (os.constants.signals[stopping] ?? 1);

  console.log("\nset-ups:");
  for (const [name, ok] of results) console.log(`  ${ok ? "ok  " : "FAIL"} ${name}`);
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed === 0 && results.every(([, ok]) => ok) ? 0 : 1;
}

// On a signal the browsers are closed, so the running set-up fails at once and unwinds through its
// own clean-ups (tessera stopped, its directory removed); no further set-up starts.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    stopping = signal;
    console.error(`\ne2e: ${signal}: stopping the servers and browsers`);
    for (const device of currentDevices) device.close().catch(() => {});
    setTimeout(() => process.exit(128 + (os.constants.signals[signal] ?? 1)), 20_000).unref();
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    console.error(`e2e: ${err.stack ?? err}`);
    await runCleanups();
    process.exitCode = 1;
  },
);
