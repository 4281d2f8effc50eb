// An independent OpenID Provider (panva/oidc-provider) for Jourpost's relying-party tests.
//
// In-memory, one client, PKCE required, oidc-sweden personnummer scope/claim, and a headless
// interaction: /interaction/:uid logs the test user in (login_hint if it is 12 digits, else
// OP_USER_PNR) and grants consent, with no UI. State and keys are lost on restart.
//
// Environment:
//   OP_PORT, OP_ISSUER (http://127.0.0.1:PORT), OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI,
//   OP_USER_PNR (default 197803129829),
//   OP_ACR             acr to put in the login (misbehaviour: e.g. .../loa2, a level too low),
//   OP_CLAIMS_IN_ID_TOKEN=1   put scope claims in the ID token too (conformIdTokenClaims: false),
//   OP_POST_LOGOUT_REDIRECT_URI  the client's registered post_logout_redirect_uri (RP-initiated logout),
//   OP_LOGIN_FORM=1    a login interaction shows a form (field personal_identity_number) instead of
//                      logging the user in at once, so a test can see whether the provider asked.
// Pushed authorization requests (RFC 9126) and RP-initiated logout are enabled explicitly.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OP_PORT || 0);
const issuer = env.OP_ISSUER || `http://127.0.0.1:${port}`;
const clientId = env.OP_CLIENT_ID || 'jourpost';
const clientSecret = env.OP_CLIENT_SECRET || 'secret';
const redirectUri = env.OP_REDIRECT_URI || 'http://127.0.0.1:9/auth/callback';
const defaultUser = env.OP_USER_PNR || '197803129829';
const LOA3 = 'http://id.elegnamnden.se/loa/1.0/loa3';
const acr = env.OP_ACR || LOA3;
const postLogoutRedirectUri = env.OP_POST_LOGOUT_REDIRECT_URI;
const loginForm = env.OP_LOGIN_FORM === '1';
const PNR_SCOPE = 'https://id.oidc.se/scope/naturalPersonNumber';
const PNR_CLAIM = 'https://id.oidc.se/claim/personalIdentityNumber';

// accountId is a pseudonym of the personnummer; the number itself is only a claim.
const accounts = new Map();
function accountFor(pnr) {
  const accountId = createHash('sha256').update(`op-test:${pnr}`).digest('hex').slice(0, 32);
  accounts.set(accountId, pnr);
  return accountId;
}

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: postLogoutRedirectUri ? [postLogoutRedirectUri] : [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    require_auth_time: true, // as Jourpost must be registered: it refuses tokens without auth_time
  }],
  pkce: { required: () => true },
  acrValues: [LOA3, 'http://id.elegnamnden.se/loa/1.0/loa4', acr],
  scopes: ['openid', 'profile', PNR_SCOPE],
  claims: {
    acr: null,
    auth_time: null,
    profile: ['given_name', 'family_name', 'name'],
    [PNR_SCOPE]: [PNR_CLAIM],
  },
  conformIdTokenClaims: env.OP_CLAIMS_IN_ID_TOKEN !== '1',
  features: {
    devInteractions: { enabled: false },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(ctx, id) {
    const pnr = accounts.get(id);
    if (!pnr) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          [PNR_CLAIM]: pnr,
          given_name: 'Testa',
          family_name: 'Testsson',
          name: 'Testa Testsson',
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, uid } = details;
  if (prompt.name === 'login') {
    const hint = typeof params.login_hint === 'string' && /^\d{12}$/.test(params.login_hint)
      ? params.login_hint : defaultUser;
    let pnr = hint;
    if (loginForm) {
      if (req.method !== 'POST') {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(`<!DOCTYPE html><html lang="sv"><body><h1>Logga in (testleverantör)</h1>
<form method="post" action="/interaction/${escapeHtml(uid)}">
<input name="personal_identity_number" value="${escapeHtml(params.login_hint && /^\d{12}$/.test(params.login_hint) ? params.login_hint : '')}">
<button type="submit">Logga in</button></form></body></html>`);
        return;
      }
      const typed = (await readForm(req)).get('personal_identity_number') || '';
      if (!/^\d{12}$/.test(typed)) {
        res.statusCode = 422;
        res.end('personal_identity_number must be 12 digits');
        return;
      }
      pnr = typed;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: accountFor(pnr), acr, remember: true },
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 400;
  res.end(`unsupported prompt ${prompt.name}`);
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
