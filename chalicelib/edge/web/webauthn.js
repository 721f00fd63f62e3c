/* WebAuthn in this browser: whether it has passkeys (and autofill for them), the
 * conversions between its ArrayBuffers and the API's JSON forms, and the words for a
 * failed passkey request. No screen: passkey-login.js and passkeys.js use it. */

import { ApiError } from "./api.js";
import { problemMessage } from "./messages.js";

/* WebAuthn speaks ArrayBuffers; the API speaks the WebAuthn Level 3 JSON forms, with
 * every binary member as base64url without padding. The browser's own converters
 * (parseCreationOptionsFromJSON, toJSON) are newer than WebAuthn itself, so the page
 * converts for itself. */
function toBase64url(data) {
  var bytes =
    data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  var binary = "";
  for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
  var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
  var bytes = new Uint8Array(binary.length);
  for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function withBinaryIds(descriptors) {
  return (descriptors || []).map(function (descriptor) {
    return Object.assign({}, descriptor, { id: fromBase64url(descriptor.id) });
  });
}

export function creationOptions(json) {
  return Object.assign({}, json, {
    challenge: fromBase64url(json.challenge),
    user: Object.assign({}, json.user, { id: fromBase64url(json.user.id) }),
    excludeCredentials: withBinaryIds(json.excludeCredentials),
  });
}

export function requestOptions(json) {
  return Object.assign({}, json, {
    challenge: fromBase64url(json.challenge),
    allowCredentials: withBinaryIds(json.allowCredentials),
  });
}

/* Extension outputs may hold binary values (prf, largeBlob): base64url them too. */
function jsonable(value) {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return toBase64url(value);
  if (Array.isArray(value)) return value.map(jsonable);
  if (value && typeof value === "object") {
    var plain = {};
    Object.keys(value).forEach(function (key) {
      plain[key] = jsonable(value[key]);
    });
    return plain;
  }
  return value;
}

/* The members every PublicKeyCredential's JSON form has, around its ``response``. */
function credentialJSON(credential, response) {
  var json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: response,
    clientExtensionResults: jsonable(credential.getClientExtensionResults()),
  };
  if (credential.authenticatorAttachment) {
    json.authenticatorAttachment = credential.authenticatorAttachment;
  }
  return json;
}

/* RegistrationResponseJSON. */
export function registrationJSON(credential) {
  var response = credential.response;
  var json = {
    clientDataJSON: toBase64url(response.clientDataJSON),
    attestationObject: toBase64url(response.attestationObject),
    transports: typeof response.getTransports === "function" ? response.getTransports() : [],
  };
  return credentialJSON(credential, json);
}

/* AuthenticationResponseJSON. */
export function authenticationJSON(credential) {
  var response = credential.response;
  var json = {
    clientDataJSON: toBase64url(response.clientDataJSON),
    authenticatorData: toBase64url(response.authenticatorData),
    signature: toBase64url(response.signature),
  };
  // Null, or empty, from an authenticator that keeps no user handle: then left out.
  if (response.userHandle && response.userHandle.byteLength) {
    json.userHandle = toBase64url(response.userHandle);
  }
  return credentialJSON(credential, json);
}

export var passkeysSupported =
  typeof window.PublicKeyCredential === "function" &&
  Boolean(navigator.credentials) &&
  typeof navigator.credentials.get === "function";
var conditionalSupport = null;

/* Resolves true where the browser offers passkeys in the username field's autofill. */
export function conditionalAvailable() {
  if (!conditionalSupport) {
    var probe = passkeysSupported && PublicKeyCredential.isConditionalMediationAvailable;
    conditionalSupport =
      typeof probe === "function"
        ? Promise.resolve()
            .then(function () {
              return PublicKeyCredential.isConditionalMediationAvailable();
            })
            .then(Boolean, function () {
              return false;
            })
        : Promise.resolve(false);
  }
  return conditionalSupport;
}

/* What a failed passkey request means in words: an API problem, or the browser's
 * DOMException (whose own messages are written for developers). */
export function passkeyMessage(error, creating, overrides) {
  if (error instanceof ApiError) return problemMessage(error, overrides);
  switch (error && error.name) {
    case "NotAllowedError":
      return creating
        ? "No passkey was created: the request was cancelled or timed out."
        : "No passkey was used: the request was cancelled or timed out.";
    case "InvalidStateError":
      return "This device already holds a passkey for your account.";
    case "SecurityError":
      return (
        "Passkeys do not work at this address: open this page at its usual address " +
        "(a name such as localhost, not an IP address)."
      );
    case "NotSupportedError":
      return "This device cannot make a passkey of a kind this site accepts.";
    default:
      return "The passkey request failed. Please try again.";
  }
}
