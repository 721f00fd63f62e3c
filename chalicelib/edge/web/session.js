/* The session: tokens in memory and their renewal.
 *
 * Tokens: the access token lives only in a variable of this module (never in storage
 * or a script-readable cookie). The refresh token travels only in the HttpOnly cookie
 * the API sets on <base>/token. Refresh tokens are single use and a race between two
 * refreshes ends the session, so every refresh goes through refreshSession(), which
 * keeps one in flight at a time (and, where the Web Locks API exists, one across tabs).
 * api() is every call made with the access token. */

import { ApiError, isInvalidToken, send } from "./api.js";

var REFRESH_MARGIN_SECONDS = 60;
var RETRY_REFRESH_MS = 30000;

export var accessToken = null;
var tokenExpiresAt = 0;
var refreshTimer = null;
var refreshing = null;
export var generation = 0; // bumped when a session ends: late answers for it are dropped

/* A call with the access token. On 401 invalid_token: one refresh, one retry; if the
 * session cannot be renewed, back to the log-in screen. */
export async function api(method, path, body) {
  var session = generation;
  var token = accessToken;
  for (var attempt = 0; ; attempt += 1) {
    try {
      return await send(method, path, body, token);
    } catch (error) {
      if (!isInvalidToken(error) || session !== generation) throw error;
      if (attempt > 0) {
        onSessionLost();
        error.handled = true;
        throw error;
      }
      if (!(accessToken && accessToken !== token)) {
        // Nobody has renewed the token since this call went out: renew it now.
        var outcome = await refreshSession();
        if (session !== generation) {
          error.handled = true;
          throw error;
        }
        if (outcome === "ended") {
          onSessionLost();
          error.handled = true;
          throw error;
        }
        if (outcome !== "ok") throw outcome;
      }
      token = accessToken;
    }
  }
}

/* Renew the access token with the refresh cookie. Resolves to "ok", "ended" (no live
 * session: log in again) or an ApiError (the server could not answer; try later).
 * Only one refresh is ever in flight from this page, and one per browser where the
 * Web Locks API is available, since a spent refresh token presented twice ends the
 * session. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = withRefreshLock(doRefresh).finally(function () {
      refreshing = null;
    });
  }
  return refreshing;
}

function withRefreshLock(task) {
  if (navigator.locks && typeof navigator.locks.request === "function") {
    return navigator.locks.request("gatehouse-refresh", task);
  }
  return task();
}

async function doRefresh() {
  var session = generation;
  try {
    var pair = await send("POST", "/token/refresh", { refresh_cookie: true });
    if (session !== generation) return "ended";
    setToken(pair);
    return "ok";
  } catch (error) {
    if (error instanceof ApiError && (error.status === 0 || error.status >= 500)) return error;
    return "ended";
  }
}

function setToken(pair) {
  accessToken = pair.access_token;
  var seconds = Number(pair.expires_in) > 0 ? Number(pair.expires_in) : 900;
  tokenExpiresAt = Date.now() + seconds * 1000;
  var wait = Math.max(seconds - REFRESH_MARGIN_SECONDS, Math.min(30, seconds / 2));
  scheduleRefresh(wait * 1000);
}

function scheduleRefresh(ms) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(scheduledRefresh, ms);
}

async function scheduledRefresh() {
  if (!accessToken) return;
  var session = generation;
  var outcome = await refreshSession();
  if (session !== generation) return;
  if (outcome === "ended") onSessionLost();
  else if (outcome !== "ok") scheduleRefresh(RETRY_REFRESH_MS);
}

// Background tabs get their timers throttled: catch up when the page is seen again.
document.addEventListener("visibilitychange", function () {
  var due = tokenExpiresAt - REFRESH_MARGIN_SECONDS * 1000;
  if (document.visibilityState === "visible" && accessToken && Date.now() >= due) {
    scheduledRefresh();
  }
});

/* A token pair from /login or /passkeys/login: a new session, renewed before it expires. */
export function beginSession(pair) {
  generation += 1;
  setToken(pair);
}

/* The session is over: its token is forgotten and late answers for it are dropped. */
export function endSession() {
  generation += 1;
  accessToken = null;
  tokenExpiresAt = 0;
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

// What the page does when the session cannot be renewed (back to the log-in screen): set
// by dashboard.js, since the session knows no screen.
var onSessionLost = null;

export function whenSessionLost(handler) {
  onSessionLost = handler;
}
