"""Every statement the hot paths issue can be served by an index (issue 14).

The statements are not copied here: they are recorded from the application
itself (a ``before_cursor_execute`` listener on the engine) while it runs a
login and a code exchange, a refresh, an introspection, UserInfo, a second
login in the same browser, a revocation, an RP-initiated logout with a
back-channel logout queued, one round of the mail and logout workers, the
agreement look-ups and a purge. Each recorded SELECT, UPDATE and DELETE is
then explained with its own parameters on the schema the migrations make,
its tables holding a few thousand rows (filled by SQL, then ANALYZEd).

With so few rows the planner may rightly prefer a sequential scan, so the
plans are made with ``enable_seqscan = off``: a ``Seq Scan`` node on one of
the big tables then means that no index can serve the statement, which at a
million users and ten million tokens is a scan of the whole table. An index
scan that walks a whole index (no ``Index Cond``, only a ``Filter``) counts
as a scan too, except the purge's batch selection, which walks the primary
key in order and stops at its LIMIT (``bench/purge_watch.py`` measures it at
ten million rows; see ``docs/scale.md``).

PostgreSQL only: SQLite's planner is not what production runs.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from sqlalchemy import event, text

from tests.helpers import drop_all_tables

# query plans are PostgreSQL's: the SQLite pass deselects these tests (tests/conftest.py)
pytestmark = pytest.mark.postgresql_only


# ``pg_database`` (tests/conftest.py) names its database after pytest-xdist's
# ``worker_id`` and ``testrun_uid``; these give the same values as xdist's own
# fixtures, so this module also runs with ``-p no:xdist``.
@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


@pytest.fixture(scope="session")
def testrun_uid(request):
    import uuid

    return getattr(request.config, "workerinput", {}).get("testrunuid") or uuid.uuid4().hex


# the tables that grow with users, sign-ins and time
BIG = {
    "users", "tokens", "authorization_codes", "sso_sessions", "memberships", "agreements", "audit_events",
    "mail_outbox", "logout_deliveries", "consents", "factors", "account_tokens", "seen_jtis", "recovery_codes",
    "password_history", "sms_codes", "one_time_codes", "agreement_invitations", "upstream_identities",
    "national_identities", "profile_change_notices", "role_change_notices", "scim_resources",
}

FILL = [
    """INSERT INTO users (sub, email, email_verified, name, phone_number_verified, is_active, created_at,
                         updated_at, notify_profile_changes, mfa_required, must_enrol_factor)
       SELECT md5('u' || n)::uuid::text, 'user' || n || '@example.com', true, 'User ' || n, false, true,
              :now, :now, true, false, false FROM generate_series(1, 3000) AS n""",
    """INSERT INTO agreements (public_id, name, org_number, domains, status, created_at)
       SELECT md5('a' || n)::uuid::text, 'Company ' || n, lpad(n::text, 9, '0'), '[]', 'active', :now
       FROM generate_series(1, 300) AS n""",
    """INSERT INTO memberships (agreement_id, user_id, roles, created_at)
       SELECT DISTINCT ON (a, u) a, u, '[]', :now FROM (
           SELECT 1 + (n * 7 + j * 13) % 300 AS a, 1 + n % 3000 AS u
           FROM generate_series(1, 3000) AS n, generate_series(0, 1) AS j) AS m""",
    """INSERT INTO sso_sessions (id, public_id, user_id, created_at, auth_time, expires_at, last_seen_at, ended_at,
                                logout_queued_at)
       SELECT md5('s' || n) || md5('t' || n), md5('p' || n)::uuid::text, 1 + n % 3000, :now - n * 600,
              :now - n * 600, :now - n * 600 + 43200, :now - n * 600,
              CASE WHEN n % 3 = 0 THEN :now - n * 600 + 3600 END, :now - n * 600 + 43200
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO authorization_codes (code_digest, client_id, user_id, redirect_uri, scope, nonce, auth_time,
                                       sid, issued_at, expires_at, used_at)
       SELECT md5('c' || n) || md5('d' || n), 'expense', 1 + n % 3000, 'https://rp.example.com/callback',
              'openid', md5('n' || n), :now - n * 300, md5('p' || n % 3000)::uuid::text,
              :now - n * 300, :now - n * 300 + 60, :now - n * 300 + 1
       FROM generate_series(1, 5000) AS n""",
    """INSERT INTO tokens (kind, digest, client_id, user_id, scope, family_id, code_id, issued_at, expires_at,
                          revoked_at, sid)
       SELECT CASE WHEN n % 2 = 0 THEN 'access' ELSE 'refresh' END, md5('k' || n) || md5('l' || n), 'expense',
              1 + n / 4 % 3000, 'openid offline_access', md5('f' || n / 4)::uuid::text, 1 + n / 4 % 5000,
              :now - n * 100, :now - n * 100 + CASE WHEN n % 2 = 0 THEN 600 ELSE 2592000 END,
              CASE WHEN n % 10 = 0 THEN :now - n * 100 + 60 END, md5('p' || n / 4 % 3000)::uuid::text
       FROM generate_series(1, 20000) AS n""",
    """INSERT INTO audit_events (at, event, outcome, user_id, client_id)
       SELECT :now - n * 60, 'login_succeeded', 'success', 1 + n % 3000, 'expense'
       FROM generate_series(1, 5000) AS n""",
    """INSERT INTO consents (user_id, client_id, scopes, granted_at)
       SELECT n, 'app' || n % 5, '["openid"]', :now FROM generate_series(2, 3000) AS n""",
    """INSERT INTO mail_outbox (kind, user_id, to_addr, subject, text_body_enc, html_body_enc, locale, message_id,
                               status, attempts, created_at, next_attempt_at, sent_at)
       SELECT 'welcome', 1 + n % 3000, 'user' || n || '@example.com', 'Hello', 'x', 'x', 'en',
              '<' || n || '@bench>', 'sent', 1, :now - n * 60, :now - n * 60, :now - n * 60 + 1
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO logout_deliveries (client_id, uri, sub, sid, jti, reason, status, attempts, created_at,
                                     next_attempt_at, sent_at)
       SELECT 'expense', 'https://rp.example.com/bcl', md5('u' || n)::uuid::text, md5('p' || n)::uuid::text,
              md5('j' || n), 'ended', 'sent', 1, :now - n * 60, :now - n * 60, :now - n * 60 + 1
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO account_tokens (digest, kind, user_id, created_at, expires_at)
       SELECT md5('a' || n) || md5('b' || n), 'reset', 1 + n % 3000, :now - n * 60, :now - n * 60 + 1800
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO profile_change_notices (user_id, fields, first_at, due_at, sent_at)
       SELECT 1 + n % 3000, '["name"]', :now - n * 60, :now - n * 60 + 300, :now - n * 60 + 301
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO role_change_notices (user_id, agreement, agreement_name, added, removed, first_at, due_at, sent_at)
       SELECT 1 + n % 3000, md5('a' || n % 300)::uuid::text, 'Company', '["Admin"]', '[]', :now - n * 60,
              :now - n * 60 + 300, :now - n * 60 + 301
       FROM generate_series(1, 3000) AS n""",
    """INSERT INTO seen_jtis (jti_digest, expires_at)
       SELECT md5('s' || n) || md5('j' || n), :now - n * 60 + 600 FROM generate_series(1, 3000) AS n""",
]



class Recorder:
    """The SELECT, UPDATE and DELETE statements the engine runs, with their parameters and a label."""

    def __init__(self, engine):
        self.engine = engine
        self.label = ""
        self.seen: list[tuple[str, str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "UPDATE", "DELETE", "WITH") and not executemany:
            self.seen.append((self.label, statement, parameters))

    def stop(self):
        event.remove(self.engine, "before_cursor_execute", self._record)


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def scans_of(engine, statement: str, parameters, *, ordered_walk_ok: bool = False,
             off: tuple[str, ...] = ("enable_seqscan",)) -> tuple[list[str], dict]:
    """The scans of big tables that read them whole, and the plan, with ``enable_seqscan`` off.

    ``ordered_walk_ok``: an index walked in order without a condition is fine
    (the purge's batch selection, which stops at its LIMIT)."""
    with engine.connect() as conn:
        for setting in off:
            conn.execute(text(f"SET {setting} = off"))
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
        conn.rollback()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    whole = []
    for node in plan_nodes(plan):
        table = node.get("Relation Name")
        if table not in BIG:
            continue
        kind = node["Node Type"]
        if kind == "Seq Scan":
            whole.append(f"Seq Scan on {table}")
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node:
            if not ordered_walk_ok:
                whole.append(f"{kind} of all of {node['Index Name']} on {table} (filter {node.get('Filter')})")
    return whole, plan


@pytest.fixture
def filled(app, idp, settings, key_rows):
    """The app on the schema the migrations make (what production runs), filled and ANALYZEd;
    afterwards the tables the models make again, for the tests that follow."""
    from visma_idp.migrate import upgrade
    from visma_idp.storage import SigningKey, db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop_all_tables(settings["DATABASE_URL"])
    upgrade(app)
    with app.app_context():
        db.session.execute(db.delete(SigningKey))  # the keys this session's apps hold, not new ones
        for values in key_rows.values():
            db.session.add(SigningKey(**values))
        db.session.commit()
        now = idp.clock.now()
        with db.engine.begin() as conn:
            for statement in FILL:
                conn.execute(text(statement), {"now": now})
            # a message waiting for the mail worker, a logout token waiting for the logout worker
            conn.execute(text(
                "INSERT INTO mail_outbox (kind, to_addr, subject, text_body_enc, html_body_enc, locale, message_id,"
                " status, attempts, created_at, next_attempt_at) VALUES ('welcome', 'x@example.com', 'Hi', :b, :b,"
                " 'en', '<due@bench>', 'pending', 0, :now, :now)"),
                {"now": now, "b": app.extensions["visma_idp.storage.secrets"].encrypt(b"hello")})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop_all_tables(settings["DATABASE_URL"])
    with app.app_context():
        db.create_all()


def run_the_hot_paths(app, idp, flow, make_client):
    """Everything whose statements are checked; returns the recorder."""
    from visma_idp import maintenance
    from visma_idp.notify import outbox
    from visma_idp.oidc import backchannel
    from visma_idp.storage import db, queries
    from visma_idp.storage.models import User

    make_client("ledger", redirect_uris=["https://ledger.example.com/cb"], skip_consent=True,
                backchannel_logout_uri="http://127.0.0.1:9/backchannel-logout")
    with app.app_context():
        recorder = Recorder(db.engine)
    try:
        recorder.label = "login + code exchange"
        tokens = flow.tokens(scope="openid offline_access")
        assert "refresh_token" in tokens, tokens

        recorder.label = "refresh"
        resp = flow.client.post("/token", headers=flow.basic(), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        refreshed = resp.get_json()

        recorder.label = "introspect"
        resp = flow.client.post("/introspect", headers=flow.basic(), data={"token": refreshed["access_token"]})
        assert resp.status_code == 200 and resp.get_json()["active"] is True, resp.get_data(as_text=True)

        recorder.label = "userinfo"
        resp = flow.client.get("/userinfo", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)

        recorder.label = "revoke"
        resp = flow.client.post("/revoke", headers=flow.basic(), data={"token": refreshed["refresh_token"]})
        assert resp.status_code == 200, resp.get_data(as_text=True)

        recorder.label = "second login, same browser (SSO)"
        flow.client_id, flow.redirect_uri = "ledger", "https://ledger.example.com/cb"
        flow.client_secret = None
        params = flow.authorize()
        assert "code" in params, params

        recorder.label = "RP-initiated logout"
        resp = flow.client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
        assert resp.status_code in (200, 302), resp.status_code

        with app.app_context():
            recorder.label = "logout worker"
            backchannel.run_once(idp)
            db.session.commit()
            recorder.label = "mail worker"
            outbox.run_once(idp)
            db.session.commit()
            recorder.label = "agreements"
            kari = db.session.scalar(db.select(User).where(User.email == flow.email))
            queries.memberships_of(kari.id)
            queries.membership_of(kari.id, 1)
            queries.live_sessions_of_user(kari.id, idp.clock.now())
            recorder.label = "purge"
            idp.clock.advance(90 * 86400)
            maintenance.purge(batch=500)
            db.session.commit()
    finally:
        recorder.stop()
    return recorder


def test_every_hot_statement_has_an_index(filled, idp, flow, make_client):
    from visma_idp.storage import db

    recorder = run_the_hot_paths(filled, idp, flow, make_client)
    labels = {label for label, _, _ in recorder.seen}
    assert {"login + code exchange", "refresh", "introspect", "purge", "logout worker", "mail worker"} <= labels
    touched: set[str] = set()
    problems = []
    with filled.app_context():
        checked = set()
        for label, statement, parameters in recorder.seen:
            key = (statement, repr(parameters))
            if key in checked:
                continue
            checked.add(key)
            whole, plan = scans_of(db.engine, statement, parameters, ordered_walk_ok=(
                label == "purge" and statement.lstrip().upper().startswith("SELECT")))
            touched |= {n["Relation Name"] for n in plan_nodes(plan) if n.get("Relation Name") in BIG}
            if whole:
                problems.append(f"[{label}] {'; '.join(whole)}\n    {' '.join(statement.split())[:400]}")
    # the check saw the tables that matter
    assert {"users", "tokens", "authorization_codes", "sso_sessions", "mail_outbox", "logout_deliveries"} <= touched
    assert not problems, "statements that read a big table whole:\n" + "\n".join(problems)


def test_the_purge_batches_walk_an_index_in_order(filled, idp):
    """The purge selects each batch in key order with a LIMIT: an index must
    give that order, so that the plan can be an ordered index scan that stops
    at the LIMIT, not a scan and a sort of every candidate row. With sorts
    and sequential scans off, a Sort or Seq Scan node left in the plan means
    no index can. (How far the walk goes at ten million rows is measured by
    ``bench/purge_watch.py``; see ``docs/scale.md``.)"""
    from visma_idp import maintenance
    from visma_idp.storage import db

    with filled.app_context():
        recorder = Recorder(db.engine)
        try:
            idp.clock.advance(90 * 86400)
            maintenance.purge(batch=500)
            db.session.commit()
        finally:
            recorder.stop()
        selects = [(s, p) for _, s, p in recorder.seen if s.lstrip().upper().startswith("SELECT")
                   and "LIMIT" in s.upper()]
        assert len(selects) >= len(maintenance.RULES)
        for statement, parameters in selects:
            _, plan = scans_of(db.engine, statement, parameters, ordered_walk_ok=True,
                               off=("enable_seqscan", "enable_sort"))
            kinds = [n["Node Type"] for n in plan_nodes(plan)]
            assert "Sort" not in kinds, (statement, plan)
            assert "Seq Scan" not in kinds, (statement, plan)
