/* What the page says: the page-wide announcements (flash for a success, alert for a
 * failure) and the words for a failed request (problemMessage), a wait and a time. */

import { $ } from "./dom.js";

export function showFlash(text) {
  $("alert").textContent = "";
  $("flash").textContent = text;
}

export function showAlert(text) {
  $("flash").textContent = "";
  $("alert").textContent = text;
}

export function clearMessages() {
  $("flash").textContent = "";
  $("alert").textContent = "";
}

function formatWait(seconds) {
  if (seconds < 60) return seconds + (seconds === 1 ? " second" : " seconds");
  var minutes = Math.ceil(seconds / 60);
  var about = minutes < 120 ? minutes + " minutes" : Math.ceil(minutes / 60) + " hours";
  return seconds + " seconds (about " + about + ")";
}

export function problemMessage(error, overrides) {
  if (overrides && overrides[error.code]) return overrides[error.code];
  switch (error.code) {
    case "invalid_credentials":
      return "The username or password is incorrect.";
    case "too_many_attempts":
      return error.retryAfter !== null
        ? "Too many attempts. Try again in " + formatWait(error.retryAfter) + "."
        : "Too many attempts. Wait a while before trying again.";
    case "username_taken":
      return "That username is taken; choose another.";
    case "email_taken":
      return "That email address belongs to another account.";
    case "service_unavailable":
      return "The service is temporarily unavailable. Try again in a moment.";
    case "network_error":
      return error.detail;
    default:
      return error.detail || "Something went wrong. Please try again.";
  }
}

export function formatTime(seconds) {
  if (!seconds) return "unknown";
  try {
    return new Date(seconds * 1000).toLocaleString(undefined, {
      dateStyle: "medium",
      timeStyle: "short",
    });
  } catch (err) {
    return new Date(seconds * 1000).toLocaleString();
  }
}
