// An upstream OpenID provider for the federation tests: panva's oidc-provider
// (npm, installed by `npm ci --prefix tests/interop`) on 127.0.0.1, playing a
// company IdP, ID-porten or a multi-tenant Entra-like issuer. Started by
// tests/federation/upstream.py:
//
//   node tests/federation/upstream.mjs CONFIG.json
//
// CONFIG.json (every field optional except clients and accounts):
//   {
//     "port": 0,                          // 0 = any free port
//     "issuer_path": "/TENANT/v2.0",      // issuer = http://127.0.0.1:PORT + issuer_path
//     "template_discovery": "/organizations/v2.0",
//         // also serve GET <this>/.well-known/openid-configuration: our own
//         // metadata with issuer "http://127.0.0.1:PORT/{tenantid}/v2.0"
//     "scopes": ["openid", "profile", "email"],
//     "acr_values": ["idporten-loa-substantial"],
//     "clients": [ oidc-provider client metadata: client_id, client_secret or
//                  token_endpoint_auth_method "private_key_jwt" + jwks_uri,
//                  redirect_uris, id_token_signed_response_alg (RS256 | ES256 |
//                  HS256), ... ],
//     "accounts": { "LOGIN": { "sub": "...", "email": "...", "tid": "...",
//                             "acr": "...", "amr": "pwd" or ["pwd", "mfa"] } }
//   }
//
// Every claim of an account ends up in the ID token for scope openid (sub
// defaults to the login name); acr and amr come from the login result and are
// put in the ID token as given (amr may be a string or an array).
//
// Logging in: GET /interaction/UID is a form (input name="login", button
// id="upstream-login") posting to /interaction/UID/login; GET
// /interaction/UID/auto?login=LOGIN does the same without a form. Both log the
// account in and grant every requested scope and claim, so there is no consent
// page. With an issuer_path these live under it, like every other endpoint.
//
// Prints "READY <issuer>" on stdout once listening; logs go to stderr. Exits on
// SIGTERM/SIGINT and when stdin closes (so a dead parent never leaves it behind).

import { createRequire } from 'node:module'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

// oidc-provider lives in tests/interop/node_modules, next to openid-client.
const requireFromInterop = createRequire(new URL('../interop/package.json', import.meta.url))
const { default: Provider } = await import(pathToFileURL(requireFromInterop.resolve('oidc-provider')).href)

const HOST = '127.0.0.1'
const COOKIE_KEYS = ['upstream-test-cookie-key-0123456789abcdef']
const LOGIN_RESULT_KEYS = new Set(['acr', 'amr'])

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const prefix = (config.issuer_path || '').replace(/\/+$/, '')
const accounts = config.accounts || {}

// Accounts are found by login name in the interaction and by sub afterwards;
// an account's sub defaults to its login name.
const accountByLogin = (login) => Object.hasOwn(accounts, login)
  ? { ...accounts[login], sub: accounts[login].sub ?? login }
  : undefined
const bySub = new Map(Object.keys(accounts).map((login) => [accountByLogin(login).sub, accountByLogin(login)]))
const idTokenClaims = (account) => Object.fromEntries(
  Object.entries(account).filter(([name]) => !LOGIN_RESULT_KEYS.has(name)))

const claimNames = new Set(['sub'])
const acrValues = new Set(config.acr_values || [])
for (const account of bySub.values()) {
  Object.keys(idTokenClaims(account)).forEach((name) => claimNames.add(name))
  if (account.acr) acrValues.add(account.acr)
}

function signingKeys () {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  return [{ ...rsa, kid: `rsa-${randomUUID()}`, use: 'sig', alg: 'RS256' },
    { ...ec, kid: `ec-${randomUUID()}`, use: 'sig', alg: 'ES256' }]
}

function providerConfiguration () {
  return {
    clients: config.clients || [],
    jwks: { keys: signingKeys() },
    cookies: { keys: COOKIE_KEYS },
    scopes: config.scopes || ['openid', 'profile', 'email'],
    acrValues: [...acrValues],
    // The catch-all: scope openid stands for every claim any account has.
    // acr/amr/auth_time come from the login, not from claims(); oidc-provider
    // only puts them in the ID token when requested (acr_values, the claims
    // parameter, max_age), so list them under openid too, like real upstreams.
    claims: {
      acr: null, amr: null, auth_time: null, iss: null, sid: null,
      openid: [...claimNames, 'acr', 'amr', 'auth_time'],
    },
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'HS256'] },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
    },
    // oidc-provider refuses to fetch from special-use addresses (SSRF guard,
    // its own undici dispatcher); here every jwks_uri is on 127.0.0.1.
    fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
    interactions: { url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    async findAccount (ctx, sub) {
      const account = bySub.get(sub)
      if (!account) return undefined
      return { accountId: sub, claims: async () => idTokenClaims(account) }
    },
  }
}

// --- interactions ----------------------------------------------------------

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function send (res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' })
  res.end(body)
}

function page (title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
}

async function readForm (req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

function requestedClaims (params) {
  if (!params.claims) return []
  try {
    const parsed = JSON.parse(params.claims)
    return [...Object.keys(parsed.id_token || {}), ...Object.keys(parsed.userinfo || {})]
  } catch {
    return []
  }
}

// Log the account in (when the login prompt asks for it) and grant everything
// requested in one go, so the relying party gets its code straight away.
async function finish (provider, req, res, details, account) {
  const { prompt, params, session } = details
  const result = {}
  let accountId = session?.accountId
  if (prompt.name === 'login') {
    if (!account) return send(res, 400, page('unknown account', '<p>unknown account</p>'))
    accountId = account.sub
    result.login = { accountId, acr: account.acr, amr: account.amr }
  }
  const grant = prompt.name === 'consent' && details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id })
  grant.addOIDCScope(params.scope || 'openid')
  grant.addOIDCClaims(requestedClaims(params))
  result.consent = { grantId: await grant.save() }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false })
}

function loginPage (uid, details) {
  const action = `${prefix}/interaction/${uid}/login`
  return page('Upstream sign-in', `<p>Client: ${escapeHtml(details.params.client_id)}</p>
<form method="post" action="${escapeHtml(action)}">
  <label>Login <input name="login" autofocus required></label>
  <button type="submit" id="upstream-login">Sign in</button>
</form>`)
}

async function interaction (provider, req, res, uid, action, query) {
  const details = await provider.interactionDetails(req, res)
  if (details.uid !== uid) return send(res, 400, page('interaction mismatch', '<p>wrong interaction</p>'))
  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'consent') return finish(provider, req, res, details)
    return send(res, 200, loginPage(uid, details))
  }
  if (action === 'login' && req.method === 'POST') {
    const login = (await readForm(req)).get('login') || ''
    return finish(provider, req, res, details, accountByLogin(login))
  }
  if (action === 'auto' && req.method === 'GET') {
    return finish(provider, req, res, details, accountByLogin(query.get('login') || ''))
  }
  return send(res, 405, page('method not allowed', ''))
}

// --- the HTTP server -------------------------------------------------------

let provider
let providerCallback
let origin

async function templateDiscovery (res) {
  const response = await fetch(`${provider.issuer}/.well-known/openid-configuration`)
  const metadata = await response.json()
  metadata.issuer = `${origin}/{tenantid}/v2.0`
  send(res, 200, JSON.stringify(metadata), 'application/json; charset=utf-8')
}

async function handle (req, res) {
  const url = new URL(req.url, origin)
  if (config.template_discovery && req.method === 'GET' &&
      url.pathname === `${config.template_discovery.replace(/\/+$/, '')}/.well-known/openid-configuration`) {
    return templateDiscovery(res)
  }
  if (prefix) {
    // Mount the provider under the issuer's path: it sees the path without
    // the prefix and works the prefix back out of req.originalUrl.
    if (url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) {
      return send(res, 404, page('not found', ''))
    }
    req.originalUrl = req.url
    req.url = req.url.slice(prefix.length) || '/'
  }
  const match = /^\/interaction\/([^/?]+)(?:\/(login|auto))?(?:\?|$)/.exec(req.url)
  if (match) {
    return interaction(provider, req, res, match[1], match[2], new URL(req.url, origin).searchParams)
  }
  return providerCallback(req, res)
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('upstream:', err)
    if (!res.headersSent) send(res, 400, page('error', `<p>${escapeHtml(err.message)}</p>`))
    else res.end()
  })
})

server.listen(config.port || 0, HOST, () => {
  origin = `http://${HOST}:${server.address().port}`
  provider = new Provider(`${origin}${prefix}`, providerConfiguration())
  providerCallback = provider.callback()
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'introspection.error']) {
    provider.on(event, (ctx, err) => console.error(`upstream ${event}:`, err.message,
      err.error_description || '', err.error_detail || '', err.cause?.error_description || err.cause?.message || ''))
  }
  process.stdout.write(`READY ${provider.issuer}\n`)
})

function shutdown () {
  server.close()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
process.stdin.on('end', shutdown)
process.stdin.on('close', shutdown)
process.stdin.resume()
