"""Back-channel logout (OIDC Back-Channel Logout 1.0, provider side): the
logout token checked by an independent library (joserfc) and the spec's
claim rules, delivered before the RP-initiated logout redirects, through the
queue for every other way a session ends (sign out elsewhere, expiry),
retried after a failure, and sent exactly once by several workers."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from tests import test_cli as cli_tests
from tests.helpers import Flow

# the CLI's fixtures (tests/test_cli.py), named here so pytest finds them
env, run, migrated = cli_tests.env, cli_tests.run, cli_tests.migrated

REDIRECT = "https://rp.example.com/callback"
BYE = "https://rp.example.com/bye"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A relying app's back-channel logout endpoint on a loopback port: it
    records each POST and answers with the next of ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with receiver.lock:
                    receiver.received.append({"form": parse_qs(body), "type": self.headers.get("Content-Type")})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tokens(self) -> list[str]:
        with self.lock:
            return [r["form"]["logout_token"][0] for r in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def expense(app, client, make_user, make_client, receiver):
    """Kari, the Expense app (back-channel logout registered) and a login flow for it."""
    make_user()
    secret = make_client("expense", redirect_uris=[REDIRECT], post_logout_redirect_uris=[BYE], skip_consent=True,
                         backchannel_logout_uri=receiver.url, backchannel_logout_session_required=True)
    make_client("quiet", redirect_uris=[REDIRECT], skip_consent=True)  # registers no logout URI
    return Flow(app, client, client_id="expense", client_secret=secret, redirect_uri=REDIRECT)


def unverified(token: str) -> dict:
    import base64

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check_logout_token(client, token: str, *, sub: str, sid: str) -> dict:
    """Verify with joserfc against the provider's JWKS and apply §2.6's rules."""
    keys = KeySet.import_key_set(client.get("/jwks").get_json())
    decoded = jwt.decode(token, keys)
    header, claims = decoded.header, decoded.claims
    assert header["typ"] == "logout+jwt" and header["alg"] != "none" and header["kid"]
    assert claims["iss"] == "http://127.0.0.1:5000" and claims["aud"] == "expense"
    assert claims["events"] == {EVENT: {}}
    assert claims["sub"] == sub and claims["sid"] == sid
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 120 and claims["jti"]
    return claims


def deliveries(app):
    from visma_idp.storage import LogoutDelivery, db

    with app.app_context():
        return list(db.session.scalars(select(LogoutDelivery).order_by(LogoutDelivery.id)))


def run_worker(app):
    from visma_idp.oidc.backchannel import run_once

    with app.app_context():
        return run_once(app.extensions["visma_idp"])


def test_discovery_advertises_back_channel_logout_with_sessions(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


def test_rp_initiated_logout_tells_the_app_before_it_redirects(app, client, expense, receiver):
    tokens = expense.tokens()
    id_claims = unverified(tokens["id_token"])
    assert id_claims["sid"]  # ID tokens carry the session's id
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE,
                                              "state": "s1"}))
    assert resp.status_code == 302 and resp.headers["Location"].startswith(BYE)
    # done before the redirect: the app has its token already
    [token] = receiver.tokens()
    assert receiver.received[0]["type"] == "application/x-www-form-urlencoded"
    claims = check_logout_token(client, token, sub=id_claims["sub"], sid=id_claims["sid"])
    [row] = deliveries(app)
    assert (row.status, row.attempts, row.reason, row.jti) == ("sent", 1, "rp_logout", claims["jti"])
    # nothing more goes later
    report = run_worker(app)
    assert report.tried == 0 and len(receiver.tokens()) == 1


def test_a_sign_out_elsewhere_reaches_the_app_through_the_worker(app, client, expense, receiver):
    from visma_idp.account.sessions import revoke_everything
    from visma_idp.storage import db, queries

    tokens = expense.tokens()
    id_claims = unverified(tokens["id_token"])
    with app.app_context():
        revoke_everything(queries.user_by_email("kari@example.no").id, reason="password_changed")
        db.session.commit()
    assert receiver.tokens() == []  # the worker tells the apps
    report = run_worker(app)
    assert (report.queued, report.sent) == (1, 1)
    [token] = receiver.tokens()
    check_logout_token(client, token, sub=id_claims["sub"], sid=id_claims["sid"])
    assert run_worker(app).tried == 0 and len(receiver.tokens()) == 1  # once


def test_an_expired_session_is_told_too(app, idp, client, expense, receiver):
    tokens = expense.tokens()
    id_claims = unverified(tokens["id_token"])
    assert run_worker(app).queued == 0  # the session is alive
    idp.clock.advance(idp.settings["SESSION_LIFETIME"] + 1)
    report = run_worker(app)
    assert (report.queued, report.sent) == (1, 1)
    check_logout_token(client, receiver.tokens()[0], sub=id_claims["sub"], sid=id_claims["sid"])
    assert deliveries(app)[0].reason == "expired"


def test_only_apps_that_took_part_and_registered_a_uri_are_told(app, client, expense, receiver):
    quiet = Flow(app, client, client_id="quiet", client_secret="expense-secret-0123456789", redirect_uri=REDIRECT)
    quiet.tokens()  # in the same browser session, but no logout URI
    client.get("/logout")  # no hint: a confirmation page
    assert receiver.tokens() == [] and deliveries(app) == []


def test_an_app_that_is_down_gets_its_token_when_it_is_back(app, idp, client, expense, receiver):
    receiver.statuses = [503, 500]
    tokens = expense.tokens()
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE}))
    assert resp.status_code == 302  # the person is signed out all the same
    [row] = deliveries(app)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 503")
    assert run_worker(app).tried == 0  # not due yet
    idp.clock.advance(idp.settings["LOGOUT_RETRY_SECONDS"] + 1)
    assert run_worker(app).retrying == 1  # 500: waits twice as long now
    idp.clock.advance(idp.settings["LOGOUT_RETRY_SECONDS"] + 1)
    assert run_worker(app).tried == 0
    idp.clock.advance(idp.settings["LOGOUT_RETRY_SECONDS"])
    assert run_worker(app).sent == 1
    first, second, third = receiver.tokens()
    assert len({unverified(t)["jti"] for t in (first, second, third)}) == 1  # the same jti each time
    assert deliveries(app)[0].status == "sent"


def test_a_delivery_that_never_succeeds_is_failed_and_can_be_retried(app, idp, client, expense, receiver):
    from visma_idp.oidc import backchannel
    from visma_idp.storage import db

    receiver.statuses = [500] * 100
    tokens = expense.tokens()
    client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE}))
    for _ in range(idp.settings["LOGOUT_MAX_ATTEMPTS"]):
        idp.clock.advance(backchannel.MAX_BACKOFF + 1)
        run_worker(app)
    [row] = deliveries(app)
    assert (row.status, row.attempts) == ("failed", idp.settings["LOGOUT_MAX_ATTEMPTS"])
    receiver.statuses = []
    with app.app_context():
        assert backchannel.retry(idp) == [row.id]
        db.session.commit()
    assert run_worker(app).sent == 1
    assert deliveries(app)[0].status == "sent"


def test_two_nodes_queue_and_send_every_token_exactly_once(app, make_app, make_client, make_user, receiver):
    from visma_idp.oidc.backchannel import run_once
    from visma_idp.storage import SsoSession, User, db

    make_user()
    make_client("expense", redirect_uris=[REDIRECT], skip_consent=True, backchannel_logout_uri=receiver.url)
    secret = "expense-secret-0123456789"
    for _n in range(12):  # twelve browsers, one session each
        Flow(app, app.test_client(), client_id="expense", client_secret=secret, redirect_uri=REDIRECT).tokens()
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(SsoSession)) == 12
        user = db.session.scalar(select(User))
        for row in db.session.scalars(select(SsoSession)):
            row.ended_at = app.extensions["visma_idp"].clock.now()
        db.session.commit()
        sub = user.sub
    nodes = [make_app(), make_app()]
    workers = [(node, n) for node in nodes for n in range(2)]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []
    sent: Counter[str] = Counter()

    def work(node, n):
        try:
            start.wait()
            for _ in range(20):
                with node.app_context():
                    report = run_once(node.extensions["visma_idp"], limit=2)
                sent[f"{id(node)}-{n}"] += report.sent
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=worker) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    received = Counter(unverified(t)["sid"] for t in receiver.tokens())
    assert len(received) == 12 and set(received.values()) == {1}
    assert {unverified(t)["sub"] for t in receiver.tokens()} == {sub}
    assert sum(sent.values()) == 12
    assert len(deliveries(app)) == 12


def test_the_logout_commands_list_and_retry(migrated, make_app):
    from visma_idp.storage import LogoutDelivery, db

    node = make_app()
    with node.app_context():
        db.session.add(LogoutDelivery(client_id="expense", uri="https://rp.example.com/bc", sub="s", sid="x",
                                      jti="j1", reason="ended", status="failed", attempts=10, created_at=1,
                                      next_attempt_at=1, last_error="HTTP 500"))
        db.session.commit()
    listed = migrated("logout", "list", "--status", "failed")
    assert "expense" in listed.stdout and "HTTP 500" in listed.stdout and "j1" not in listed.stdout
    assert "--failed" in migrated("logout", "retry", expect=1).stderr
    assert "queued again: 1" in migrated("logout", "retry", "--failed").stdout
    with node.app_context():
        row = db.session.scalar(select(LogoutDelivery))
        assert (row.status, row.attempts) == ("pending", 0)
