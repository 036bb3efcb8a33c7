"""Where one token-endpoint request spends its time, in process (no HTTP server).

Builds the app against the bench database made by ``bench/run.py`` (or
``bench/seed.py``), warms up, then times N ``POST /token`` (client_credentials)
or ``POST /introspect`` requests through Flask's test client, once plain (µs per
request) and once under cProfile (top functions by own and cumulative time)::

    .venv/bin/python bench/profile_token.py                    # client_credentials
    .venv/bin/python bench/profile_token.py --endpoint introspect
    .venv/bin/python bench/profile_token.py --sort tottime --top 40
    .venv/bin/python bench/profile_token.py --endpoint refresh --statements --top 0

Against the database of ``bench/grow.py`` (a million users), signing in as any of them::

    .venv/bin/python bench/profile_token.py --dsn postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_growth \
        --endpoint login --login-users 1000000 --statements -n 200 --top 0

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
    ap.add_argument("--endpoint", choices=["token", "introspect", "login", "refresh"], default="token",
                    help="login: a whole browser login (authorize, email, password, continue, code at /token); "
                    "refresh: the refresh_token grant, rotating one login's refresh token")
    ap.add_argument("--login-users", type=int, default=8, metavar="N",
                    help="login and refresh: sign in as one of bench-user-0..N-1, picked at random (bench/grow.py "
                    "makes a million of them)")
    ap.add_argument("--statements", action="store_true",
                    help="count the SQL statements per request (per method and path for logins)")
    ap.add_argument("--flavour", choices=["plain", "totp", "consent"], default="plain",
                    help="login only: plain (first-party app), totp (second step) or consent (third-party app)")
    ap.add_argument("-n", type=int, default=3000, help="requests per measurement")
    ap.add_argument("--full-path", action="store_true",
                    help="without the fast lane (FAST_LANE=false): every request through Flask and Authlib")
    ap.add_argument("--redis", default="", metavar="URL",
                    help="REDIS_URL (e.g. redis://127.0.0.1:6379/0): introspection answers are then kept")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    ap.add_argument("--callers", metavar="PATTERN", help="also print who calls the functions matching PATTERN")
    ap.add_argument(
        "--timer", default="cpu", choices=["cpu", "wall"], help="profile CPU time (default) or wall time (includes waiting for PostgreSQL)"
    )
    a = ap.parse_args()

    from visma_idp import create_app

    app = create_app({"ISSUER": a.issuer, "DATABASE_URL": a.dsn, "SECRET_KEY": a.secret_key,
                      "FAST_LANE": not a.full_path, "REDIS_URL": a.redis or None})
    client = app.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-secret").decode()}
    cc = {"grant_type": "client_credentials", "scope": "api:read"}

    if a.endpoint == "token":

        def one():
            r = client.post("/token", data=cc, headers=auth)
            assert r.status_code == 200, r.get_data(as_text=True)
    elif a.endpoint == "login":
        one, per_request, per_wall = _login_step(app, a.issuer, a.flavour, a.login_users)
        a.n = min(a.n, 200)
    elif a.endpoint == "refresh":
        one = _refresh_step(app, a.issuer, a.login_users)
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
        per_wall.clear()
    statements = _StatementCounter(app) if a.statements else None
    t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(a.n):
        one()
    wall = (time.perf_counter() - t0) / a.n * 1e6
    cpu = (time.process_time() - c0) / a.n * 1e6
    main_cpu = (time.thread_time() - m0) / a.n * 1e6
    if statements is not None:
        statements.stop()
    print(
        f"{a.endpoint}: {cpu:.0f} µs CPU ({wall:.0f} µs wall, the rest is waiting for PostgreSQL) per request "
        f"in process (test client, {a.n} requests) = {1e6 / cpu:.0f} req/s CPU bound on one core before the "
        "HTTP server's own cost"
    )
    if a.endpoint == "login":
        # Argon2id runs on the hashing pool's threads: the main thread's CPU is the login's non-hash work.
        print(f"login: {main_cpu:.0f} µs CPU in the request thread (the non-hash work; Argon2id runs on its pool)")
        print(f"  of which inside the app (WSGI call), per request (µs CPU, µs wall, over {a.n} logins):")
        for (method, path), total in per_request.items():
            print(f"    {method:4} {path:32} {total / a.n:7.0f} {per_wall[(method, path)] / a.n:9.0f}")
        print(f"    {'all':37} {sum(per_request.values()) / a.n:7.0f} {sum(per_wall.values()) / a.n:9.0f}")
    if statements is not None:
        print(f"SQL statements per {a.endpoint} (over {a.n}): {statements.total / a.n:.2f}, in "
              f"{statements.transactions / a.n:.2f} transactions (BEGIN ... COMMIT; the rest autocommit) = "
              f"{(statements.total + 2 * statements.transactions) / a.n:.2f} round trips to the database")
        for (method, path), count in statements.by_path.items():
            print(f"    {method:4} {path:32} {count / a.n:7.2f}")

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


class _StatementCounter:
    """Counts the statements sent to the database (``before_cursor_execute``), in all and per request path."""

    def __init__(self, app):
        from flask import has_request_context, request
        from sqlalchemy import event

        from visma_idp.storage import db

        with app.app_context():
            self.engine = db.engine
        self.total = 0
        self.by_path: dict[tuple[str, str], int] = {}

        def count(conn, cursor, statement, parameters, context, executemany):
            self.total += 1
            if has_request_context():
                key = (request.method, request.path)
                self.by_path[key] = self.by_path.get(key, 0) + 1

        self.transactions = 0  # each BEGIN and its COMMIT or ROLLBACK: two more round trips

        def begin(conn):
            # an AUTOCOMMIT connection (token_state, touch_session) sends no BEGIN
            if not getattr(conn.connection.dbapi_connection, "autocommit", False):
                self.transactions += 1

        self._count, self._begin = count, begin
        event.listen(self.engine, "before_cursor_execute", count)
        event.listen(self.engine, "begin", begin)

    def stop(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._count)
        event.remove(self.engine, "begin", self._begin)


def _refresh_step(app, issuer: str, login_users: int):
    """The refresh_token grant: one login (as a random bench user) gives a refresh
    token; each call rotates it (a lookup by digest, the claim, two inserts)."""
    from seed import LOGIN_CLIENT

    login, _, _ = _login_step(app, issuer, "plain", login_users, scope="openid offline_access")
    basic = {"Authorization": "Basic " + base64.b64encode(":".join(LOGIN_CLIENT).encode()).decode()}
    client = app.test_client()
    first = login()
    if "refresh_token" not in first:
        raise SystemExit("no refresh token: the bench-web client needs the scope offline_access (bench/grow.py "
                         "gives it; bench/seed.py does not)")
    state = {"refresh": first["refresh_token"], "uses": 0}

    def one():
        if state["uses"] >= 50:  # a new family now and then, for another user
            state["refresh"], state["uses"] = login()["refresh_token"], 0
        r = client.post("/token", headers=basic, data={"grant_type": "refresh_token",
                                                        "refresh_token": state["refresh"]})
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        state["refresh"] = r.get_json()["refresh_token"]
        state["uses"] += 1

    return one


def _login_step(app, issuer: str, flavour: str = "plain", login_users: int = 8, scope: str = "openid"):
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
    per_wall: dict[tuple[str, str], float] = {}
    inner = app.wsgi_app

    def timed_wsgi(environ, start_response):
        t, w = time.thread_time(), time.perf_counter()
        try:
            return inner(environ, start_response)
        finally:
            key = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
            per_request[key] = per_request.get(key, 0.0) + (time.thread_time() - t) * 1e6
            per_wall[key] = per_wall.get(key, 0.0) + (time.perf_counter() - w) * 1e6

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
                  "scope": scope, "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        r = browser.get("/authorize?" + urlencode(params))
        email_page = rel(r.headers["Location"])
        tx = parse_qs(urlsplit(email_page).query)["tx"][0]
        html = browser.get(email_page).get_data(as_text=True)
        email = TOTP_EMAIL if flavour == "totp" else user_email(secrets.randbelow(login_users))
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
        return r.get_json()

    return one, per_request, per_wall


if __name__ == "__main__":
    sys.exit(main())
