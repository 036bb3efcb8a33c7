// A relying party built on panva's openid-client v6, driving visma_idp through
// its real HTML login pages. Run by tests/interop/test_openid_client.py:
//
//   node tests/interop/rp.mjs --issuer=http://127.0.0.1:PORT \
//     --client-id=ID --client-secret=SECRET \
//     --service-id=ID --service-secret=SECRET \
//     --email=EMAIL --password=PASSWORD
//
// Prints one JSON object of results on stdout. On any failure prints the error
// on stderr and exits with status 1.

import { parseArgs } from 'node:util'
import * as client from 'openid-client'

const REDIRECT_PATH = '/cb'
const SCOPE = 'openid profile email offline_access'
const HTTP_TIMEOUT_MS = 20_000
const MAX_STEPS = 10

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'service-id': { type: 'string' },
    'service-secret': { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
  },
  strict: true,
})

function need(name) {
  const value = args[name]
  if (!value) throw new Error(`missing argument --${name}`)
  return value
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

function jwtHeader(token) {
  const [header] = token.split('.')
  return JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
}

// -- a tiny browser: cookie jar, manual redirects, HTML form scraping ----------

class Browser {
  constructor(origin) {
    this.origin = origin
    this.cookies = new Map()
    this.trail = []
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  storeCookies(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 1) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.split('=').map((s) => s.trim())
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now()
        return false
      })
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { Accept: 'text/html', 'User-Agent': 'visma-idp-interop/openid-client' }
    const cookie = this.cookieHeader()
    if (cookie) headers.Cookie = cookie
    let body
    if (form) {
      body = new URLSearchParams(form)
      headers['Content-Type'] = 'application/x-www-form-urlencoded'
      headers.Origin = this.origin // what a browser sends on a same-origin form post
    }
    const response = await fetch(url, {
      method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    })
    this.storeCookies(response)
    const text = await response.text()
    this.trail.push(`${method} ${new URL(url).pathname} -> ${response.status}`)
    return { url: new URL(url), status: response.status, location: response.headers.get('location'), text }
  }
}

function decodeEntities(s) {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'))
  return m ? decodeEntities(m[1]) : undefined
}

// The first POST form on the page: its action and its hidden fields
// (csrf_token, tx), plus the names of its other fields.
function parseForm(page) {
  const m = page.text.match(/<form\b[^>]*\bmethod="post"[^>]*>([\s\S]*?)<\/form>/i)
  if (!m) return undefined
  const formTag = m[0].slice(0, m[0].indexOf('>') + 1)
  const action = new URL(attr(formTag, 'action') ?? page.url.href, page.url)
  const hidden = {}
  const fields = new Set()
  for (const tag of m[1].match(/<(input|button)\b[^>]*>/gi) ?? []) {
    const name = attr(tag, 'name')
    if (!name) continue
    fields.add(name)
    if (/^<input/i.test(tag) && (attr(tag, 'type') ?? '').toLowerCase() === 'hidden') {
      hidden[name] = attr(tag, 'value') ?? ''
    }
  }
  return { action, hidden, fields }
}

// Follow the provider's pages from the authorization URL to the redirect to
// the client; returns the callback URL (which is never requested).
async function loginThroughForms(browser, authorizationUrl, redirectUri, email, password) {
  const answered = { email: false, password: false, consent: false }
  let page = await browser.request(authorizationUrl.href)
  for (let step = 0; step < MAX_STEPS; step++) {
    if (page.status >= 300 && page.status < 400) {
      check(page.location, `redirect without Location from ${page.url.pathname}`)
      const next = new URL(page.location, page.url)
      if (next.origin + next.pathname === redirectUri) return { callbackUrl: next, answered }
      page = await browser.request(next.href)
      continue
    }
    if (page.status !== 200) {
      throw new Error(`unexpected ${page.status} from ${page.url.pathname}: ${page.text.slice(0, 400)}`)
    }
    const form = parseForm(page)
    check(form, `no form on ${page.url.pathname}: ${page.text.slice(0, 400)}`)
    check('csrf_token' in form.hidden, `form on ${page.url.pathname} has no csrf_token`)
    const data = { ...form.hidden }
    if (form.fields.has('decision')) {
      data.decision = 'allow'
      answered.consent = true
    } else if (form.fields.has('password')) {
      check(!answered.password, 'password page shown twice (wrong password?)')
      data.password = password
      answered.password = true
    } else if (form.fields.has('email')) {
      check(!answered.email, 'email page shown twice')
      data.email = email
      answered.email = true
    } else {
      throw new Error(`unknown form on ${page.url.pathname}: ${[...form.fields].join(', ')}`)
    }
    page = await browser.request(form.action.href, { method: 'POST', form: data })
  }
  throw new Error(`no redirect to ${redirectUri} after ${MAX_STEPS} steps: ${browser.trail.join(', ')}`)
}

// -- the relying party ---------------------------------------------------------

async function main() {
  const issuer = new URL(need('issuer'))
  const clientId = need('client-id')
  const clientSecret = need('client-secret')
  const redirectUri = new URL(REDIRECT_PATH, issuer).href
  const result = { openid_client: {} }

  const config = await client.discovery(
    issuer, clientId, { client_secret: clientSecret, redirect_uris: [redirectUri] },
    client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] },
  )
  client.enableNonRepudiationChecks(config)
  const metadata = config.serverMetadata()
  result.discovery = {
    issuer: metadata.issuer,
    token_endpoint: metadata.token_endpoint,
    supports_pkce: metadata.supportsPKCE(),
    // the logout specs' metadata, as openid-client parsed it
    end_session_endpoint: metadata.end_session_endpoint,
    backchannel_logout_supported: metadata.backchannel_logout_supported,
    backchannel_logout_session_supported: metadata.backchannel_logout_session_supported,
    frontchannel_logout_supported: metadata.frontchannel_logout_supported,
    frontchannel_logout_session_supported: metadata.frontchannel_logout_session_supported,
  }

  // authorization request
  const codeVerifier = client.randomPKCECodeVerifier()
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent',
  })

  const browser = new Browser(issuer.origin)
  const { callbackUrl, answered } = await loginThroughForms(
    browser, authorizationUrl, redirectUri, need('email'), need('password'),
  )
  result.login = { steps: browser.trail, answered, callback_params: [...callbackUrl.searchParams.keys()].sort() }

  // authorization code grant (ID token signature checked against the JWKS)
  const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce,
  })
  const claims = tokens.claims()
  check(claims, 'no ID token in the token response')
  check(claims.iss === issuer.href.replace(/\/$/, '') || claims.iss === metadata.issuer, 'iss')
  check(claims.aud === clientId || (Array.isArray(claims.aud) && claims.aud.includes(clientId)), 'aud')
  check(typeof claims.sub === 'string' && claims.sub.length > 0, 'sub')
  check(claims.nonce === nonce, 'nonce')
  check(tokens.refresh_token, 'no refresh token (offline_access was consented)')
  result.code_grant = {
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expiresIn(),
    has_refresh_token: Boolean(tokens.refresh_token),
    id_token_header: jwtHeader(tokens.id_token),
    access_token_header: jwtHeader(tokens.access_token),
    claims,
  }

  // userinfo
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  result.userinfo = userinfo

  // refresh token rotation, then reuse of the old refresh token
  const oldRefresh = tokens.refresh_token
  const refreshed = await client.refreshTokenGrant(config, oldRefresh)
  check(refreshed.access_token, 'refresh returned no access token')
  check(refreshed.refresh_token, 'refresh returned no new refresh token')
  const refreshedClaims = refreshed.claims()
  if (refreshedClaims) check(refreshedClaims.sub === claims.sub, 'refreshed ID token sub')
  result.refresh = {
    rotated: refreshed.refresh_token !== oldRefresh,
    new_access_token_differs: refreshed.access_token !== tokens.access_token,
    id_token_sub: refreshedClaims?.sub ?? null,
    id_token_email: refreshedClaims?.email ?? null,
  }
  try {
    await client.refreshTokenGrant(config, oldRefresh)
    result.refresh.old_refused = null
  } catch (err) {
    if (!(err instanceof client.ResponseBodyError)) throw err
    result.refresh.old_refused = { error: err.error, status: err.status, error_description: err.error_description }
  }

  // client_credentials with a second (service) client
  const serviceId = need('service-id')
  const serviceSecret = need('service-secret')
  const service = await client.discovery(
    issuer, serviceId, { client_secret: serviceSecret },
    client.ClientSecretBasic(serviceSecret), { execute: [client.allowInsecureRequests] },
  )
  client.enableNonRepudiationChecks(service)
  const cc = await client.clientCredentialsGrant(service, { scope: 'api:read' })
  result.client_credentials = {
    token_type: cc.token_type,
    scope: cc.scope,
    expires_in: cc.expiresIn(),
    has_refresh_token: Boolean(cc.refresh_token),
    access_token: cc.access_token,
    access_token_header: jwtHeader(cc.access_token),
  }

  result.openid_client = { ok: true }
  return result
}

function describe(err) {
  const parts = [`${err?.name ?? 'Error'}: ${err?.message ?? err}`]
  for (const key of ['code', 'error', 'error_description', 'status']) {
    if (err?.[key] !== undefined) parts.push(`${key}=${JSON.stringify(err[key])}`)
  }
  if (err?.cause !== undefined) {
    let cause
    try { cause = JSON.stringify(err.cause) } catch { cause = String(err.cause) }
    if (cause && cause !== '{}') parts.push(`cause=${cause}`)
    else if (err.cause instanceof Error) parts.push(`cause=${err.cause.message}`)
  }
  return parts.join(' ')
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
  },
  (err) => {
    process.stderr.write(`rp.mjs failed: ${describe(err)}\n`)
    process.exitCode = 1
  },
)
