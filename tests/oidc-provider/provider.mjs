// A real OpenID Connect provider (the certified `oidc-provider` package) for Orgkeeper's tests.
//
// Started by tests/it/sso.rs on a loopback port; prints `issuer <url>` once it listens.
// Settings come as one JSON argument: { clientId, clientSecret, redirectUri, accounts }, where
// accounts maps a login name to { email, name, groups }.
//
// What is not oidc-provider's own, and why:
// - /interaction/{uid}: a tiny sign-in form (any known login, no password), because the package
//   leaves the login UI to its host. A `login_hint` naming a known account signs in at once,
//   so plain-HTTP tests need no form.
// - POST /_test/accounts: changes an account's groups between sign-ins.
// - POST /_test/next-token: makes the NEXT token response carry a bad ID token (re-signed with
//   the provider's own key with another audience or an expiry in the past, or with its
//   signature altered), to play a provider that is misconfigured or an answer that was forged.
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const settings = JSON.parse(process.argv[2]);
const accounts = settings.accounts;
let nextToken = null;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: settings.clientId,
    client_secret: settings.clientSecret,
    redirect_uris: [settings.redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // Scope claims go into the ID token too (Entra, Okta and Keycloak can be set up that way).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account.email,
          email_verified: true,
          name: account.name,
          preferred_username: id,
          groups: account.groups,
        };
      },
    };
  },
  // Consent is implied (a company's own application): grant what was asked.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data;
}

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  let login = details.params.login_hint;
  if (req.method === 'POST') login = new URLSearchParams(await body(req)).get('login');
  if (login && accounts[login]) {
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title><link rel="icon" href="data:,"></head>
<body><h1>Test identity provider</h1>
<form method="post" action="${escape(url.pathname)}">
<label for="login">Login</label> <input id="login" name="login" autofocus>
<button id="sign-in" type="submit">Sign in</button></form></body></html>`);
}

async function mangle(idToken, kind) {
  if (kind === 'bad_signature') {
    const [head, payload, signature] = idToken.split('.');
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    return [head, payload, flipped].join('.');
  }
  const claims = jose.decodeJwt(idToken);
  if (kind === 'wrong_audience') claims.aud = 'some-other-application';
  if (kind === 'expired') {
    claims.iat -= 7200;
    claims.exp = Math.floor(Date.now() / 1000) - 3600;
  }
  if (kind === 'issued_in_the_future') {
    claims.iat += 365 * 86400;
    claims.exp += 365 * 86400;
  }
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey);
}

const handle = provider.callback();
server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) return await interaction(req, res, url);
    if (url.pathname === '/_test/accounts' && req.method === 'POST') {
      const { login, groups } = JSON.parse(await body(req));
      accounts[login].groups = groups;
      return res.end('ok');
    }
    if (url.pathname === '/_test/next-token' && req.method === 'POST') {
      nextToken = JSON.parse(await body(req)).kind;
      return res.end('ok');
    }
    if (url.pathname === '/token' && nextToken) {
      const kind = nextToken;
      nextToken = null;
      const end = res.end.bind(res);
      res.end = (chunk) => {
        const answer = JSON.parse(chunk.toString());
        if (!answer.id_token) return end(chunk);
        mangle(answer.id_token, kind).then((token) => {
          const out = JSON.stringify({ ...answer, id_token: token });
          res.setHeader('content-length', Buffer.byteLength(out));
          end(out);
        });
        return res;
      };
    }
    return handle(req, res);
  } catch (error) {
    console.error(error);
    res.statusCode = 500;
    res.end(String(error));
  }
});

console.log(`issuer ${issuer}`);
