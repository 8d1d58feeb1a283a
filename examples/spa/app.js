// The example SPA: plain DOM, no framework, no build step.
//
// What the user sees always comes from tessera: after logging in, changing the password or logging
// out, the page asks GET /users/me again instead of trusting its own idea of who is signed in, so
// a cookie the browser refused to store or to send shows up at once as "Signed out".

import { ApiError, apiBaseFromLocation, createClient } from "./api.js";

const $ = (id) => document.getElementById(id);

let api;
let pending = 0;
let revokeSession;

// ---------------------------------------------------------------------------------------------
// What the user sees

function showError(err) {
  const box = $("error");
  $("error-detail").textContent = err.detail ?? err.message ?? String(err);
  $("error-code").textContent = err instanceof ApiError ? `(HTTP ${err.status})` : "";
  box.dataset.status = err instanceof ApiError ? String(err.status) : "network";
  box.hidden = false;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = false;
}

function clearNotices() {
  $("error").hidden = true;
  $("error-detail").textContent = "";
  $("error-code").textContent = "";
  delete $("error").dataset.status;
  $("message").hidden = true;
  $("message").textContent = "";
}

function renderSignedOut() {
  $("status").textContent = "Signed out";
  $("status").dataset.state = "signed-out";
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("sessions-body").replaceChildren();
  $("reauth").hidden = true;
  $("reauth-password").value = "";
}

function renderSignedIn(user) {
  $("status").textContent = `Signed in as ${user.username}`;
  $("status").dataset.state = "signed-in";
  $("profile-username").textContent = user.username;
  $("profile-id").textContent = String(user.id);
  $("profile-created").textContent = formatTime(user.created_at);
  // For password managers: which account the password fields belong to.
  for (const input of document.querySelectorAll(".account-username")) input.value = user.username;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
}

function formatTime(rfc3339) {
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? String(rfc3339) : date.toLocaleString();
}

function renderSessions(sessions) {
  const rows = sessions.map((session) => {
    const row = document.createElement("tr");
    row.dataset.sessionId = session.id;
    row.dataset.current = String(session.current);
    const cells = [
      formatTime(session.created_at),
      formatTime(session.last_seen_at),
      session.user_agent ?? "unknown",
      session.ip ?? "unknown",
    ].map((text) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      return cell;
    });
    cells[2].classList.add("device");
    cells[2].title = session.user_agent ?? "";

    const actions = document.createElement("td");
    if (session.current) {
      const badge = document.createElement("strong");
      badge.textContent = "This device ";
      actions.append(badge);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = session.current ? "Sign out here" : "Revoke";
    button.setAttribute(
      "aria-label",
      session.current
        ? "Sign out this device"
        : `Revoke the session signed in at ${formatTime(session.created_at)}`,
    );
    button.addEventListener("click", (event) => {
      event.preventDefault();
      revokeSession(session);
    });
    actions.append(button);
    row.append(...cells, actions);
    return row;
  });
  $("sessions-body").replaceChildren(...rows);
  $("sessions-count").textContent =
    sessions.length === 1 ? "1 active session" : `${sessions.length} active sessions`;
}

// ---------------------------------------------------------------------------------------------
// Talking to tessera

/** Runs one user action: notices cleared, buttons disabled, any error shown with its `detail`. */
function action(fn) {
  return async (arg) => {
    if (arg instanceof Event) arg.preventDefault();
    clearNotices();
    pending += 1;
    document.body.dataset.pending = String(pending);
    for (const button of document.querySelectorAll("button")) button.disabled = true;
    try {
      await fn(arg);
    } catch (err) {
      showError(err);
    } finally {
      pending -= 1;
      document.body.dataset.pending = String(pending);
      if (pending === 0) {
        for (const button of document.querySelectorAll("button")) button.disabled = false;
      }
    }
  };
}

/**
 * Asks tessera who is signed in and shows it. A 401 means signed out; it is an error only when
 * the caller expected a session (`expectSession`), e.g. right after a successful login.
 */
async function refreshUser({ expectSession = false } = {}) {
  let user;
  try {
    user = await api.me();
  } catch (err) {
    renderSignedOut();
    if (err instanceof ApiError && err.status === 401 && !expectSession) {
      return null;
    }
    throw err;
  }
  renderSignedIn(user);
  await refreshSessions();
  return user;
}

async function refreshSessions() {
  renderSessions(await api.sessions());
}

const cookieRefused = new Error(
  "Logged in, but the browser did not send the session cookie back, so you are still signed out. " +
    "The browser refused or withheld the cookie: check SameSite, Secure and third-party cookie " +
    "settings (see \"Calling tessera from a browser\" in tessera's README).",
);

async function register() {
  const username = $("username").value;
  const user = await api.register(username, $("password").value);
  showMessage(`Registered ${user.username}. You can log in now.`);
}

async function login() {
  await api.login($("username").value, $("password").value);
  try {
    await refreshUser({ expectSession: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw cookieRefused;
    throw err;
  }
  $("password").value = "";
  showMessage(`Welcome, ${$("profile-username").textContent}.`);
}

async function logout() {
  await api.logout();
  const user = await refreshUser();
  if (user) {
    throw new Error(`Still signed in as ${user.username} after logging out.`);
  }
  showMessage("You are signed out.");
}

async function revokeSessionNow(session) {
  const password = session.current ? "" : $("reauth-password").value;
  try {
    await api.revokeSession(session.id, password || undefined);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && !session.current) {
      // Re-authentication required, or a wrong password: ask for it (again).
      $("reauth").hidden = false;
      $("reauth-password").value = "";
      $("reauth-password").focus();
    }
    throw err;
  }
  $("reauth").hidden = true;
  $("reauth-password").value = "";
  if (session.current) {
    await refreshUser();
    showMessage("This device is signed out.");
  } else {
    await refreshSessions();
    showMessage("Session ended: that device is signed out.");
  }
}

async function changePassword() {
  await api.changePassword($("current-password").value, $("new-password").value);
  $("current-password").value = "";
  $("new-password").value = "";
  // tessera ended every session, this one included, and sent a new cookie with the answer.
  try {
    await refreshUser({ expectSession: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw cookieRefused;
    throw err;
  }
  showMessage("Password changed. Every other session has been signed out.");
}

// ---------------------------------------------------------------------------------------------

function start() {
  $("page-origin").textContent = window.location.origin;
  try {
    api = createClient(apiBaseFromLocation());
  } catch (err) {
    $("status").textContent = "Not configured";
    $("status").dataset.state = "error";
    showError(err);
    return;
  }
  $("api-base").textContent = api.base;

  $("credentials-form").addEventListener("submit", action(login));
  $("register-button").addEventListener("click", action(register));
  $("logout-button").addEventListener("click", action(logout));
  $("refresh-sessions-button").addEventListener("click", action(refreshSessions));
  $("password-form").addEventListener("submit", action(changePassword));
  // Enter in the re-authentication field: the password is sent by the next click on Revoke.
  $("reauth").addEventListener("submit", (event) => event.preventDefault());
  revokeSession = action(revokeSessionNow);

  action(async () => {
    // Until tessera answers, show neither form.
    try {
      await refreshUser();
    } catch (err) {
      renderSignedOut();
      throw err;
    }
  })();
}

start();
