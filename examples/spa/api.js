// A tiny client for tessera's JSON API, as a browser on another origin must call it.
//
// Every request is `fetch(url, {credentials: "include", ...})`: without `credentials: "include"` a
// cross-origin fetch neither stores the Set-Cookie of /login nor sends the session cookie back.

export const DEFAULT_API_BASE = "http://localhost:8080";

/** An answer from tessera that is not a success: `detail` is its human-readable text. */
export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

/**
 * No answer could be read at all: the API is down, or the browser refused the response
 * (CORS: this page's origin is not in tessera's ALLOWED_ORIGINS). Scripts are told nothing more.
 */
export class NetworkError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = "NetworkError";
    this.cause = cause;
  }
}

/** The API base URL from `?api=...` in the page's address, else DEFAULT_API_BASE. */
export function apiBaseFromLocation(location = window.location) {
  const raw = new URLSearchParams(location.search).get("api") || DEFAULT_API_BASE;
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`?api=${raw} is not an absolute URL such as ${DEFAULT_API_BASE}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`?api=${raw} must be an http:// or https:// URL`);
  }
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

export function createClient(base) {
  async function call(method, path, body) {
    const init = {
      method,
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      cache: "no-store",
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(base + path, init);
    } catch (err) {
      throw new NetworkError(
        `Could not reach the API at ${base}: the request failed or the browser refused the answer. ` +
          `Is tessera running, and is ${window.location.origin} listed in its ALLOWED_ORIGINS?`,
        err,
      );
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const detail =
        data && typeof data.detail === "string"
          ? data.detail
          : `HTTP ${response.status} ${response.statusText}`.trim();
      throw new ApiError(response.status, detail, data);
    }
    return data;
  }

  return {
    base,
    register: (username, password) => call("POST", "/register", { username, password }),
    login: (username, password) => call("POST", "/login", { username, password }),
    logout: () => call("POST", "/logout"),
    me: () => call("GET", "/users/me"),
    sessions: () => call("GET", "/users/me/sessions"),
    // `password` is needed when this session is older than FRESH_SESSION_SECONDS and `id` is
    // another session; without it tessera answers 403 "Re-authentication required: ...".
    revokeSession: (id, password) =>
      call(
        "DELETE",
        `/users/me/sessions/${encodeURIComponent(id)}`,
        password ? { password } : undefined,
      ),
    changePassword: (currentPassword, newPassword) =>
      call("PUT", "/users/me/password", {
        current_password: currentPassword,
        new_password: newPassword,
      }),
  };
}
