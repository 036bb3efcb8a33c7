"""Account enumeration and online guessing at the login pages.

- An unknown email and a known email with a wrong password get the same
  answer: status, body (apart from the CSRF token and the echoed address),
  header names, audit event.
- Failures are throttled per account (a growing delay after
  THROTTLE_FREE_ATTEMPTS, a lock at THROTTLE_MAX_FAILURES) and per IP
  (THROTTLE_IP_MAX_FAILURES across any accounts); parallel guesses cannot slip
  past the count; locks lift with time. Same with Redis as the store.
- A hash with old Argon2id parameters is replaced at the next good login.
"""

from __future__ import annotations

import random
import re
import threading
import uuid

import pytest
import requests
from argon2 import PasswordHasher, Type

from tests.helpers import csrf, services

REDIS_URL = "redis://127.0.0.1:6379/15"
PREFIX = "visma_idp:throttle:"
PASSWORD = "correct horse battery"
LIMITS = {
    "THROTTLE_FREE_ATTEMPTS": 2,
    "THROTTLE_MAX_FAILURES": 6,
    "THROTTLE_LOCK_SECONDS": 300,
    "THROTTLE_WINDOW_SECONDS": 600,
    "THROTTLE_IP_MAX_FAILURES": 8,
}


DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: the throttle counts in the database


@pytest.fixture(params=["memory", "redis", "redis-down"])
def store(request):
    return request.param


@pytest.fixture
def redis_client(store):
    if store != "redis":
        yield None
        return
    import redis

    conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        conn.ping()
    except redis.RedisError as exc:
        conn.close()
        services.missing("Redis", exc)
    yield conn
    conn.close()


@pytest.fixture
def settings(settings, store, redis_client):
    settings.update(LIMITS)
    if store == "redis":
        settings["REDIS_URL"] = REDIS_URL
    elif store == "redis-down":
        settings["REDIS_URL"] = DEAD_REDIS_URL
    return settings


class Names:
    """Unique emails and IPs per test, so parallel runs sharing Redis never collide;
    their Redis keys are removed afterwards."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.emails: list[str] = []
        self.ips: list[str] = []

    def email(self, name: str = "kari") -> str:
        value = f"{name}-{self.tag}-{len(self.emails)}@example.no"
        self.emails.append(value)
        return value

    def ip(self) -> str:
        value = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.ips.append(value)
        return value

    def keys(self) -> list[str]:
        return [PREFIX + "acct:" + e for e in self.emails] + [PREFIX + "ip:" + i for i in self.ips]


@pytest.fixture
def names(redis_client):
    made = Names()
    yield made
    if redis_client is not None and made.keys():
        redis_client.delete(*made.keys())


@pytest.fixture
def browser(app, names):
    """A test client coming from its own IP address."""

    def make(ip: str | None = None):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = ip or names.ip()
        return c

    return make


@pytest.fixture
def kari(make_user, names):
    email = names.email()
    make_user(email=email, password=PASSWORD)
    return email


def attempt(c, email: str, password: str):
    """Email step then password step; returns the password step's response."""
    page = c.get("/login").get_data(as_text=True)
    resp = c.post("/login", data={"email": email, "csrf_token": csrf(page)})
    assert resp.status_code == 302, resp.status_code
    page = c.get("/login/password").get_data(as_text=True)
    return c.post("/login/password", data={"password": password, "csrf_token": csrf(page)})


def normalized(resp, email: str) -> str:
    body = resp.get_data(as_text=True)
    body = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value="X"', body)
    return body.replace(email, "EMAIL")


# -- enumeration ----------------------------------------------------------------------

def test_unknown_email_and_wrong_password_look_the_same(browser, kari, names, audit_rows):
    unknown = names.email("nobody")
    a = attempt(browser(), unknown, "wrong password 1")
    b = attempt(browser(), kari, "wrong password 1")
    assert a.status_code == b.status_code == 401
    assert normalized(a, unknown) == normalized(b, kari)
    assert sorted(a.headers.keys()) == sorted(b.headers.keys())
    assert "Wrong email address or password." in a.get_data(as_text=True)

    failed = audit_rows("login_failed")
    assert [r["subject"] for r in failed] == [unknown, kari]
    assert all(r["outcome"] == "failure" for r in failed)


def test_email_step_does_not_tell(browser, kari, names):
    c = browser()
    page = c.get("/login").get_data(as_text=True)
    known = c.post("/login", data={"email": kari, "csrf_token": csrf(page)})
    unknown = c.post("/login", data={"email": names.email("nobody"), "csrf_token": csrf(page)})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]


def test_inactive_account_looks_like_unknown(app, browser, kari, names):
    from visma_idp.storage import db, queries

    with app.app_context():
        queries.user_by_email(kari).is_active = False
        db.session.commit()
    unknown = names.email("nobody")
    a = attempt(browser(), unknown, PASSWORD)
    b = attempt(browser(), kari, PASSWORD)  # the right password, but the account is disabled
    assert a.status_code == b.status_code == 401
    assert normalized(a, unknown) == normalized(b, kari)


def test_throttling_treats_unknown_and_known_alike(browser, kari, names):
    unknown = names.email("nobody")
    c1, c2 = browser(), browser()
    seq_unknown = [attempt(c1, unknown, "nope nope nope").status_code for _ in range(4)]
    seq_known = [attempt(c2, kari, "nope nope nope").status_code for _ in range(4)]
    assert seq_unknown == seq_known == [401, 401, 401, 429]


# -- per-account throttling --------------------------------------------------------

def test_growing_delay_then_lock_then_release(app, idp, browser, kari, audit_rows):
    c = browser()
    free = LIMITS["THROTTLE_FREE_ATTEMPTS"]
    for _ in range(free + 1):  # the free attempts and the first that earns a delay
        assert attempt(c, kari, "wrong password").status_code == 401

    delays = []
    for _ in range(LIMITS["THROTTLE_MAX_FAILURES"] - free - 1):
        resp = attempt(c, kari, "wrong password")
        assert resp.status_code == 429
        wait = int(resp.headers["Retry-After"])
        assert f"Wait {wait} second(s) and try again." in resp.get_data(as_text=True)
        delays.append(wait)
        # even the right password is refused while the delay runs, and that is not a new failure
        assert attempt(c, kari, PASSWORD).status_code == 429
        idp.clock.advance(wait)
        last = attempt(c, kari, "wrong password")
    assert delays == [1, 2, 4]

    # the failure that reaches THROTTLE_MAX_FAILURES locks the account
    assert last.status_code == 429
    assert "Sign-in is paused" in last.get_data(as_text=True)
    assert int(last.headers["Retry-After"]) == LIMITS["THROTTLE_LOCK_SECONDS"]
    assert len(audit_rows("account_locked")) == 1

    # locked: even the right password, even from another IP
    assert attempt(browser(), kari, PASSWORD).status_code == 429
    idp.clock.advance(LIMITS["THROTTLE_LOCK_SECONDS"] - 10)
    assert attempt(c, kari, PASSWORD).status_code == 429
    idp.clock.advance(11)
    ok = attempt(c, kari, PASSWORD)
    assert ok.status_code == 302, ok.get_data(as_text=True)
    # a good login clears the count
    assert attempt(browser(), kari, "wrong password").status_code == 401


def test_counts_are_forgotten_after_the_window(idp, browser, kari):
    c = browser()
    for _ in range(LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1):
        assert attempt(c, kari, "wrong password").status_code == 401
    assert attempt(c, kari, "wrong password").status_code == 429
    idp.clock.advance(LIMITS["THROTTLE_WINDOW_SECONDS"] + LIMITS["THROTTLE_LOCK_SECONDS"] + 1)
    # a fresh start: the free attempts are free again
    for _ in range(LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1):
        assert attempt(c, kari, "wrong password").status_code == 401


def test_email_case_does_not_reset_the_count(idp, browser, kari):
    c = browser()
    for variant in (kari, kari.upper(), " " + kari.title()):
        assert attempt(c, variant, "wrong password").status_code == 401
    # three failures under three spellings: one account, so the delay applies
    assert attempt(c, kari.upper(), "wrong password").status_code == 429


def test_throttle_counts_attempts_before_verifying(idp):
    """Unit check of the race fix: an attempt is counted when it is let through,
    so a burst checked before any result is recorded is still limited."""
    account = f"burst-{uuid.uuid4().hex}@example.no"
    let_through = [idp.throttle.attempt(account, None).allowed for _ in range(10)]
    assert let_through == [True] * (LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1) + [False] * 7
    idp.throttle.succeeded(account)
    assert idp.throttle.attempt(account, None).allowed


def test_a_burst_from_one_ip_at_many_accounts_is_limited_before_any_result(idp, names):
    """The IP is counted when an attempt is let through too, so guesses at
    many accounts sent at once from one IP cannot all pass before the first
    failure is written."""
    ip = names.ip()
    let_through = [idp.throttle.attempt(names.email("spray"), ip).allowed for _ in range(12)]
    assert let_through == [True] * LIMITS["THROTTLE_IP_MAX_FAILURES"] + [False] * 4
    assert idp.throttle.attempt(None, ip).locked


def test_good_logins_give_the_ip_its_attempt_back(idp, names):
    ip = names.ip()
    for _ in range(3 * LIMITS["THROTTLE_IP_MAX_FAILURES"]):
        account = names.email("colleague")
        assert idp.throttle.attempt(account, ip).allowed
        idp.throttle.succeeded(account, ip)
    # only failures are left on the IP: all of its allowance is still there
    for _ in range(LIMITS["THROTTLE_IP_MAX_FAILURES"]):
        account = names.email("typo")
        assert idp.throttle.attempt(account, ip).allowed
        idp.throttle.failed(account, ip)
    assert not idp.throttle.attempt(names.email("late"), ip).allowed


def test_an_attempt_held_back_by_its_account_costs_the_ip_nothing(idp, names):
    ip = names.ip()
    account = names.email("locked")
    for _ in range(LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1):
        assert idp.throttle.attempt(account, ip).allowed
        idp.throttle.failed(account, ip)
    held = [idp.throttle.attempt(account, ip) for _ in range(20)]  # the account must wait
    assert not any(v.allowed for v in held)
    spent = LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1
    others = [idp.throttle.attempt(names.email("other"), ip).allowed
              for _ in range(LIMITS["THROTTLE_IP_MAX_FAILURES"] - spent + 1)]
    assert others == [True] * (LIMITS["THROTTLE_IP_MAX_FAILURES"] - spent) + [False]


def test_parallel_guesses_cannot_bypass_the_count(live_server, idp, kari, names, monkeypatch):
    n = 12
    sessions = []
    for _ in range(n):
        http = requests.Session()
        page = http.get(live_server + "/login").text
        resp = http.post(live_server + "/login", data={"email": kari, "csrf_token": csrf(page)},
                         allow_redirects=False)
        assert resp.status_code == 302
        sessions.append((http, csrf(http.get(live_server + "/login/password").text)))
    # the app's time stands still while the guesses run: on a busy machine the
    # twelve requests can take longer than the first delay (1 s), and an
    # attempt let through after it would be right, not a slip past the count
    frozen = idp.clock.time()
    monkeypatch.setattr(idp.clock, "time", lambda: frozen)
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def guess(http, token, i):
        barrier.wait(timeout=10)
        r = http.post(live_server + "/login/password", data={"password": f"guess number {i}", "csrf_token": token},
                      allow_redirects=False, timeout=30)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(h, t, i)) for i, (h, t) in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for http, _ in sessions:
        http.close()
    names.ips.append("127.0.0.1")  # the live server sees the loopback address
    assert len(statuses) == n
    # exactly as many reach the password check as would one after another
    # (FREE_ATTEMPTS + 1; the next must wait a second that never passes); the
    # rest are held back
    assert statuses.count(401) == LIMITS["THROTTLE_FREE_ATTEMPTS"] + 1, statuses
    assert statuses.count(429) == n - LIMITS["THROTTLE_FREE_ATTEMPTS"] - 1, statuses


# -- per-IP throttling ----------------------------------------------------------------

def test_ip_lock_across_many_emails(idp, browser, make_user, names, audit_rows):
    victim = names.email("victim")
    make_user(email=victim, password=PASSWORD)
    ip = names.ip()
    c = browser(ip)
    for _ in range(LIMITS["THROTTLE_IP_MAX_FAILURES"]):
        assert attempt(c, names.email("spray"), "Winter2024!").status_code == 401
    resp = attempt(c, names.email("spray"), "Winter2024!")
    assert resp.status_code == 429
    assert "Sign-in is paused" in resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) > 0
    # the whole IP is paused, whatever the account
    assert attempt(c, victim, PASSWORD).status_code == 429
    # other addresses are not affected, and the sprayed accounts are not locked
    assert attempt(browser(), victim, PASSWORD).status_code == 302
    idp.clock.advance(LIMITS["THROTTLE_LOCK_SECONDS"] + 1)
    assert attempt(c, victim, PASSWORD).status_code == 302
    assert audit_rows("login_throttled")


def test_successful_logins_do_not_count_against_the_ip(browser, make_user, names):
    ip = names.ip()
    for i in range(LIMITS["THROTTLE_IP_MAX_FAILURES"] + 2):
        email = names.email(f"colleague{i}")
        make_user(email=email, password=PASSWORD)
        assert attempt(browser(ip), email, PASSWORD).status_code == 302


# -- rehash ------------------------------------------------------------------------------

def test_old_argon2_parameters_are_upgraded_on_login(app, idp, browser, kari):
    from visma_idp.storage import db, queries

    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
    old_hash = old.hash(PASSWORD)
    with app.app_context():
        queries.user_by_email(kari).password_hash = old_hash
        db.session.commit()
    assert idp.hasher.needs_rehash(old_hash)

    assert attempt(browser(), kari, "wrong password").status_code == 401
    with app.app_context():
        assert queries.user_by_email(kari).password_hash == old_hash  # no rehash on a failure

    assert attempt(browser(), kari, PASSWORD).status_code == 302
    with app.app_context():
        new_hash = queries.user_by_email(kari).password_hash
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert "m=1024" in new_hash and not idp.hasher.needs_rehash(new_hash)
    assert attempt(browser(), kari, PASSWORD).status_code == 302


def test_memory_store_forgets_stale_entries():
    """A spray of made-up addresses must not grow the in-process table for ever."""
    from visma_idp.login.throttle import MemoryStore

    store = MemoryStore(sweep_at=100)
    for i in range(150):
        store.take(f"acct:spray{i}@example.no", 1000.0, 60)
    assert len(store) > 100  # all fresh: nothing to sweep
    for i in range(150):
        store.take(f"acct:later{i}@example.no", 2000.0, 60)  # the first 150 are stale by now
    assert len(store) <= 200
    assert store.get("acct:later149@example.no", 2000.0, 60) == (1, 2000.0)
