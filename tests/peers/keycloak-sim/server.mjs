// Keycloak-shaped OpenID Provider for the portal's tests, built on panva/oidc-provider (npm "oidc-provider" v9).
// Serves http://HOST:PORT/realms/<realm>/... with Keycloak's paths, JWT access tokens carrying
// realm_access / resource_access / groups, a Keycloak-like login form, Keycloak's refresh-token
// logout, RP-initiated logout and back-channel logout.
// Usage: node server.mjs  (env: OIDC_HOST, OIDC_PORT, OIDC_REALM_FILE, OIDC_JWKS_FILE)
//
// Adapted for the portal's tests (carried from the shared keycloak-sim):
// - redirect URIs may hold `*` (any text, e.g. any loopback port): the portal's tests run on free ports;
// - back-channel logout: a client's URI is set at run time (POST /_sim/clients/<id>), and an admin
//   "sign out this user" (POST /_sim/users/<name>/logout) ends their sessions like Keycloak's console;
// - faults for the tests (POST /_sim/mode): `down` (every realm path answers 503 or garbage),
//   `signing` ("rogue": tokens signed by a key that is not published; "rotated": by a new published key),
//   `ttl` (token lifetimes in seconds); POST /_sim/reset undoes them; GET /_sim/calls counts requests by path.
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import * as querystring from 'node:querystring';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const HOST = process.env.OIDC_HOST || '127.0.0.1';
const PORT = Number(process.env.OIDC_PORT || 18081);
const REALM_FILE = process.env.OIDC_REALM_FILE || new URL('./realm.json', import.meta.url);
const realm = JSON.parse(readFileSync(REALM_FILE, 'utf8'));
const PREFIX = `/realms/${realm.realm}`;
const ORIGIN = process.env.OIDC_PUBLIC_ORIGIN || `http://${HOST}:${PORT}`;
const ISSUER = `${ORIGIN}${PREFIX}`;
const RESOURCE = `${ISSUER}/account`; // resource indicator used for every access token (JWT format)
const AUDIENCE = realm.access_token_audience || 'account';
const DEFAULT_TTL = { AccessToken: 300, IdToken: 300, RefreshToken: 1800, AuthorizationCode: 60, Interaction: 600, Session: 36000, Grant: 36000 };
const TTL = { ...DEFAULT_TTL }; // changed at run time by POST /_sim/mode {"ttl": {...}}
const OIDC = '/protocol/openid-connect';
const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'roles', 'groups', 'web-origins', 'acr', 'basic'];

// ---- keys: one RS256 signing key (generated per start unless OIDC_JWKS_FILE holds a private JWKS)
// A new RSA key as a private JWK, exported by the key generation itself. Never
// `generateKeyPairSync(...).privateKey.export({ format: 'jwk' })`: on Node.js 20 that export holds the
// key's mutex while it allocates, and a garbage collection at that moment frees the finished key
// generation job, whose destructor takes the same mutex: the main thread waits on itself forever
// (seen as a start that never listens, now and then). A KeyObject made from the JWK has a lock of its own.
const newRsaJwk = () => crypto.generateKeyPairSync('rsa', {
  modulusLength: 2048, publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' },
}).privateKey;
let privateJwk;
if (process.env.OIDC_JWKS_FILE) {
  [privateJwk] = JSON.parse(readFileSync(process.env.OIDC_JWKS_FILE, 'utf8')).keys;
} else {
  privateJwk = { ...newRsaJwk(), use: 'sig', alg: 'RS256' };
}
privateJwk.kid ||= crypto.createHash('sha256').update(privateJwk.n).digest('base64url').slice(0, 22);
const publicKey = crypto.createPublicKey({ key: privateJwk, format: 'jwk' });
const publicJwk = (jwk) => ({ kty: jwk.kty, n: jwk.n, e: jwk.e, kid: jwk.kid, use: 'sig', alg: 'RS256' });
function extraKey(kid) {
  const jwk = { ...newRsaJwk(), kid };
  return { kid, privateKey: crypto.createPrivateKey({ key: jwk, format: 'jwk' }), jwk };
}
// "rogue": signs with a key nobody published, under the real key's kid (a forged token);
// "rotated": a new key, published in the JWKS only while that mode is on (a key rotation).
const rogueKey = extraKey(privateJwk.kid);
const rotatedKey = extraKey(`rotated-${crypto.randomBytes(6).toString('hex')}`);
const publicKeyB64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

// ---- test controls (POST /_sim/...)
const mode = { down: null, signing: 'normal' };
const backchannelUris = new Map(); // client_id -> back-channel logout URI set at run time
const calls = new Map(); // path -> number of requests
const liveSessions = new Map(); // session uid -> latest saved Session (for the admin logout)
function resetMode() {
  mode.down = null;
  mode.signing = 'normal';
  Object.assign(TTL, DEFAULT_TTL);
  backchannelUris.clear();
  calls.clear();
}

// Keycloak-style redirect URI patterns: `*` stands for any text (the tests use any loopback port)
const patternOf = (uri) => new RegExp(`^${uri.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
const redirectPatterns = new Map(realm.clients.map((c) => [c.client_id, {
  redirect: (c.redirect_uris || []).map(patternOf),
  postLogout: (c.post_logout_redirect_uris || []).map(patternOf),
}]));
const concreteUris = (uris) => (uris || []).filter((u) => !u.includes('*'));

// ---- users
const users = realm.users.map((u) => ({ ...u, sub: u.sub || crypto.randomUUID() }));
const bySub = new Map(users.map((u) => [u.sub, u]));
const findUser = (name) => users.find((u) => u.username.toLowerCase() === String(name || '').toLowerCase()
  || (u.email && u.email.toLowerCase() === String(name || '').toLowerCase()));

function profileClaims(u) {
  const name = [u.given_name, u.family_name].filter(Boolean).join(' ') || undefined;
  return {
    sub: u.sub,
    preferred_username: u.username,
    name,
    given_name: u.given_name,
    family_name: u.family_name,
    email: u.email,
    email_verified: u.email_verified ?? false,
  };
}
function roleClaims(u) {
  const resource_access = {};
  for (const [client, roles] of Object.entries(u.client_roles || {})) resource_access[client] = { roles };
  return { realm_access: { roles: u.realm_roles || [] }, resource_access, groups: u.groups || [] };
}
// claims for userinfo / id_token, filtered by granted scopes (Keycloak-like default mappers)
function userClaims(u, scopes) {
  const p = profileClaims(u);
  const out = { sub: u.sub, preferred_username: p.preferred_username, ...roleClaims(u) };
  if (scopes.has('profile')) Object.assign(out, { name: p.name, given_name: p.given_name, family_name: p.family_name });
  if (scopes.has('email')) Object.assign(out, { email: p.email, email_verified: p.email_verified });
  return out;
}

const jtiToGrant = new Map(); // access-token jti -> grantId, to reject JWT access tokens after logout (userinfo/introspect)

const configuration = {
  clients: realm.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    // oidc-provider wants real URLs here; the patterns are matched by the overrides below
    redirect_uris: concreteUris(c.redirect_uris).length ? concreteUris(c.redirect_uris) : ['http://127.0.0.1/unused'],
    post_logout_redirect_uris: concreteUris(c.post_logout_redirect_uris),
    backchannel_logout_session_required: true,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token', ...(c.direct_access_grants ? ['password'] : []), 'client_credentials'],
    // client_secret_basic and client_secret_post are both accepted by oidc-provider for a secret client
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
  })),
  jwks: { keys: [privateJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: SCOPES,
  claims: {
    openid: ['sub', 'preferred_username', 'realm_access', 'resource_access', 'groups'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: false,
  // Keycloak posts back-channel logout tokens to any URL it is configured with; oidc-provider
  // refuses loopback addresses by default (SSRF protection), where the tests' portals live.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  ttl: Object.fromEntries(Object.keys(DEFAULT_TTL).map((kind) => [kind, () => TTL[kind]])),
  routes: {
    authorization: `${OIDC}/auth`,
    token: `${OIDC}/token`,
    userinfo: `${OIDC}/userinfo`,
    jwks: `${OIDC}/certs`,
    end_session: `${OIDC}/logout`,
    introspection: `${OIDC}/token/introspect`,
    revocation: `${OIDC}/revoke`,
  },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return { accountId: sub, async claims(use, scope) { return userClaims(u, new Set(String(scope || '').split(' '))); } };
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'), // Keycloak always issues one
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    const u = bySub.get(token.accountId);
    if (!u) return undefined;
    if (token.jti && token.grantId) jtiToGrant.set(token.jti, token.grantId);
    const sid = token.sid || token.sessionUid;
    const p = profileClaims(u);
    return { typ: 'Bearer', azp: token.clientId, sid, session_state: sid, ...roleClaims(u), ...p };
  },
  // Keycloak does not ask for consent by default: grant everything that was requested
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    if (oidc.requestParamClaims?.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
    for (const [indicator, rs] of Object.entries(oidc.resourceServers || {})) grant.addResourceScope(indicator, rs.scope);
    await grant.save();
    return grant;
  },
  interactions: {
    url(ctx, interaction) {
      return `${PREFIX}/login-actions/authenticate?session_code=${interaction.uid}&client_id=${encodeURIComponent(interaction.params.client_id)}&tab_id=${interaction.uid.slice(0, 11)}`;
    },
  },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // auto-submitting confirmation (a plain HTTP client can post the hidden fields itself)
      async logoutSource(ctx, form) {
        const f = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = `<!DOCTYPE html><html><head><title>Logging out</title></head><body>${f}<script>document.forms[0].submit()</script></body></html>`;
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = '<!DOCTYPE html><html><head><title>Logged out</title></head><body><h1 id="kc-page-title">You are logged out</h1></body></html>';
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: SCOPES.join(' '),
        audience: AUDIENCE,
        accessTokenTTL: TTL.AccessToken,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>Error</title></head><body><p id="kc-error-message">${
      Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&"]/g, '')}`).join('<br>')}</p></body></html>`;
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = !!process.env.OIDC_PUBLIC_ORIGIN;

provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  return this.redirectUris.includes(value) || !!redirectPatterns.get(this.clientId)?.redirect.some((re) => re.test(value));
};
provider.Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
  return this.postLogoutRedirectUris.includes(value)
    || !!redirectPatterns.get(this.clientId)?.postLogout.some((re) => re.test(value));
};

provider.on('session.saved', (session) => { if (session.accountId) liveSessions.set(session.uid, session); });
provider.on('session.destroyed', (session) => liveSessions.delete(session.uid));
provider.on('backchannel.error', (ctx, err, client) => console.error(`back-channel logout to ${client.clientId} failed: ${err.message}`));

async function setBackchannelUri(clientId, uri) {
  const client = await provider.Client.find(clientId);
  if (!client) return false;
  client.backchannelLogoutUri = uri || undefined;
  if (uri) backchannelUris.set(clientId, uri); else backchannelUris.delete(clientId);
  return true;
}

async function revokeGrant(grantId) {
  const grant = await provider.Grant.find(grantId);
  if (grant) await grant.destroy();
  await provider.AccessToken.revokeByGrantId(grantId);
  await provider.RefreshToken.revokeByGrantId(grantId);
  await provider.AuthorizationCode.revokeByGrantId(grantId);
}

// Keycloak's admin console "Sign out" of a user: every SSO session ends, each client with a
// back-channel logout URL is told (with the session's sid), and the tokens stop refreshing.
async function logoutUser(sub) {
  let ended = 0;
  for (const saved of [...liveSessions.values()].filter((s) => s.accountId === sub)) {
    const session = await provider.Session.findByUid(saved.uid);
    liveSessions.delete(saved.uid);
    if (!session) continue;
    for (const clientId of Object.keys(session.authorizations || {})) {
      const client = await provider.Client.find(clientId);
      if (client?.backchannelLogoutUri) {
        try { await client.backchannelLogout(sub, session.sidFor(clientId)); } catch (err) {
          console.error(`back-channel logout to ${clientId} failed: ${err.message}`);
        }
      }
      const grantId = session.grantIdFor(clientId);
      if (grantId) await revokeGrant(grantId);
    }
    await session.destroy();
    ended += 1;
  }
  return ended;
}

// ---- signing faults: re-sign what the token endpoint returns with another key
const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
function resign(token, key) {
  const [header, payload] = token.split('.');
  const input = `${Buffer.from(JSON.stringify({ ...b64json(header), kid: key.kid })).toString('base64url')}.${payload}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}
const signingKey = () => ({ rogue: rogueKey, rotated: rotatedKey }[mode.signing]);

// ---- Keycloak "Direct Access Grants" (grant_type=password), used by KeycloakOpenID.token(username, password)
provider.registerGrantType('password', async (ctx) => {
  const { client, params } = ctx.oidc;
  const u = findUser(params.username);
  if (!u || u.password !== params.password) {
    ctx.status = 401;
    ctx.body = { error: 'invalid_grant', error_description: 'Invalid user credentials' };
    return;
  }
  const scopes = new Set(['openid', ...String(params.scope || '').split(' ').filter(Boolean)]);
  const scope = [...scopes].filter((s) => SCOPES.includes(s)).join(' ');
  const grant = new provider.Grant({ accountId: u.sub, clientId: client.clientId });
  grant.addOIDCScope(scope);
  grant.addResourceScope(RESOURCE, scope);
  const grantId = await grant.save();
  const sid = crypto.randomUUID();
  const rsInfo = await configuration.features.resourceIndicators.getResourceServerInfo();
  const at = new provider.AccessToken({ accountId: u.sub, client, grantId, gty: 'password', scope, sid });
  at.resourceServer = new provider.ResourceServer(RESOURCE, rsInfo);
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();
  const rt = new provider.RefreshToken({
    accountId: u.sub, client, grantId, gty: 'password', scope, sid, resource: RESOURCE, rotations: 0, authTime: Math.floor(Date.now() / 1000),
  });
  const refreshToken = await rt.save();
  const idt = new provider.IdToken({ ...userClaims(u, scopes), auth_time: rt.authTime }, { ctx });
  idt.scope = scope;
  idt.set('sid', sid);
  const idToken = await idt.issue({ use: 'idtoken' });
  ctx.body = {
    access_token: accessToken, expires_in: TTL.AccessToken, refresh_expires_in: TTL.RefreshToken,
    refresh_token: refreshToken, token_type: 'Bearer', id_token: idToken, 'not-before-policy': 0, session_state: sid, scope,
  };
}, ['username', 'password', 'scope']);

// Keycloak-style extra fields on token responses
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.access_token && !('not-before-policy' in ctx.body)) {
    const at = ctx.oidc.entities?.AccessToken;
    const sid = at?.sid || at?.sessionUid;
    Object.assign(ctx.body, { refresh_expires_in: ctx.body.refresh_token ? TTL.RefreshToken : 0, 'not-before-policy': 0 });
    if (sid) ctx.body.session_state = sid;
  }
  const key = ctx.oidc?.route === 'token' && ctx.status === 200 && signingKey();
  if (key && ctx.body?.id_token) {
    ctx.body.id_token = resign(ctx.body.id_token, key);
    if (String(ctx.body.access_token).split('.').length === 3) ctx.body.access_token = resign(ctx.body.access_token, key);
  }
});

// ---- helpers for the routes handled outside oidc-provider
function send(res, status, body, headers = {}) {
  const isJson = typeof body !== 'string';
  res.writeHead(status, { 'Content-Type': isJson ? 'application/json' : 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(isJson ? JSON.stringify(body) : body);
}
async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString('utf8');
  return { raw, form: querystring.parse(raw) };
}
function verifyJwt(token) { // RS256 access token issued by this provider
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return null;
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok) return null;
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  if (claims.iss !== ISSUER || !(claims.exp > Date.now() / 1000)) return null;
  return claims;
}
async function activeAccessToken(token) {
  const claims = verifyJwt(token);
  if (!claims) return null;
  const grantId = claims.jti && jtiToGrant.get(claims.jti);
  if (!grantId || !(await provider.Grant.find(grantId))) return null; // logged out / revoked
  return claims;
}
async function clientAuth(req, form) {
  let id = form.client_id; let secret = form.client_secret;
  const h = req.headers.authorization || '';
  if (h.startsWith('Basic ')) {
    const [i, s] = Buffer.from(h.slice(6), 'base64').toString().split(':');
    id = decodeURIComponent(i); secret = decodeURIComponent(s || '');
  }
  const c = realm.clients.find((x) => x.client_id === id);
  return c && c.client_secret === secret ? c : null;
}
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
function loginPage(action, error, username) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in to ${esc(realm.realm)}</title></head><body>
<h1 id="kc-page-title">Sign in to your account</h1>
${error ? `<div class="alert-error"><span id="input-error" class="kc-feedback-text">${esc(error)}</span></div>` : ''}
<form id="kc-form-login" action="${esc(action)}" method="post">
<label for="username">Username or email</label><input id="username" name="username" type="text" value="${esc(username)}" autofocus autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<input type="hidden" id="id-hidden-input" name="credentialId">
<input type="submit" id="kc-login" name="login" value="Sign In">
</form></body></html>`;
}

async function handleLogin(req, res) {
  let details;
  try { details = await provider.interactionDetails(req, res); } catch {
    return send(res, 400, loginPage(req.url, 'Your login attempt timed out. Login will start from the beginning.'));
  }
  const { prompt, params } = details;
  if (prompt.name === 'consent') { // not expected (loadExistingGrant auto-consents), kept as a fallback
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    grant.addResourceScope(RESOURCE, SCOPES.join(' '));
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET') return send(res, 200, loginPage(req.url, null, params.login_hint));
  if (req.method !== 'POST') return send(res, 405, 'method not allowed');
  const { form } = await readForm(req);
  const u = findUser(form.username);
  if (!u || u.password !== form.password) return send(res, 200, loginPage(req.url, 'Invalid username or password.', form.username));
  return provider.interactionFinished(req, res, { login: { accountId: u.sub } }, { mergeWithLastSubmission: false });
}

async function handleUserinfo(req, res) {
  let token = (req.headers.authorization || '').replace(/^Bearer\s+/i, '');
  if (!token && req.method === 'POST') token = (await readForm(req)).form.access_token;
  const claims = await activeAccessToken(token);
  const u = claims && bySub.get(claims.sub);
  if (!u || !String(claims.scope || '').split(' ').includes('openid')) {
    return send(res, 401, { error: 'invalid_token', error_description: 'Token verification failed' },
      { 'WWW-Authenticate': 'Bearer realm="' + realm.realm + '", error="invalid_token", error_description="Token verification failed"' });
  }
  return send(res, 200, userClaims(u, new Set(String(claims.scope).split(' '))));
}

async function handleIntrospect(req, res) {
  const { form } = await readForm(req);
  if (!(await clientAuth(req, form))) return send(res, 401, { error: 'invalid_client', error_description: 'Invalid client or Invalid client credentials' });
  const claims = await activeAccessToken(form.token);
  if (claims) return send(res, 200, { ...claims, client_id: claims.azp, username: claims.preferred_username, token_type: 'Bearer', active: true });
  const rt = await provider.RefreshToken.find(form.token);
  if (rt && !rt.isExpired) return send(res, 200, { active: true, sub: rt.accountId, client_id: rt.clientId, scope: rt.scope, exp: rt.exp, typ: 'Refresh', sid: rt.sid });
  return send(res, 200, { active: false });
}

// Keycloak back-channel logout: POST .../logout with client credentials + refresh_token -> 204
async function backchannelLogout(req, res, form) {
  const client = await clientAuth(req, form);
  if (!client) return send(res, 401, { error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' });
  const rt = await provider.RefreshToken.find(form.refresh_token);
  if (!rt || rt.clientId !== client.client_id) return send(res, 400, { error: 'invalid_grant', error_description: 'Invalid refresh token' });
  const grantIds = new Set([rt.grantId]);
  const session = rt.sessionUid ? await provider.Session.findByUid(rt.sessionUid) : undefined;
  if (session) {
    for (const a of Object.values(session.authorizations || {})) if (a.grantId) grantIds.add(a.grantId);
    await session.destroy();
  }
  for (const gid of grantIds) {
    const g = await provider.Grant.find(gid);
    if (g) await g.destroy();
    await provider.AccessToken.revokeByGrantId(gid);
    await provider.RefreshToken.revokeByGrantId(gid);
    await provider.AuthorizationCode.revokeByGrantId(gid);
  }
  res.writeHead(204); return res.end();
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString('utf8');
  return raw ? JSON.parse(raw) : {};
}

// The tests' controls (loopback only, like the portal's other simulators)
async function handleSim(req, res, path) {
  if (path === '/_sim/calls' && req.method === 'GET') return send(res, 200, Object.fromEntries(calls));
  if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
  if (path === '/_sim/reset') {
    for (const clientId of [...backchannelUris.keys()]) await setBackchannelUri(clientId, undefined);
    resetMode();
    return send(res, 200, { ok: true });
  }
  const body = await readJson(req);
  if (path === '/_sim/mode') {
    if ('down' in body) mode.down = body.down || null;
    if ('signing' in body) mode.signing = body.signing || 'normal';
    if (body.ttl) Object.assign(TTL, body.ttl);
    return send(res, 200, { ...mode, ttl: TTL });
  }
  let match = path.match(/^\/_sim\/clients\/([^/]+)$/);
  if (match) {
    const ok = await setBackchannelUri(decodeURIComponent(match[1]), body.backchannel_logout_uri);
    return send(res, ok ? 200 : 404, { ok });
  }
  match = path.match(/^\/_sim\/users\/([^/]+)\/logout$/);
  if (match) {
    const user = findUser(decodeURIComponent(match[1]));
    if (!user) return send(res, 404, { error: 'no such user' });
    return send(res, 200, { sessions_ended: await logoutUser(user.sub) });
  }
  return send(res, 404, { error: 'unknown control' });
}

function answerDown(res) {
  if (mode.down === 'garbage') return send(res, 200, '<html><body>Welcome to nginx!</body></html>');
  return send(res, 503, '<html><body><h1>503 Service Unavailable</h1></body></html>');
}

function jwks() {
  const keys = [publicJwk(privateJwk)];
  if (mode.signing === 'rotated') keys.push(publicJwk(rotatedKey.jwk));
  return { keys };
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const path = req.url.split('?')[0];
    if (path.startsWith('/_sim/')) return await handleSim(req, res, path);
    calls.set(path, (calls.get(path) || 0) + 1);
    if (mode.down && path.startsWith('/realms/')) return answerDown(res);
    if (path === `${PREFIX}${OIDC}/certs`) return send(res, 200, jwks(), { 'Content-Type': 'application/jwk-set+json' });
    if (path === PREFIX || path === `${PREFIX}/`) {
      return send(res, 200, { realm: realm.realm, public_key: publicKeyB64, 'token-service': `${ISSUER}${OIDC}`, 'account-service': `${ISSUER}/account`, 'tokens-not-before': 0 });
    }
    if (path === `${PREFIX}/login-actions/authenticate`) return await handleLogin(req, res);
    if (path === `${PREFIX}${OIDC}/userinfo`) return await handleUserinfo(req, res);
    if (path === `${PREFIX}${OIDC}/token/introspect` && req.method === 'POST') return await handleIntrospect(req, res);
    if (path === `${PREFIX}${OIDC}/logout` && req.method === 'POST') {
      const { raw, form } = await readForm(req);
      if (form.refresh_token && !form.id_token_hint) return await backchannelLogout(req, res, form);
      // RP-initiated logout sent as a form POST: replay it as GET (oidc-provider only allows POST here with
      // enableHttpPostMethods, which needs SameSite=None cookies, i.e. https)
      req.method = 'GET';
      req.url = `${path}?${raw}`;
      delete req.headers['content-type'];
      delete req.headers['content-length'];
    }
    if (path === '/health' || path === '/health/ready') return send(res, 200, { status: 'UP' });
    if (path.startsWith(`${PREFIX}/`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(PREFIX.length);
      return callback(req, res);
    }
    return send(res, 404, { error: 'Realm does not exist' });
  } catch (err) {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: 'server_error' });
  }
});
server.listen(PORT, HOST, () => console.log(`oidc listening issuer=${ISSUER}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
