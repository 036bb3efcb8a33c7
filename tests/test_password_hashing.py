"""The Argon2id hasher: constant work for unknown users, and a cap on how
many hashes one process computes at the same time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import unicodedata

import pytest
from argon2 import PasswordHasher, Type

from visma_idp.password.hashing import Hasher

FAST = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}
ARGON2_FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1, "hash_len": 32, "salt_len": 16, "type": Type.ID}


class _Counting:
    """Wraps argon2's PasswordHasher and records how many calls overlap."""

    def __init__(self, real):
        self.real = real
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0

    def _enter(self):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)

    def _leave(self):
        with self.lock:
            self.inside -= 1

    def verify(self, stored, password):
        self._enter()
        try:
            time.sleep(0.05)  # long enough for the other threads to pile up
            return self.real.verify(stored, password)
        finally:
            self._leave()

    def hash(self, password):
        self._enter()
        try:
            time.sleep(0.05)
            return self.real.hash(password)
        finally:
            self._leave()


def _run_parallel(hasher, stored, threads=6):
    results = []

    def login():
        results.append(hasher.verify(stored, "correct horse battery"))

    workers = [threading.Thread(target=login) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_hashes_at_once_than_the_limit(limit):
    hasher = Hasher(**FAST, concurrency=limit)
    stored = hasher.hash("correct horse battery")
    counting = _Counting(hasher._ph)
    hasher._ph = counting

    results = _run_parallel(hasher, stored)

    assert results == [True] * 6  # every login still gets its answer
    assert counting.most == limit


def test_hash_is_limited_too():
    hasher = Hasher(**FAST, concurrency=1)
    counting = _Counting(hasher._ph)
    hasher._ph = counting
    workers = [threading.Thread(target=hasher.hash, args=("x" * 12,)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert counting.most == 1


def test_unknown_user_and_wrong_password_both_fail():
    hasher = Hasher(**FAST)
    stored = hasher.hash("correct horse battery")
    assert hasher.verify(stored, "correct horse battery") is True
    assert hasher.verify(stored, "wrong horse battery") is False
    assert hasher.verify(None, "correct horse battery") is False
    assert hasher.verify("not-a-hash", "correct horse battery") is False


COMPOSED = "bl\u00e5b\u00e6r og kr\u00e9me"  # "blåbær og kréme", one code point per letter
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # "a" + ring above, "e" + acute


def test_a_password_is_the_same_in_either_unicode_form():
    assert COMPOSED != DECOMPOSED
    hasher = Hasher(**FAST)
    for typed_first, typed_later in ((COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)):
        stored = hasher.hash(typed_first)
        assert hasher.verify(stored, typed_later) is True
        assert hasher.verify(stored, typed_later + "x") is False
    # what is hashed is the NFC form
    assert PasswordHasher(**ARGON2_FAST).verify(hasher.hash(DECOMPOSED), COMPOSED)


def test_a_hash_of_a_password_not_in_nfc_from_before_still_verifies():
    hasher = Hasher(**FAST)
    legacy = PasswordHasher(**ARGON2_FAST).hash(DECOMPOSED)  # hashed as typed, not normalised
    assert hasher.verify(legacy, DECOMPOSED) is True
    assert hasher.verify(legacy, COMPOSED) is False  # this one was never the stored form


def test_unknown_users_cost_the_same_checks_in_either_form():
    hasher = Hasher(**FAST)
    stored = hasher.hash("correct horse battery")
    counting = _Counting(hasher._ph)
    hasher._ph = counting
    calls = []
    real_verify = counting.verify
    counting.verify = lambda h, p: calls.append(h) or real_verify(h, p)
    for known in (stored, None):
        calls.clear()
        assert hasher.verify(known, DECOMPOSED) is False
        assert len(calls) == 2  # the NFC form, then as typed
        calls.clear()
        assert hasher.verify(known, COMPOSED) is False
        assert len(calls) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="taskset and CPU affinity are Linux")
def test_default_limit_follows_the_cpu_affinity():
    code = "from visma_idp.password.hashing import Hasher; print(Hasher(time_cost=1, memory_kib=1024, parallelism=1).concurrency)"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_hashing_works_in_a_forked_worker():
    """gunicorn forks workers from a master that may have hashed already: the
    child must not wait forever on the parent's (not inherited) threads."""
    import os

    hasher = Hasher(**FAST)
    stored = hasher.hash("correct horse battery")  # the parent's pool threads now exist
    pid = os.fork()
    if pid == 0:  # child
        ok = hasher.verify(stored, "correct horse battery") and not hasher.verify(stored, "wrong")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
