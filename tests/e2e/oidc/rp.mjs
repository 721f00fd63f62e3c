// A relying party built on panva's openid-client (the OpenID Certified RP library),
// driven by tests/e2e/test_oauth_clients.py: one JSON command per line on stdin, one
// JSON answer per line on stdout, {"ok": result} or {"error": {...}}. Every check is
// the library's own (discovery's issuer, state, iss, PKCE, the ID token's signature and
// claims, userinfo's sub); this script only keeps what a web app keeps in its session
// between the redirect and the callback (the PKCE verifier, state and nonce).
//
// allowInsecureRequests: only because the test's issuer is http://127.0.0.1:<port>.

import * as readline from "node:readline";
import * as client from "openid-client";

let config;
let pending; // { verifier, state, nonce } of the last authorization URL

const ops = {
  // A confidential client authenticates with client_secret_post (the library's default
  // for a secret); a public one (no secret) with none.
  async discover({ issuer, client_id, client_secret }) {
    const auth = client_secret ? undefined : client.None();
    config = await client.discovery(new URL(issuer), client_id, client_secret, auth, {
      execute: [client.allowInsecureRequests],
    });
    return config.serverMetadata();
  },

  // state and nonce are optional with PKCE (openid-client's own documented flow sends
  // neither); the library then checks that none comes back.
  async authorize({ redirect_uri, scope, state = true, nonce = true }) {
    const verifier = client.randomPKCECodeVerifier();
    pending = {
      verifier,
      state: state ? client.randomState() : undefined,
      nonce: nonce ? client.randomNonce() : undefined,
    };
    const parameters = {
      redirect_uri,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    };
    if (pending.state) parameters.state = pending.state;
    if (pending.nonce) parameters.nonce = pending.nonce;
    const url = client.buildAuthorizationUrl(config, parameters);
    return { url: url.href, state: pending.state ?? null, nonce: pending.nonce ?? null };
  },

  async callback({ url }) {
    const tokens = await client.authorizationCodeGrant(config, new URL(url), {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    return { ...tokens, claims: tokens.claims() };
  },

  async userinfo({ access_token, sub }) {
    return client.fetchUserInfo(config, access_token, sub);
  },

  async refresh({ refresh_token }) {
    const tokens = await client.refreshTokenGrant(config, refresh_token);
    return { ...tokens, claims: tokens.claims() ?? null };
  },

  async introspect({ token }) {
    return client.tokenIntrospection(config, token);
  },

  async revoke({ token }) {
    await client.tokenRevocation(config, token);
    return {};
  },

  async end_session({ id_token, post_logout_redirect_uri, state }) {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: id_token,
      post_logout_redirect_uri,
      state,
    });
    return { url: url.href };
  },
};

/** What the test asserts on: the library's error class and code, the OAuth error and
 * the HTTP status when there was a response. */
function described(error) {
  return {
    name: error?.constructor?.name ?? "Error",
    message: String(error?.message ?? error),
    code: error?.code ?? null,
    error: error?.error ?? null,
    status: error?.status ?? null,
    cause: error?.cause?.message ?? null,
  };
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let answer;
  try {
    const { op, ...args } = JSON.parse(line);
    if (!Object.hasOwn(ops, op)) throw new Error(`unknown op ${op}`);
    answer = { ok: await ops[op](args) };
  } catch (error) {
    answer = { error: described(error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
