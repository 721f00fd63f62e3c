/* The API client: one request to the API at the page's own base URL (JSON in, JSON out,
 * same-origin cookies, never cached) and ApiError, a failed answer read from its problem
 * document (code, detail, field errors, Retry-After). It keeps no token: session.js
 * passes the access token in. */

// The page is served at <base>/ ("/" locally, "/api/" on an API Gateway stage), and the
// API lives under the same base: "" locally, "/api" on the stage.
var BASE = location.pathname.replace(/[^/]*$/, "").replace(/\/+$/, "");

export function ApiError(status, problem, headers) {
  var doc = problem && typeof problem === "object" ? problem : {};
  this.name = "ApiError";
  this.status = status;
  this.code = doc.code || (status === 0 ? "network_error" : "http_" + status);
  this.detail = typeof doc.detail === "string" ? doc.detail : "";
  this.errors = Array.isArray(doc.errors) ? doc.errors : [];
  var retry = headers ? headers.get("Retry-After") : null;
  this.retryAfter = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  this.handled = false;
  this.message = this.detail || "Request failed (" + status + ")";
}
ApiError.prototype = Object.create(Error.prototype);
ApiError.prototype.constructor = ApiError;

/* One request to the API. Resolves with the parsed JSON body (null for 204). */
export async function send(method, path, body, token) {
  var headers = { Accept: "application/json, application/problem+json" };
  if (method !== "GET") headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  var response;
  try {
    response = await fetch(BASE + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, {
      code: "network_error",
      detail: "The server could not be reached. Check your connection and try again.",
    });
  }
  var data = null;
  var text = "";
  try {
    text = await response.text();
  } catch (err) {
    text = "";
  }
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return data;
}

export function isInvalidToken(error) {
  return error instanceof ApiError && error.status === 401 && error.code === "invalid_token";
}
