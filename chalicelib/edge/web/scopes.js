/* What an app may do with the account, in plain words: the OAuth scopes as the consent
 * screen and the Connected apps panel show them. */

import { make } from "./dom.js";

var SCOPE_WORDS = {
  openid: "Know who you are (your account id)",
  profile: "See your username and display name",
  email: "See your email address and whether it is verified",
  offline_access: "Stay signed in to this app when you are not using it",
};

export function scopeWords(scope) {
  return Object.prototype.hasOwnProperty.call(SCOPE_WORDS, scope)
    ? SCOPE_WORDS[scope]
    : "Use the permission “" + scope + "”";
}

/* The list items of ``scopes``, each in words, in the order the app asked for them. */
export function scopeItems(scopes) {
  return scopes.map(function (scope) {
    return make("li", { "data-scope": scope, text: scopeWords(scope) });
  });
}
