// Who the console calls the API as: a bearer token kept in sessionStorage (this tab only, gone
// when it closes). An API key is pasted; an OIDC access token comes from the identity provider
// by the authorization-code flow with PKCE, when the service says OIDC is configured.

const TOKEN = "cle.console.token";
const PENDING = "cle.console.oidc";

// The console's sign-in configuration (app/console/routes.py): `{"oidc": null}` for API keys
// only, or `{"oidc": {"issuer", "client_id", "scopes"}}` when OIDC_ISSUER and
// CONSOLE_OIDC_CLIENT_ID are set; the endpoints come from the issuer's discovery document.
export const AUTH_CONFIG_PATH = "/console/config.json";

export const token = () => sessionStorage.getItem(TOKEN);
export const setToken = (value) => sessionStorage.setItem(TOKEN, value);
export const signOut = () => sessionStorage.removeItem(TOKEN);

export async function oidcConfig() {
  try {
    const response = await fetch(AUTH_CONFIG_PATH, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const oidc = (await response.json())?.oidc;
    return oidc?.issuer && oidc?.client_id ? oidc : null;
  } catch {
    return null;
  }
}

async function endpoints(config) {
  if (config.authorization_endpoint && config.token_endpoint) return config;
  const url = `${config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`discovery document: HTTP ${response.status}`);
  return { ...config, ...(await response.json()) };
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const redirectUri = () => `${window.location.origin}/console/`;

export async function startOidc(config) {
  const found = await endpoints(config);
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, token_endpoint: found.token_endpoint, client_id: config.client_id }));
  const url = new URL(found.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scopes ?? "openid email profile",
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

/** Back from the identity provider (`?code=…&state=…`): trade the code for a token. */
export async function finishOidc() {
  const params = new URLSearchParams(window.location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null");
  if (!params.has("code") || !pending) return false;
  sessionStorage.removeItem(PENDING);
  window.history.replaceState(null, "", `${window.location.pathname}#/queue`);
  if (params.get("state") !== pending.state) throw new Error("OIDC state does not match");
  const response = await fetch(pending.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: pending.client_id,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`token endpoint: HTTP ${response.status}`);
  const tokens = await response.json();
  setToken(tokens.access_token ?? tokens.id_token);
  return true;
}
