// A real OpenID provider for the review workspace's tests: panva's
// oidc-provider (OpenID-certified), on 127.0.0.1 at a free port, with its
// development login and consent pages (any password; the login names the
// account). Usage: node oidc.mjs REDIRECT_URI CLIENT_SECRET
// Prints one JSON line {"issuer": URL} once it listens; runs until killed.
import Provider from 'oidc-provider';
import http from 'node:http';

const [redirect, secret] = process.argv.slice(2);
if (!redirect || !secret) {
  console.error('usage: node oidc.mjs REDIRECT_URI CLIENT_SECRET');
  process.exit(2);
}

// Three users as the tests ask, and a second reviewer for two
// decisions at once. `groups` is the claim the workspace maps to roles.
const accounts = {
  sam: { name: 'Sam Okoro', groups: ['letter-authors', 'compliance-reviewers'] },
  priya: { name: 'Priya Natarajan', groups: ['compliance-reviewers'] },
  jide: { name: 'Jide Okafor', groups: ['compliance-reviewers'] },
  lena: { name: 'Lena Fischer', groups: ['legal-reviewers'] },
  nobody: { name: 'No Role', groups: ['staff'] },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'letterpress-review',
        client_secret: secret,
        redirect_uris: [redirect],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        require_auth_time: true,
      },
    ],
    // The groups and the name in the ID token itself, as a bank's
    // provider is configured for the workspace (a groups mapper).
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], profile: ['name', 'groups'] },
    findAccount: async (ctx, sub) => {
      const a = accounts[sub];
      if (!a) return undefined;
      return { accountId: sub, claims: async () => ({ sub, name: a.name, groups: a.groups }) };
    },
    cookies: { keys: ['letterpress-test-only-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
