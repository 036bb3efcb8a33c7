"""Closed-loop load of complete browser-less logins (standard library + the
``cryptography`` package of the venv, for checking the ID token's signature).

N virtual users each run logins back to back, each login with a fresh cookie
jar (a new browser) over the user's own keep-alive connection:

  1. ``GET /authorize`` (code flow, PKCE S256, state, nonce)   -> 302 to the email page
  2. ``GET`` the email page, read ``csrf_token`` and ``tx``; ``POST`` the email -> 302
  3. ``GET`` the password page, read ``csrf_token``; ``POST`` the password     -> 302
     to the redirect URI with ``code``, ``state``, ``iss`` (first-party client), or
  4. ``GET /authorize/continue`` (and the consent page) first, then that redirect
     (a consent page, if one is shown, is answered with ``decision=allow``)
  5. ``POST /token`` (client_secret_basic, ``code_verifier``) -> 200 with tokens

A login counts only when it completes inside the measured window and its token
response is valid: HTTP 200, ``token_type`` Bearer, an ``access_token``, and an
``id_token`` whose RS256/ES256 signature verifies against the provider's JWKS
and whose ``iss``, ``aud``, ``nonce`` and ``exp`` are right; the callback's
``state`` and ``iss`` must match too. Anything else is an error, by kind.

    .venv/bin/python bench/logins.py http://127.0.0.1:7002 -c 8 -d 10 -w 3 \
        --client-id bench-web --client-secret ... --redirect-uri http://127.0.0.1:9/cb \
        --password ... --email bench-user-0@example.com --email bench-user-1@example.com
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import re
import resource
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from http.cookies import SimpleCookie

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
TX_RE = re.compile(r'name="tx" value="([^"]+)"')


def percentile(values, q: float, empty=None):
    """The ``q``-th percentile (0..100) of ``values``: the value at rank
    ``int(q / 100 * n)`` of the sorted values; ``empty`` when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else empty


def basic(client_id: str, secret: str) -> str:
    """HTTP Basic client authentication, each part form-encoded first (RFC 6749, 2.3.1)."""
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


class LoginError(Exception):
    """One login failed; the message is the error kind (kept short, counted)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- #
# ID-token check (signature by the provider's JWKS, claims)
# --------------------------------------------------------------------------- #
class JwtChecker:
    def __init__(self, jwks: dict):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.keys = {}
        for jwk in jwks.get("keys", []):
            kid, kty = jwk.get("kid"), jwk.get("kty")
            if kty == "RSA":
                n = int.from_bytes(b64url_decode(jwk["n"]), "big")
                e = int.from_bytes(b64url_decode(jwk["e"]), "big")
                self.keys[kid] = (jwk.get("alg"), rsa.RSAPublicNumbers(e, n).public_key())
            elif kty == "EC" and jwk.get("crv") == "P-256":
                x = int.from_bytes(b64url_decode(jwk["x"]), "big")
                y = int.from_bytes(b64url_decode(jwk["y"]), "big")
                self.keys[kid] = (jwk.get("alg"), ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())

    def verify(self, token: str) -> dict:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            h64, p64, s64 = token.split(".")
            header = json.loads(b64url_decode(h64))
            claims = json.loads(b64url_decode(p64))
            sig = b64url_decode(s64)
        except ValueError:
            raise LoginError("id_token: malformed") from None
        found = self.keys.get(header.get("kid"))
        if found is None or found[0] != header.get("alg"):
            raise LoginError("id_token: unknown kid/alg")
        alg, key = found
        signed = f"{h64}.{p64}".encode("ascii")
        try:
            if alg == "RS256":
                key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "ES256":
                r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
            else:
                raise LoginError(f"id_token: alg {alg} not checked by the bench")
        except InvalidSignature:
            raise LoginError("id_token: bad signature") from None
        return claims


# --------------------------------------------------------------------------- #
# one browser
# --------------------------------------------------------------------------- #
class Browser:
    """A keep-alive HTTP/1.1 connection and a cookie jar (one host, so names suffice)."""

    def __init__(self, host: str, port: int, origin: str):
        self.host, self.port, self.origin = host, port, origin
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.requests = 0
        self.steps: list[tuple[str, float]] = []  # (method + path, seconds) of this login's requests

    def fresh(self) -> None:
        self.cookies = {}
        self.steps = []

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None, browser: bool = True):
        """One request; ``browser=False`` sends no cookies and no Origin (a client's back channel)."""
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        hdrs = {"Accept": "text/html,application/json", "User-Agent": "visma_idp-bench/1"}
        if self.cookies and browser:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            if browser:
                hdrs["Origin"] = self.origin
        if headers:
            hdrs.update(headers)
        t0 = time.perf_counter()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                # the server may close an idle keep-alive connection: retry once on a new one
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise LoginError(f"{method} {path.split('?')[0]}: connection failed") from None
        self.requests += 1
        self.steps.append((f"{method} {path.split('?')[0]}", time.perf_counter() - t0))
        for value in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(value)
            for name, morsel in jar.items():
                gone = morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"])
                if gone or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, resp.headers, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def expect_redirect(status, headers, what: str) -> str:
    if status not in (302, 303):
        raise LoginError(f"{what}: HTTP {status}")
    location = headers.get("Location")
    if not location:
        raise LoginError(f"{what}: no Location")
    return location


def _fill_form(b, loc: str, page: str, field: str, value: str) -> str:
    """GET a login page, POST its form (CSRF token, tx, ``field``); return the redirect."""
    st, _h, html = b.request("GET", path_of(loc))
    if st != 200:
        raise LoginError(f"{page}: HTTP {st}")
    text = html.decode("utf-8", "replace")
    m, t = CSRF_RE.search(text), TX_RE.search(text)
    if not m:
        raise LoginError(f"{page}: no csrf_token")
    form = {"csrf_token": m.group(1), field: value}
    if t:
        form["tx"] = t.group(1)
    st, h, _body = b.request("POST", path_of(loc), form)
    return expect_redirect(st, h, f"{page} post")


def one_login(b: Browser, cfg, email: str, checker: JwtChecker) -> None:
    b.fresh()
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    params = {
        "response_type": "code",
        "client_id": cfg.client_id,
        "redirect_uri": cfg.redirect_uri,
        "scope": cfg.scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    loc = expect_redirect(*b.request("GET", cfg.authorize_path + "?" + urllib.parse.urlencode(params))[:2], "authorize")
    loc = _fill_form(b, loc, "email page", "email", email)
    loc = _fill_form(b, loc, "password page", "password", cfg.password)
    # back to the authorization endpoint, until the redirect to the client
    for _ in range(4):
        if loc.startswith(cfg.redirect_uri):
            break
        st, h, html = b.request("GET", path_of(loc))
        if st == 200 and b'name="decision"' in html:
            text = html.decode("utf-8", "replace")
            m, t = CSRF_RE.search(text), TX_RE.search(text)
            if not (m and t):
                raise LoginError("consent page: no csrf_token/tx")
            st, h, _body = b.request("POST", cfg.continue_path, {"csrf_token": m.group(1), "tx": t.group(1), "decision": "allow"})
        loc = expect_redirect(st, h, "authorize continue")
    else:
        raise LoginError("too many redirects")
    cb = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    if "code" not in cb:
        raise LoginError(f"callback: {cb.get('error', 'no code')}")
    if cb.get("state") != state:
        raise LoginError("callback: state mismatch")
    if cb.get("iss") != cfg.issuer:
        raise LoginError("callback: iss mismatch")
    # token
    form = {"grant_type": "authorization_code", "code": cb["code"], "redirect_uri": cfg.redirect_uri, "code_verifier": verifier}
    st, _h, body = b.request("POST", cfg.token_path, form, headers={"Authorization": cfg.basic}, browser=False)
    if st != 200:
        raise LoginError(f"token: HTTP {st}")
    try:
        tok = json.loads(body)
    except ValueError:
        raise LoginError("token: bad JSON") from None
    if not tok.get("access_token") or str(tok.get("token_type", "")).lower() != "bearer" or not tok.get("id_token"):
        raise LoginError("token: missing fields")
    claims = checker.verify(tok["id_token"])
    aud = claims.get("aud")
    if claims.get("iss") != cfg.issuer or (aud != cfg.client_id and cfg.client_id not in (aud or [])):
        raise LoginError("id_token: iss/aud")
    if claims.get("nonce") != nonce:
        raise LoginError("id_token: nonce")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        raise LoginError("id_token: exp")


# --------------------------------------------------------------------------- #
def run(cfg) -> dict:
    u = urllib.parse.urlsplit(cfg.base)
    with urllib.request.urlopen(cfg.base.rstrip("/") + "/.well-known/openid-configuration", timeout=5) as r:
        meta = json.load(r)
    with urllib.request.urlopen(meta["jwks_uri"], timeout=5) as r:
        checker = JwtChecker(json.load(r))
    cfg.issuer = meta["issuer"]
    cfg.authorize_path = urllib.parse.urlsplit(meta["authorization_endpoint"]).path
    cfg.token_path = urllib.parse.urlsplit(meta["token_endpoint"]).path
    cfg.continue_path = cfg.authorize_path.rstrip("/") + "/continue"
    cfg.basic = basic(cfg.client_id, cfg.client_secret)
    origin = f"{u.scheme}://{u.netloc}"

    lock = threading.Lock()
    state = {"measuring": False, "stop": False, "ok": 0, "lat": [], "err": Counter(), "requests": 0, "steps": {}}
    emails = cfg.emails

    def vu(i: int) -> None:
        b = Browser(u.hostname, u.port or 80, origin)
        n = 0
        while not state["stop"]:
            email = emails[(i + n * cfg.concurrency) % len(emails)]
            n += 1
            t0 = time.perf_counter()
            was_measuring = state["measuring"]
            r0 = b.requests
            try:
                one_login(b, cfg, email, checker)
                err = None
            except LoginError as exc:
                err = str(exc)
            except Exception as exc:  # noqa: BLE001 - count, never crash a virtual user
                err = f"client: {exc.__class__.__name__}"
            dt = time.perf_counter() - t0
            with lock:
                # count only logins that started and ended inside the measured window
                if was_measuring and state["measuring"]:
                    state["requests"] += b.requests - r0
                    if err is None:
                        state["ok"] += 1
                        state["lat"].append(dt)
                        for k, (step, sec) in enumerate(b.steps):
                            tot = state["steps"].setdefault(f"{k + 1}. {step}", [0.0, 0])
                            tot[0] += sec
                            tot[1] += 1
                    else:
                        state["err"][err] += 1
            if err is not None:
                time.sleep(0.05)
        b.close()

    threads = [threading.Thread(target=vu, args=(i,), daemon=True) for i in range(cfg.concurrency)]
    for t in threads:
        t.start()
    time.sleep(cfg.warmup)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    state["measuring"] = True
    t0 = time.perf_counter()
    time.sleep(cfg.duration)
    state["measuring"] = False
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    state["stop"] = True
    for t in threads:
        t.join(timeout=30)
    lat = sorted(state["lat"])

    def pct(q):
        return percentile(lat, q, float("nan")) * 1000

    return {
        "label": cfg.label,
        "scenario": "logins",
        "rps": round(state["ok"] / wall, 2),
        "ok": state["ok"],
        "errors": sum(state["err"].values()),
        "error_kinds": dict(state["err"]),
        "http_requests_per_s": round(state["requests"] / wall, 1),
        "p50_ms": round(pct(50), 1),
        "p99_ms": round(pct(99), 1),
        "seconds": round(wall, 2),
        "concurrency": cfg.concurrency,
        "step_mean_ms": {
            k: round(v[0] / v[1] * 1000, 2) for k, v in sorted(state["steps"].items(), key=lambda kv: int(kv[0].split(".")[0]))
        },
        "loadgen_cpu_pct": round((ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / wall * 100, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("-c", "--concurrency", type=int, default=8, help="virtual users")
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("-w", "--warmup", type=float, default=3.0)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--redirect-uri", required=True)
    ap.add_argument("--scope", default="openid profile email")
    ap.add_argument("--email", dest="emails", action="append", required=True, help="repeat for several users")
    ap.add_argument("--password", required=True)
    ap.add_argument("--label", default="visma_idp")
    ap.add_argument("--json", action="store_true", help="also print a JSON result line")
    ap.add_argument("--steps", action="store_true", help="print the mean latency of each request of a login")
    cfg = ap.parse_args()
    res = run(cfg)
    print(f"{res['label']} logins: {res['rps']:.1f} logins/s p50 {res['p50_ms']:.0f} ms p99 {res['p99_ms']:.0f} ms errors {res['errors']}")
    print(
        f"  [{res['seconds']}s c={res['concurrency']} ok={res['ok']} http={res['http_requests_per_s']} req/s "
        f"loadgen_cpu={res['loadgen_cpu_pct']}%]"
    )
    if cfg.steps:
        print("  mean latency per request of a successful login (at -c 1 about the server's time for it):")
        for k, v in res["step_mean_ms"].items():
            print(f"    {k:40s} {v:8.2f} ms")
    if res["error_kinds"]:
        print("  errors: " + ", ".join(f"{k} x{v}" for k, v in Counter(res["error_kinds"]).most_common(5)))
    if cfg.json:
        print(json.dumps(res))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
