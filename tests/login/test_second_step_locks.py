"""Repeated locks of the second step grow, so a guesser who knows the
password cannot try a fresh batch of codes after every lock.

With a lock as long as the counting window, the count started afresh after
each lock: ten guesses every 15 minutes, about 960 a day at a 6-digit code.
Now each lock within ``SECOND_STEP_LOCK_MEMORY_SECONDS`` of the last lasts
twice as long, up to ``SECOND_STEP_MAX_LOCK_SECONDS``. A guesser who tries
again the moment the throttle lets them is played here for days of app time,
on the memory store and on Redis.
"""

from __future__ import annotations

import uuid

import pytest

from tests.factors.test_totp import add_totp, code_at, mid_step, to_second_step
from tests.helpers import csrf, services
from visma_idp.clock import Clock
from visma_idp.config import load_settings
from visma_idp.login.throttle import DatabaseStore, MemoryStore, RedisStore, Throttle

REDIS_URL = "redis://127.0.0.1:6379/0"
DAY = 86400


@pytest.fixture(params=["memory", "redis", "database"])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "database":  # the fallback while Redis does not answer
        yield DatabaseStore(request.getfixturevalue("app"))
        return
    import redis

    prefix = f"visma_idp:test:{uuid.uuid4().hex[:8]}:"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        services.missing("Redis", exc)
    made = RedisStore(REDIS_URL, prefix=prefix)
    yield made
    keys = list(made._r.scan_iter(prefix + "*"))
    if keys:
        made._r.delete(*keys)
    made._r.close()


def guesses_per_day(throttle: Throttle, clock: Clock, key: str, *, growing: bool, days: int) -> list[int]:
    """A guesser who tries the moment the throttle lets them, and is always wrong."""
    counts = [0] * days
    start = clock.time()
    while (day := int((clock.time() - start) // DAY)) < days:
        verdict = throttle.attempt(key, None, growing=growing)
        if verdict.allowed:
            counts[day] += 1
            throttle.failed(key, None, growing=growing)
        else:
            clock.advance(verdict.wait_seconds)
    return counts


def fail_ten_in_a_row(throttle: Throttle, clock: Clock, key: str):
    """Ten wrong guesses, waiting out the growing delay between them (never a lock); the last verdict."""
    for _ in range(10):
        verdict = throttle.attempt(key, None, growing=True)
        if not verdict.allowed:
            assert not verdict.locked, verdict
            clock.advance(verdict.wait_seconds)
            assert throttle.attempt(key, None, growing=True).allowed
        after = throttle.failed(key, None, growing=True)
    return after


def default_throttle(store) -> tuple[Throttle, Clock]:
    settings = load_settings({"SECRET_KEY": "x" * 32}, environ={})
    clock = Clock()
    return Throttle(settings, clock, store=store), clock


def test_a_code_guesser_gets_at_most_70_guesses_on_the_first_day_and_10_after(store):
    throttle, clock = default_throttle(store)
    counts = guesses_per_day(throttle, clock, "2fa:1", growing=True, days=4)
    assert 60 <= counts[0] <= 70, counts  # measured: 70
    assert all(c <= 10 for c in counts[1:]), counts  # measured: 10 a day


def test_password_locks_stay_fixed_so_nobody_is_locked_out_for_a_day(store):
    """The contrast, and the reason growing locks are only for the second step:
    anyone may fail at someone else's password, so its lock stays short."""
    throttle, clock = default_throttle(store)
    [first_day] = guesses_per_day(throttle, clock, "kari@example.no", growing=False, days=1)
    assert first_day > 500  # measured: 900, ten every 16 minutes


def test_a_success_forgets_the_locks(store):
    throttle, clock = default_throttle(store)
    guesses_per_day(throttle, clock, "2fa:2", growing=True, days=1)
    clock.advance(2 * DAY)
    assert throttle.attempt("2fa:2", None, growing=True).allowed
    throttle.succeeded("2fa:2")
    after = fail_ten_in_a_row(throttle, clock, "2fa:2")  # a fresh batch, its lock the first, short one again
    assert after.locked and after.wait_seconds <= 900


def test_clearing_lifts_a_lock_and_forgets_the_earlier_ones(store):
    """What an admin's one-time code does (admin/one_time_codes.py): the user,
    locked for most of a day, may answer at once, and the next lock is the
    first, short one again."""
    throttle, clock = default_throttle(store)
    guesses_per_day(throttle, clock, "2fa:4", growing=True, days=1)
    while (blocked := throttle.attempt("2fa:4", None, growing=True)).allowed or blocked.wait_seconds <= 3600:
        if blocked.allowed:
            throttle.failed("2fa:4", None, growing=True)
        else:
            clock.advance(blocked.wait_seconds)
    assert throttle.clear("2fa:4", growing=True) is True  # locked for hours
    assert throttle.attempt("2fa:4", None, growing=True).allowed
    throttle.failed("2fa:4", None, growing=True)
    while not (after := throttle.failed("2fa:4", None, growing=True)).locked:
        verdict = throttle.attempt("2fa:4", None, growing=True)
        if not verdict.allowed:
            clock.advance(verdict.wait_seconds)
            assert throttle.attempt("2fa:4", None, growing=True).allowed
    assert after.wait_seconds <= 900  # the first lock's length again
    assert throttle.clear("2fa:5", growing=True) is False  # nothing held back: says so


def test_locks_are_forgotten_after_the_memory(store):
    throttle, clock = default_throttle(store)
    guesses_per_day(throttle, clock, "2fa:3", growing=True, days=1)
    clock.advance(8 * DAY)  # more than SECOND_STEP_LOCK_MEMORY_SECONDS after the last lock
    after = fail_ten_in_a_row(throttle, clock, "2fa:3")
    assert after.locked and after.wait_seconds <= 900


@pytest.fixture
def settings(settings):
    settings.update({"THROTTLE_FREE_ATTEMPTS": 1, "THROTTLE_MAX_FAILURES": 3, "THROTTLE_LOCK_SECONDS": 100,
                     "THROTTLE_WINDOW_SECONDS": 100, "SECOND_STEP_MAX_LOCK_SECONDS": 350,
                     "SECOND_STEP_LOCK_MEMORY_SECONDS": 1000})
    return settings


def wrong_codes_until_locked(app, client, page) -> object:
    idp = app.extensions["visma_idp"]
    for _ in range(10):
        resp = client.post("/login/verify", data={"csrf_token": csrf(page), "method": "totp", "code": "000000"})
        if resp.status_code == 429:
            return resp
        idp.clock.advance(10)  # past the growing delay between tries
    raise AssertionError("never locked")


def test_the_sign_in_page_locks_longer_each_time_and_says_for_how_long(app, idp, make_user):
    from sqlalchemy import select

    from visma_idp.storage import AuditEvent, db

    uid = make_user()
    secret = add_totp(app, uid, secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    waits = []
    for _ in range(3):  # a new sign-in each round: a pending sign-in lasts 10 minutes
        client, page = to_second_step(app)
        locked = wrong_codes_until_locked(app, client, page)
        waits.append(int(locked.headers["Retry-After"]))
        idp.clock.advance(waits[-1] + 1)
    assert [w > 60 for w in waits] == [True] * 3
    assert waits[0] <= 100 < waits[1] <= 200 < waits[2] <= 350, waits
    client, page = to_second_step(app)
    locked = wrong_codes_until_locked(app, client, page)
    assert 200 < int(locked.headers["Retry-After"]) <= 350  # the cap
    assert "Confirming the sign-in is paused for" in locked.text
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "second_step_locked")).all()
    assert len(rows) == 4 and all(r.user_id == uid for r in rows)

    idp.clock.advance(351)
    client, page = to_second_step(app)
    mid_step(idp)
    resp = client.post("/login/verify", data={"csrf_token": csrf(page), "method": "totp",
                                              "code": code_at(secret, idp)})
    assert resp.status_code == 302  # the right code after the lock: signed in, and the locks are forgotten
    client, page = to_second_step(app)
    locked = wrong_codes_until_locked(app, client, page)
    assert int(locked.headers["Retry-After"]) <= 100
