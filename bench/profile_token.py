"""Where one token-endpoint request spends its time, in process (no HTTP server).

Builds the app against the bench database made by ``bench/run.py`` (or
``bench/seed.py``), warms up, then times N ``POST /token`` (client_credentials)
or ``POST /introspect`` requests through Flask's test client, once plain (µs per
request) and once under cProfile (top functions by own and cumulative time)::

    .venv/bin/python bench/profile_token.py                    # client_credentials
    .venv/bin/python bench/profile_token.py --endpoint introspect
    .venv/bin/python bench/profile_token.py --sort tottime --top 40

The server adds its own cost on top (HTTP parsing, WSGI, socket writes):
compare the in-process µs with 1e6 / (tokens/s) from ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH (run.py --app-dir) wins

DEFAULT_DSN = "postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_bench"
SECRET_KEY = "bench-secret-key-not-for-production-0123456789"  # bench/seed.py's


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--issuer", default="http://127.0.0.1:7002")
    ap.add_argument("--secret-key", default=SECRET_KEY, help="the one bench/seed.py used")
    ap.add_argument("--endpoint", choices=["token", "introspect", "login"], default="token",
                    help="login: a whole browser login (authorize, email, password, continue, code at /token)")
    ap.add_argument("--flavour", choices=["plain", "totp", "consent"], default="plain",
                    help="login only: plain (first-party app), totp (second step) or consent (third-party app)")
    ap.add_argument("-n", type=int, default=3000, help="requests per measurement")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    ap.add_argument("--callers", metavar="PATTERN", help="also print who calls the functions matching PATTERN")
    ap.add_argument(
        "--timer", default="cpu", choices=["cpu", "wall"], help="profile CPU time (default) or wall time (includes waiting for PostgreSQL)"
    )
    a = ap.parse_args()

    from visma_idp import create_app

    app = create_app({"ISSUER": a.issuer, "DATABASE_URL": a.dsn, "SECRET_KEY": a.secret_key})
    client = app.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-secret").decode()}
    cc = {"grant_type": "client_credentials", "scope": "api:read"}

    if a.endpoint == "token":

        def one():
            r = client.post("/token", data=cc, headers=auth)
            assert r.status_code == 200, r.get_data(as_text=True)
    elif a.endpoint == "login":
        one, per_request = _login_step(app, a.issuer, a.flavour)
        a.n = min(a.n, 200)
    else:
        tok = client.post("/token", data=cc, headers=auth).get_json()["access_token"]
        form = {"token": tok, "token_type_hint": "access_token"}

        def one():
            r = client.post("/introspect", data=form, headers=auth)
            assert r.status_code == 200 and r.get_json().get("active") is True, r.get_data(as_text=True)[:300]

    for _ in range(300 if a.endpoint != "login" else 20):
        one()
    if a.endpoint == "login":
        per_request.clear()
    t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(a.n):
        one()
    wall = (time.perf_counter() - t0) / a.n * 1e6
    cpu = (time.process_time() - c0) / a.n * 1e6
    main_cpu = (time.thread_time() - m0) / a.n * 1e6
    print(
        f"{a.endpoint}: {cpu:.0f} µs CPU ({wall:.0f} µs wall, the rest is waiting for PostgreSQL) per request "
        f"in process (test client, {a.n} requests) = {1e6 / cpu:.0f} req/s CPU bound on one core before the "
        "HTTP server's own cost"
    )
    if a.endpoint == "login":
        # Argon2id runs on the hashing pool's threads: the main thread's CPU is the login's non-hash work.
        print(f"login: {main_cpu:.0f} µs CPU in the request thread (the non-hash work; Argon2id runs on its pool)")
        print(f"  of which inside the app (WSGI call), per request (µs CPU, over {a.n} logins):")
        for (method, path), total in per_request.items():
            print(f"    {method:4} {path:32} {total / a.n:7.0f}")
        print(f"    {'all':37} {sum(per_request.values()) / a.n:7.0f}")

    # CPU-time profile: time spent waiting for the database does not count here.
    prof = cProfile.Profile(time.thread_time if a.endpoint == "login" else time.process_time) if a.timer == "cpu" else cProfile.Profile()
    prof.enable()
    for _ in range(a.n):
        one()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats(a.sort).print_stats(a.top)
    if a.callers:
        stats.print_callers(a.callers)
    print(out.getvalue())
    return 0


def _login_step(app, issuer: str, flavour: str = "plain"):
    """One complete login as a new browser (its own cookie jar), as bench/logins.py does over HTTP.

    ``plain``: a first-party app, email and password. ``totp``: the same with an
    authenticator-app code as second step (the app clock moves 31 s per login, so
    every code is a fresh time step). ``consent``: a third-party app, so the
    consent page is shown and allowed (the
    bench forgets the consents before each login)."""
    import hashlib
    import re
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    import pyotp
    from seed import CONSENT_CLIENT, LOGIN_CLIENT, LOGIN_REDIRECT, TOTP_EMAIL, TOTP_SECRET, USER_PASSWORD, user_email

    csrf_re = re.compile(r'name="csrf_token" value="([^"]+)"')
    action_re = re.compile(r'<form method="post" action="([^"]+)"')
    client = CONSENT_CLIENT if flavour == "consent" else LOGIN_CLIENT
    basic = {"Authorization": "Basic " + base64.b64encode(":".join(client).encode()).decode()}
    origin = {"Origin": issuer}
    idp = app.extensions["visma_idp"]
    totp = pyotp.TOTP(TOTP_SECRET)

    # The request thread's CPU inside the app, per (method, path): the test client's own work is left out.
    per_request: dict[tuple[str, str], float] = {}
    inner = app.wsgi_app

    def timed_wsgi(environ, start_response):
        t = time.thread_time()
        try:
            return inner(environ, start_response)
        finally:
            key = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
            per_request[key] = per_request.get(key, 0.0) + (time.thread_time() - t) * 1e6

    app.wsgi_app = timed_wsgi

    def rel(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + ("?" + parts.query if parts.query else "")

    def forget_consents():  # every consent login meets the consent page (not timed: outside the app call)
        from sqlalchemy import delete

        from visma_idp.storage import db
        from visma_idp.storage.models import Consent

        with app.app_context():
            db.session.execute(delete(Consent).where(Consent.client_id == CONSENT_CLIENT[0]))
            db.session.commit()

    if flavour == "totp":  # an earlier run moved its own clock further: let this one's codes count again
        from sqlalchemy import update

        from visma_idp.storage import db
        from visma_idp.storage.models import Factor

        with app.app_context():
            db.session.execute(update(Factor).where(Factor.name == "bench").values(last_step=None))
            db.session.commit()

    def one():
        browser = app.test_client()
        if flavour == "totp":
            idp.clock.advance(31)
        elif flavour == "consent":
            forget_consents()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": client[0], "redirect_uri": LOGIN_REDIRECT,
                  "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        r = browser.get("/authorize?" + urlencode(params))
        email_page = rel(r.headers["Location"])
        tx = parse_qs(urlsplit(email_page).query)["tx"][0]
        html = browser.get(email_page).get_data(as_text=True)
        email = TOTP_EMAIL if flavour == "totp" else user_email(secrets.randbelow(8))
        r = browser.post(email_page, headers=origin, data={
            "email": email, "tx": tx, "csrf_token": csrf_re.search(html).group(1)})
        password_page = rel(r.headers["Location"])
        html = browser.get(password_page).get_data(as_text=True)
        r = browser.post(password_page, headers=origin, data={
            "password": USER_PASSWORD, "tx": tx, "csrf_token": csrf_re.search(html).group(1)})
        for _ in range(4):  # the pages that may come in between: the second step, consent
            assert r.status_code == 302, (r.status_code, r.get_data(as_text=True)[:2000])
            if r.headers["Location"].startswith(LOGIN_REDIRECT):
                break
            page = browser.get(rel(r.headers["Location"]))
            if page.status_code == 302:
                r = page
                continue
            html = page.get_data(as_text=True)
            form = {"csrf_token": csrf_re.search(html).group(1), "tx": tx}
            if 'name="decision"' in html:
                form["decision"] = "allow"
            else:
                form.update(method="totp", code=totp.at(idp.clock.time()))
            r = browser.post(rel(action_re.search(html).group(1).replace("&amp;", "&")), headers=origin, data=form)
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
        r = browser.post("/token", headers=basic, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": LOGIN_REDIRECT,
            "code_verifier": verifier})
        assert r.status_code == 200 and "id_token" in r.get_json(), r.get_data(as_text=True)[:300]

    return one, per_request


if __name__ == "__main__":
    sys.exit(main())
