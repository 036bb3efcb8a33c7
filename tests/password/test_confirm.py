"""The throttled check of a user's current password (``password/confirm.py``),
the one rule behind the sign-in's password step, My details and the password
confirmation: its outcomes, its throttle, its audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from visma_idp.password.confirm import Events, Outcome, check_current_password
from visma_idp.password.policy import MAX_LENGTH

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"
IP = "203.0.113.5"


@pytest.fixture
def check(app, idp):
    """``check(password, email=..., user=...)`` in a request of its own; the
    user is loaded by ``email`` unless given (``user=None``: no account)."""
    from visma_idp.storage import User, db

    missing = object()

    def run(password: str, *, email: str = EMAIL, user=missing, events: Events | None = None):
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": IP}):
            if user is missing:
                user = db.session.scalar(select(User).where(User.email == email))
            extra = {"events": events} if events else {}
            return check_current_password(user=user, email=email, password=password, ip=IP, **extra)

    return run


def events(app, name: str) -> list:
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def change_user(app, **values) -> None:
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == EMAIL))
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


def test_the_right_password_passes_and_a_wrong_one_is_audited(app, make_user, check):
    uid = make_user()
    result = check(PASSWORD)
    assert result.outcome is Outcome.OK and result.ok and result.headers == {}
    assert result.user is not None and result.user.id == uid
    result = check("not the password")
    assert result.outcome is Outcome.WRONG and not result.ok and result.headers == {}
    [failed] = events(app, "login_failed")
    assert (failed.outcome, failed.user_id, failed.subject, failed.ip) == ("failure", uid, EMAIL, IP)


@pytest.mark.parametrize("kind", ["unknown", "disabled", "pending"])
def test_no_usable_account_is_just_wrong(app, make_user, check, kind):
    """An unknown address, a disabled and a pending account answer like a wrong
    password (after the same Argon2 work against the dummy hash)."""
    if kind == "unknown":
        result = check(PASSWORD, email="nobody@example.no", user=None)
    else:
        make_user()
        change_user(app, **({"is_active": False} if kind == "disabled" else {"password_hash": None}))
        result = check(PASSWORD)
    assert result.outcome is Outcome.WRONG
    [failed] = events(app, "login_failed")
    assert failed.subject == (EMAIL if kind != "unknown" else "nobody@example.no")


def test_a_longer_text_that_starts_with_the_password_is_wrong(app, idp, make_user, check):
    make_user()
    longest = ("Tre små kinesere på Høyblokken spiller kontrabass " * 30)[:MAX_LENGTH]
    change_user(app, password_hash=idp.hasher.hash(longest))
    assert check(longest + "x").outcome is Outcome.WRONG
    assert check(longest).outcome is Outcome.OK


def test_a_locked_account_is_refused_only_to_whoever_knows_the_password(app, idp, make_user, check):
    uid = make_user()
    change_user(app, locked_at=idp.clock.now())
    assert check("not the password").outcome is Outcome.WRONG  # says nothing about the lock
    result = check(PASSWORD)
    assert result.outcome is Outcome.LOCKED and result.locked and not result.ok
    [refused] = events(app, "login_refused_locked")
    assert (refused.outcome, refused.user_id) == ("failure", uid)


def test_the_throttle_counts_waits_and_pauses(app, idp, make_user, check):
    uid = make_user()
    free, most = idp.settings["THROTTLE_FREE_ATTEMPTS"], idp.settings["THROTTLE_MAX_FAILURES"]
    pause = idp.settings["THROTTLE_LOCK_SECONDS"]
    for _ in range(free + 1):
        assert check("wrong").outcome is Outcome.WRONG
    idp.clock.advance(1)
    assert check("wrong").outcome is Outcome.WRONG  # the delay is 2 seconds now
    waiting = check(PASSWORD)  # the right password waits too, and is not checked
    assert waiting.outcome is Outcome.THROTTLED and waiting.throttled and not waiting.paused
    assert 1 <= waiting.wait_seconds <= 2 and waiting.headers == {"Retry-After": str(waiting.wait_seconds)}
    [throttled] = events(app, "login_throttled")
    assert throttled.user_id == uid and throttled.details == {"wait_seconds": waiting.wait_seconds, "locked": False}
    failures = free + 2
    while True:
        idp.clock.advance(2 ** (failures - free))
        result = check("wrong")
        failures += 1
        if failures == most:
            break
        assert result.outcome is Outcome.WRONG
    assert result.outcome is Outcome.THROTTLED and result.paused and result.wait_seconds == pause
    assert result.headers == {"Retry-After": str(pause)}
    assert [e.details for e in events(app, "account_locked")] == [{"seconds": pause}]
    paused = check(PASSWORD)
    assert paused.throttled and paused.paused and 0 < paused.wait_seconds <= pause
    idp.clock.advance(pause)
    assert check(PASSWORD).ok


def test_success_clears_the_count(idp, make_user, check):
    make_user()
    free = idp.settings["THROTTLE_FREE_ATTEMPTS"]
    for _ in range(free):
        assert check("wrong").outcome is Outcome.WRONG
    assert check(PASSWORD).ok
    for _ in range(free + 1):  # a fresh allowance: no delay yet
        assert check("wrong").outcome is Outcome.WRONG


def test_the_callers_events_are_recorded(app, idp, make_user, check):
    make_user()
    mine = Events(throttled="x_throttled", failed="x_failed", paused="x_paused", refused_locked="x_locked")
    idp.settings["THROTTLE_MAX_FAILURES"] = idp.settings["THROTTLE_FREE_ATTEMPTS"] + 1
    for _ in range(idp.settings["THROTTLE_MAX_FAILURES"]):
        check("wrong", events=mine)
    check(PASSWORD, events=mine)
    idp.clock.advance(idp.settings["THROTTLE_LOCK_SECONDS"])
    change_user(app, locked_at=idp.clock.now())
    check(PASSWORD, events=mine)
    counts = {name: len(events(app, name)) for name in ("x_failed", "x_paused", "x_throttled", "x_locked")}
    assert counts == {"x_failed": idp.settings["THROTTLE_MAX_FAILURES"], "x_paused": 1, "x_throttled": 1,
                      "x_locked": 1}
    assert events(app, "login_failed") == []


def test_a_hash_with_old_parameters_is_replaced(app, make_user, check):
    from visma_idp.password.hashing import Hasher

    make_user()
    old = Hasher(time_cost=2, memory_kib=1024, parallelism=1, concurrency=1).hash(PASSWORD)
    change_user(app, password_hash=old)
    with app.test_request_context("/"):
        from visma_idp.storage import User, db

        user = db.session.scalar(select(User).where(User.email == EMAIL))
        assert check_current_password(user=user, email=EMAIL, password=PASSWORD, ip=IP).ok
        db.session.commit()
    from tests.account.test_details import user_row

    renewed = user_row(app).password_hash
    assert renewed != old and "t=1" in renewed
