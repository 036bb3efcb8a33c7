"""`visma-idp purge` (visma_idp/maintenance.py): rows go RETENTION_DAYS after
they stopped being usable, never before, and never one that still guards
against a replay."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.helpers import drop_all_tables
from visma_idp import audit
from visma_idp.maintenance import purge
from visma_idp.storage import (
    AccountToken,
    AuditEvent,
    AuthorizationCode,
    Factor,
    LogoutDelivery,
    MailOutbox,
    OneTimeCode,
    ProfileChangeNotice,
    RecoveryCode,
    RoleChangeNotice,
    SeenJti,
    SmsCode,
    SmsOutbox,
    SsoSession,
    ThrottleCount,
    Token,
    db,
)

DAY = 86400
RETENTION = 30 * DAY  # RETENTION_DAYS' default

_serial = iter(range(1, 10**6))


def _n() -> int:
    return next(_serial)


# Each maker adds a row that stopped being usable at ``t`` (or, for rows that
# are never purged, one with that time on it).

def code(uid, t):
    return AuthorizationCode(code_digest=f"c{_n():063d}", client_id="expense", user_id=uid, redirect_uri="https://x/cb",
                             scope="openid", auth_time=t, issued_at=t - 60, expires_at=t)


def token(uid, t, **kw):
    return Token(kind=kw.pop("kind", "refresh"), digest=f"t{_n():063d}", client_id="expense", user_id=uid,
                 family_id=f"f{_n()}", issued_at=t - 60, expires_at=t, **kw)


def expired_session(uid, t):
    return SsoSession(id=f"s{_n():063d}", user_id=uid, created_at=t - 60, auth_time=t - 60, expires_at=t,
                      last_seen_at=t - 60)


def ended_session(uid, t):
    return SsoSession(id=f"s{_n():063d}", user_id=uid, created_at=t - 60, auth_time=t - 60, expires_at=t + 10 * DAY,
                      last_seen_at=t - 60, ended_at=t)


def link(uid, t):
    return AccountToken(digest=f"a{_n():063d}", kind="reset", user_id=uid, created_at=t - 60, expires_at=t)


def sms_code(uid, t):
    return SmsCode(user_id=uid, phone="+4791234567", purpose="signin", digest="d" * 64, created_at=t - 60, expires_at=t)


def one_time_code(uid, t):
    return OneTimeCode(user_id=uid, digest=f"o{_n():063d}", created_at=t - 60, expires_at=t)


def unconfirmed_factor(uid, t):
    return Factor(user_id=uid, kind="totp", name="app", created_at=t)


def used_recovery_code(uid, t):
    return RecoveryCode(user_id=uid, digest=f"r{_n():063d}", created_at=t - DAY, used_at=t)


def sent_mail(uid, t):
    row = MailOutbox(kind="welcome", user_id=uid, to_addr="kari@example.no", subject="Hi", locale="en",
                     message_id=f"<{_n()}@test>", status="sent", attempts=1, created_at=t - 60, next_attempt_at=t - 60,
                     sent_at=t)
    row.text_body, row.html_body = "text", "<p>html</p>"
    return row


def sent_notice(uid, t):
    return ProfileChangeNotice(user_id=uid, fields=["name"], first_at=t - 60, due_at=t - 30, sent_at=t)


def sent_role_notice(uid, t):
    return RoleChangeNotice(user_id=uid, agreement="00000000-0000-0000-0000-000000000000", agreement_name="Nordlys",
                            added=["employee"], removed=[], first_at=t - 60, due_at=t - 30, sent_at=t)


def text_message(uid, t):
    row = SmsOutbox(to_number="+4791234567", created_at=t)
    row.body = "123456 is your code"
    return row


def sent_logout(uid, t):
    return LogoutDelivery(client_id="expense", uri="https://rp.example.com/bc", sub="s", sid="x", jti=f"j{_n()}",
                          reason="logout", status="sent", attempts=1, created_at=t - 60, next_attempt_at=t - 60,
                          sent_at=t)


PURGED = [code, token, expired_session, ended_session, link, sms_code, one_time_code, unconfirmed_factor,
          used_recovery_code, sent_mail, sent_notice, sent_role_notice, text_message, sent_logout]


def failed_mail(uid, t):
    row = sent_mail(uid, t)
    row.status, row.sent_at = "failed", None
    return row


def confirmed_factor(uid, t):
    return Factor(user_id=uid, kind="totp", name="app", created_at=t, confirmed_at=t)


def unused_recovery_code(uid, t):
    return RecoveryCode(user_id=uid, digest=f"r{_n():063d}", created_at=t)


def failed_logout(uid, t):
    row = sent_logout(uid, t)
    row.status, row.sent_at = "failed", None
    return row


KEPT = [failed_mail, confirmed_factor, unused_recovery_code, failed_logout]


def test_throttle_counts_kept_while_redis_was_down_go_after_the_retention(app, idp):
    with app.app_context():
        now = idp.clock.now()
        db.session.add_all([ThrottleCount(key="a" * 64, n=3, last=now - RETENTION - 60),
                            ThrottleCount(key="b" * 64, n=3, last=now - RETENTION + 60)])
        db.session.commit()
        assert purge()["throttle_counts"] == 1
        assert db.session.scalars(select(ThrottleCount.key)).all() == ["b" * 64]


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("make", PURGED, ids=lambda f: f.__name__)
def test_a_row_goes_only_after_the_retention(app, idp, make_user, make):
    uid = make_user()
    with app.app_context():
        now = idp.clock.now()
        old, recent = make(uid, now - RETENTION - 60), make(uid, now - RETENTION + 60)
        db.session.add_all([old, recent])
        db.session.commit()
        model, old_id, recent_id = type(old), old.id, recent.id
        counts = purge()
        assert counts[model.__tablename__] == 1
        db.session.expire_all()
        assert db.session.get(model, old_id) is None
        assert db.session.get(model, recent_id) is not None


@pytest.mark.parametrize("make", KEPT, ids=lambda f: f.__name__)
def test_rows_that_still_matter_are_kept_however_old(app, idp, make_user, make):
    uid = make_user()
    with app.app_context():
        row = make(uid, idp.clock.now() - 10 * 365 * DAY)
        db.session.add(row)
        db.session.commit()
        model = type(row)
        assert purge()[model.__tablename__] == 0
        assert count(model) == 1


def test_a_replay_guard_goes_once_what_it_guards_has_expired(app, idp):
    with app.app_context():
        now = idp.clock.now()
        db.session.add_all([SeenJti(jti_digest="a" * 64, expires_at=now - 1),
                            SeenJti(jti_digest="b" * 64, expires_at=now + 60)])
        db.session.commit()
        assert purge()["seen_jtis"] == 1
        assert db.session.scalars(select(SeenJti.jti_digest)).all() == ["b" * 64]


def test_retention_is_a_setting(app, idp, make_user):
    idp.settings["RETENTION_DAYS"] = 2
    uid = make_user()
    with app.app_context():
        now = idp.clock.now()
        db.session.add_all([link(uid, now - 3 * DAY), link(uid, now - DAY)])
        db.session.commit()
        assert purge()["account_tokens"] == 1
        assert count(AccountToken) == 1


def test_live_sign_ins_and_tokens_survive_a_purge(app, idp, flow):
    tokens = flow.tokens(scope="openid offline_access")
    with app.app_context():
        counts = purge()
    assert counts["sso_sessions"] == counts["tokens"] == counts["authorization_codes"] == 0
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert resp.status_code == 200
    assert flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 200


def test_refresh_token_reuse_is_still_caught_after_a_purge(app, idp, flow):
    """A rotated refresh token stays until its family expires, so using it
    again still revokes the family, even after sessions and codes are gone."""
    idp.settings["RETENTION_DAYS"] = 1
    tokens = flow.tokens(scope="openid offline_access")
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    fresh = flow.client.post("/token", data=data, headers=flow.basic()).get_json()["refresh_token"]
    idp.clock.advance(3 * DAY)  # the session (12 h), the code and the access tokens are long gone
    with app.app_context():
        counts = purge()
    assert counts["sso_sessions"] == 1 and counts["authorization_codes"] == 1 and counts["tokens"] >= 2
    assert flow.client.post("/token", data=data, headers=flow.basic()).status_code == 400  # the rotated one again
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.event == "refresh_token_reuse_detected"))
    again = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": fresh},
                             headers=flow.basic())
    assert again.status_code == 400  # the family was revoked


def test_a_dry_run_counts_and_deletes_nothing(app, idp, make_user):
    uid = make_user()
    with app.app_context():
        db.session.add_all([link(uid, idp.clock.now() - RETENTION - 60) for _ in range(3)])
        db.session.commit()
        assert purge(dry_run=True)["account_tokens"] == 3
        assert count(AccountToken) == 3
        assert not db.session.scalar(select(AuditEvent).where(AuditEvent.event == "rows_purged"))


def test_large_backlogs_go_in_batches(app, idp, make_user):
    uid = make_user()
    with app.app_context():
        now = idp.clock.now()
        db.session.add_all([code(uid, now - RETENTION - 60 - i) for i in range(7)] + [code(uid, now)])
        db.session.commit()
        assert purge(batch=3)["authorization_codes"] == 7
        assert count(AuthorizationCode) == 1


def test_audit_events_are_kept_unless_a_retention_is_set(app, idp):
    with app.app_context():
        audit.record("test_event")
        db.session.commit()
        idp.clock.advance(400 * DAY)
        assert "audit_events" not in purge()
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.event == "test_event"))
        idp.settings["AUDIT_RETENTION_DAYS"] = 365
        assert purge()["audit_events"] >= 1
        assert not db.session.scalar(select(AuditEvent).where(AuditEvent.event == "test_event"))


def test_a_purge_is_audited(app, idp, make_user):
    uid = make_user()
    with app.app_context():
        db.session.add(link(uid, idp.clock.now() - RETENTION - 60))
        db.session.commit()
        purge()
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "rows_purged")).one()
        assert event.details == {"account_tokens": 1}


def test_the_command(settings, make_app):
    drop_all_tables(settings["DATABASE_URL"])
    env = {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}

    def run(*args):
        from visma_idp.cli import main

        result = CliRunner().invoke(main, list(args), env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    try:
        run("db", "upgrade")
        run("users", "create", "--email", "kari@example.no", "--name", "Kari", "--password", "correct horse battery")
        app = make_app()
        with app.app_context():
            now = app.extensions["visma_idp"].clock.now()
            db.session.add_all([sent_mail(1, now - RETENTION - 60), sent_mail(1, now)])
            db.session.commit()
        out = run("purge", "--dry-run")
        assert "would go" in out and any(line.split() == ["mail_outbox", "1"] for line in out.splitlines())
        out = run("purge")
        assert any(line.split() == ["mail_outbox", "1"] for line in out.splitlines())
        with app.app_context():
            assert count(MailOutbox) == 1
        assert any(line.split() == ["mail_outbox", "0"] for line in run("purge").splitlines())
    finally:
        drop_all_tables(settings["DATABASE_URL"])
