"""Three provider nodes, one PostgreSQL database, one Redis: the flows of
docs/scale.md's "several nodes" section, across real server processes.

Three ``visma-idp serve`` processes (granian, one worker each) listen on
their own loopback ports and share the database and Redis, as nodes behind a
load balancer do. The test plays the balancer: it picks the node of each
request. All share one issuer (node A's address), so links point at A and
the test sends each request where it wants (cookies on 127.0.0.1 go to any
port). Mail goes to a real SMTP server (aiosmtpd) and back-channel logout
tokens to a real HTTP receiver, both on loopback.

The settings shorten the caches to 2 seconds (``KEY_CACHE_SECONDS``,
``CLIENT_CACHE_SECONDS``), the bounds this test checks; production's are 30
and 10 (docs/scale.md).

Runs in the PostgreSQL pass only (``postgresql_only``): it needs PostgreSQL
and Redis whatever the pass, and once is enough.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.conftest import FAST_ARGON2, PG_BASE, TEST_SECRET
from tests.helpers import csrf, pkce_pair, services
from tests.mailbox import SmtpCapture
from tests.test_cli import cli_command, free_port

pytestmark = [pytest.mark.postgresql_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery"
SVC_SECRET = "svc-secret-0123456789abcdef"
WEB_SECRET = "web-secret-0123456789abcdef"
CACHE_SECONDS = 2
REDIRECT = "https://rp.example.com/cb"


class Receiver:
    """A relying party's back-channel logout endpoint: keeps every POST body."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(parse_qs(body.decode()))
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    def __init__(self, tmp: Path) -> None:
        import psycopg
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            services.missing("Redis", exc)
        self.db_name = f"visma_idp_nodes_{uuid.uuid4().hex[:10]}"
        self.admin_dsn = PG_BASE.replace("postgresql+psycopg", "postgresql") + "/test"
        try:
            with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
        except psycopg.OperationalError as exc:
            services.missing("PostgreSQL", exc)
        self.tmp = tmp
        self.smtp = SmtpCapture()
        self.smtp.start()
        self.receiver = Receiver()
        self.ports = {name: free_port() for name in "ABC"}
        self.issuer = f"http://127.0.0.1:{self.ports['A']}"
        self.settings = {
            "ISSUER": self.issuer, "SECRET_KEY": TEST_SECRET, "DATABASE_URL": f"{PG_BASE}/{self.db_name}",
            "REDIS_URL": REDIS_URL, "SMTP_URL": self.smtp.url, "KEY_CACHE_SECONDS": CACHE_SECONDS,
            "CLIENT_CACHE_SECONDS": CACHE_SECONDS, "INSTANCE_PATH": str(tmp / "instance"),
            "THROTTLE_FREE_ATTEMPTS": 4, "THROTTLE_MAX_FAILURES": 5, "LOGOUT_RETRY_SECONDS": 1,
            **FAST_ARGON2,
        }
        self.env = {**os.environ, **{f"VISMA_IDP_{k}": str(v) for k, v in self.settings.items()}}
        self.env.pop("VISMA_IDP_CONFIG", None)
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            self.run_cli("db", "upgrade")
            for name in "ABC":
                self.start(name)
            for name in "ABC":
                self.wait_up(name)
        except BaseException:
            self.close()  # no server process outlives a failed start
            raise
        self.tag = uuid.uuid4().hex[:8]

    # -- processes ------------------------------------------------------------------

    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*cli_command(), *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def start(self, name: str) -> None:
        with open(self.tmp / f"node-{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.procs[name] = subprocess.Popen(
                [*cli_command(), "serve", "--port", str(self.ports[name]), "--workers", "1", "--threads", "4"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_up(self, name: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.procs[name].poll() is None, self.log(name)
            try:
                if requests.get(self.base(name) + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"node {name} did not come up: {self.log(name)}")

    def log(self, name: str) -> str:
        return (self.tmp / f"node-{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def on(self, name: str, url: str) -> str:
        """``url`` (built from the issuer) sent to node ``name`` instead."""
        parts = urlsplit(url)
        return self.base(name) + parts.path + ("?" + parts.query if parts.query else "")

    def close(self) -> None:
        import psycopg

        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.smtp.stop()
        self.receiver.close()
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    # -- the shared database, as an operator's tool sees it -----------------------------

    def admin_app(self):
        from visma_idp import create_app

        return create_app(dict(self.settings))


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def claims_of(jwt: str) -> tuple[dict, dict]:
    head, body = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in jwt.split(".")[:2])
    return head, body


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from visma_idp import api
    from visma_idp.admin.service import create_user
    from visma_idp.oidc.registration import create_client
    from visma_idp.storage import db

    made = Cluster(tmp_path_factory.mktemp("nodes"))
    try:
        app = made.admin_app()
        with app.app_context():
            create_client("web", redirect_uris=[REDIRECT], grant_types=["authorization_code", "refresh_token"],
                          scope="openid email offline_access", secret=WEB_SECRET, skip_consent=True,
                          backchannel_logout_uri=made.receiver.url,
                          post_logout_redirect_uris=["https://rp.example.com/bye"])
            create_client("svc", grant_types=["client_credentials"], scope="api:read", secret=SVC_SECRET)
            db.session.commit()
        made.app = app
        made.svc_secret = SVC_SECRET
        made.api = api
        made.create_user = create_user
        yield made
    finally:
        made.close()


def user(cluster: Cluster, name: str) -> str:
    from visma_idp.storage import db

    email = f"{name}-{cluster.tag}@example.no"
    with cluster.app.app_context():
        cluster.create_user(email, name.title(), PASSWORD)
        db.session.commit()
    return email


class Browser:
    """A person's browser; each step goes to the node the test names."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.s = requests.Session()
        self.verifier, challenge = pkce_pair()
        self.params = {"response_type": "code", "client_id": "web", "redirect_uri": REDIRECT,
                       "scope": "openid email offline_access", "state": uuid.uuid4().hex, "nonce": uuid.uuid4().hex,
                       "code_challenge": challenge, "code_challenge_method": "S256"}

    def get(self, node: str, url: str) -> requests.Response:
        return self.s.get(self.c.on(node, url), allow_redirects=False, timeout=30)

    def post(self, node: str, url: str, data: dict) -> requests.Response:
        return self.s.post(self.c.on(node, url), data=data, allow_redirects=False, timeout=30)

    def authorize(self, node: str) -> str:
        r = self.s.get(self.c.base(node) + "/authorize?" + urlencode(self.params), allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def email_step(self, node: str, email_page: str, email: str) -> str:
        page = self.get(node, email_page)
        assert page.status_code == 200, page.text
        r = self.post(node, email_page, {"email": email, "csrf_token": csrf(page.text)})
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def password_step(self, node: str, password_page: str, password: str) -> requests.Response:
        page = self.get(node, password_page)
        assert page.status_code == 200, page.text
        return self.post(node, password_page, {"password": password, "csrf_token": csrf(page.text)})

    def until_code(self, node: str, r: requests.Response) -> dict[str, str]:
        for _ in range(5):
            assert r.status_code == 302, r.text
            location = r.headers["Location"]
            if location.startswith(REDIRECT):
                answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                assert answer["state"] == self.params["state"]
                assert answer["iss"] == self.c.issuer
                return answer
            r = self.get(node, location)
        raise AssertionError("no code")


def redeem(cluster: Cluster, node: str, browser: Browser, code: str) -> dict:
    r = requests.post(cluster.base(node) + "/token", headers=basic("web", WEB_SECRET), timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": browser.verifier})
    assert r.status_code == 200, r.text
    return r.json()


def cc_token(cluster: Cluster, node: str) -> str:
    r = requests.post(cluster.base(node) + "/token", headers=basic("svc", cluster.svc_secret), timeout=30,
                      data={"grant_type": "client_credentials", "scope": "api:read"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def introspect(cluster: Cluster, node: str, token: str) -> dict:
    r = requests.post(cluster.base(node) + "/introspect", headers=basic("svc", cluster.svc_secret), data={"token": token},
                      timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def eventually(check, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within} s")
        time.sleep(0.1)


def test_a_sign_in_and_its_tokens_cross_the_nodes(cluster):
    """Sign-in on A, code redeemed on B, refresh on C, introspection and
    UserInfo anywhere, the old refresh token refused on A."""
    email = user(cluster, "kari")
    b = Browser(cluster)
    email_page = b.authorize("A")
    password_page = b.email_step("A", email_page, email)
    answer = b.until_code("A", b.password_step("A", password_page, PASSWORD))
    tokens = redeem(cluster, "B", b, answer["code"])
    _, id_claims = claims_of(tokens["id_token"])
    assert id_claims["iss"] == cluster.issuer and id_claims["nonce"] == b.params["nonce"]
    refreshed = requests.post(cluster.base("C") + "/token", headers=basic("web", WEB_SECRET), timeout=30,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    info = requests.get(cluster.base("B") + "/userinfo", timeout=30,
                        headers={"Authorization": "Bearer " + refreshed.json()["access_token"]})
    assert info.status_code == 200 and info.json()["email"] == email
    reused = requests.post(cluster.base("A") + "/token", headers=basic("web", WEB_SECRET), timeout=30,
                           data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # the code is spent everywhere
    again = requests.post(cluster.base("C") + "/token", headers=basic("web", WEB_SECRET), timeout=30, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT,
        "code_verifier": b.verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_failed_passwords_are_counted_across_the_nodes(cluster):
    """Five wrong passwords, spread over three nodes, lock the account on every node."""
    email = user(cluster, "ola")
    statuses = []
    for node in "ABCAB":
        b = Browser(cluster)
        password_page = b.email_step(node, b.authorize(node), email)
        statuses.append(b.password_step(node, password_page, "not the password").status_code)
    assert statuses == [401, 401, 401, 401, 429]
    for node in "ABC":
        b = Browser(cluster)
        password_page = b.email_step(node, b.authorize(node), email)
        locked = b.password_step(node, password_page, PASSWORD)
        assert locked.status_code == 429, (node, locked.text[:300])
        assert "Sign-in is paused" in locked.text


def test_a_revocation_on_one_node_is_seen_by_introspection_on_another_at_once(cluster):
    token = cc_token(cluster, "A")
    for _ in range(3):  # B keeps the answer in memory after the first
        assert introspect(cluster, "B", token)["active"] is True
    r = requests.post(cluster.base("A") + "/revoke", headers=basic("svc", cluster.svc_secret), data={"token": token},
                      timeout=30)
    assert r.status_code == 200
    assert introspect(cluster, "B", token) == {"active": False}
    assert introspect(cluster, "C", token) == {"active": False}


def test_a_new_signing_key_is_used_by_every_node_within_the_key_cache(cluster):
    old_kid = claims_of(cc_token(cluster, "B"))[0]["kid"]
    rotated_at = time.monotonic()
    cluster.run_cli("keys", "rotate")
    new_kids = set()

    def every_node_signs_with_a_new_key() -> bool:
        kids = {node: claims_of(cc_token(cluster, node))[0]["kid"] for node in "ABC"}
        new_kids.update(kids.values())
        return old_kid not in kids.values()

    done = eventually(every_node_signs_with_a_new_key, CACHE_SECONDS + 5, "the new key on every node")
    assert done - rotated_at <= CACHE_SECONDS + 5
    # a token signed with the new key verifies on every node, and the old key's tokens still do
    fresh = cc_token(cluster, "A")
    assert all(introspect(cluster, node, fresh)["active"] for node in "ABC")
    jwks = requests.get(cluster.base("C") + "/jwks", timeout=30).json()
    assert old_kid in {k["kid"] for k in jwks["keys"]}  # still published until its tokens expire


def test_a_client_change_reaches_every_node_within_the_client_cache(cluster):
    from visma_idp.oidc.registration import find_client, rotate_secret
    from visma_idp.storage import db

    for node in "ABC":  # every node has the client in its cache
        cc_token(cluster, node)
    with cluster.app.app_context():
        new_secret = rotate_secret(find_client("svc"))
        db.session.commit()
    changed_at = time.monotonic()

    old = cluster.svc_secret

    def old_secret_refused_everywhere() -> bool:
        return all(requests.post(cluster.base(node) + "/token", headers=basic("svc", old), timeout=30,
                                 data={"grant_type": "client_credentials"}).status_code == 401 for node in "ABC")

    done = eventually(old_secret_refused_everywhere, CACHE_SECONDS + 5, "the old secret refused")
    assert done - changed_at <= CACHE_SECONDS + 5
    cluster.svc_secret = new_secret
    for node in "ABC":
        cc_token(cluster, node)


def test_each_mail_is_sent_once_by_workers_on_every_node(cluster):
    from visma_idp.storage import db

    invited = [f"invited-{i}-{cluster.tag}@example.no" for i in range(6)]
    with cluster.app.app_context():
        for email in invited:
            cluster.create_user(email, "Invited", None)
        db.session.commit()
    workers = [subprocess.Popen([*cli_command(), "mail", "worker", "--once"], cwd=ROOT, env=cluster.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    for w in workers:
        out, _ = w.communicate(timeout=120)
        assert w.returncode == 0, out
    received = [m["To"] for m in cluster.smtp.received]
    for email in invited:
        assert received.count(email) == 1, (email, received)


def test_a_back_channel_logout_is_sent_once_whatever_the_workers(cluster):
    email = user(cluster, "per")
    b = Browser(cluster)
    answer = b.until_code("B", b.password_step("B", b.email_step("B", b.authorize("B"), email), PASSWORD))
    tokens = redeem(cluster, "C", b, answer["code"])
    sid = claims_of(tokens["id_token"])[1]["sid"]
    before = len(cluster.receiver.received)
    out = b.get("A", cluster.issuer + "/logout?" + urlencode({
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/bye"}))
    assert out.status_code == 302 and out.headers["Location"].startswith("https://rp.example.com/bye")
    workers = [subprocess.Popen([*cli_command(), "logout", "worker", "--once"], cwd=ROOT, env=cluster.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    for w in workers:
        w.communicate(timeout=120)
        assert w.returncode == 0
    mine = [r for r in cluster.receiver.received[before:]
            if claims_of(r["logout_token"][0])[1].get("sid") == sid]
    assert len(mine) == 1, cluster.receiver.received


def test_a_sign_in_survives_its_node_dying_halfway(cluster):
    """Email on C, C killed (SIGKILL), password on A: the interaction and the
    cookies live in the database and the browser, not in C."""
    email = user(cluster, "siri")
    b = Browser(cluster)
    password_page = b.email_step("C", b.authorize("C"), email)
    cluster.kill("C")
    answer = b.until_code("A", b.password_step("A", password_page, PASSWORD))
    tokens = redeem(cluster, "B", b, answer["code"])
    assert claims_of(tokens["id_token"])[1]["nonce"] == b.params["nonce"]
