"""Argon2id alone: how many hashes (and verifications) per second one core does
at the provider's configured parameters, with argon2-cffi as the provider uses it.

``bench/run.py`` runs this pinned to the server's core (``taskset -c 0``) while
the server is idle; logins/s is compared against it ("logins/s at least half of
what Argon2id alone allows")::

    taskset -c 0 .venv/bin/python bench/argon2_rate.py -d 10 --json

Parameters default to the provider's settings (ARGON2_MEMORY_KIB,
ARGON2_TIME_COST, ARGON2_PARALLELISM from ``visma_idp.config``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH (run.py --app-dir) wins


def defaults() -> tuple[int, int, int]:
    try:
        from visma_idp.config import BY_NAME

        return (BY_NAME["ARGON2_MEMORY_KIB"].default, BY_NAME["ARGON2_TIME_COST"].default, BY_NAME["ARGON2_PARALLELISM"].default)
    except Exception:  # noqa: BLE001 - the OWASP figures the provider documents
        return 19456, 2, 1


def rate(fn, seconds: float) -> float:
    fn()  # first call touches the memory
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> int:
    m, t, p = defaults()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="seconds for hash (verify gets the same)")
    ap.add_argument("--memory-kib", type=int, default=m)
    ap.add_argument("--time-cost", type=int, default=t)
    ap.add_argument("--parallelism", type=int, default=p)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from importlib.metadata import version

    from argon2 import PasswordHasher, Type

    ph = PasswordHasher(time_cost=a.time_cost, memory_cost=a.memory_kib, parallelism=a.parallelism, hash_len=32, salt_len=16, type=Type.ID)
    password = "bench correct horse battery staple"
    stored = ph.hash(password)
    hashes = rate(lambda: ph.hash(password), a.duration / 2)
    verifies = rate(lambda: ph.verify(stored, password), a.duration / 2)
    res = {
        "scenario": "argon2",
        "hashes_per_s": round(hashes, 1),
        "verifies_per_s": round(verifies, 1),
        "memory_kib": a.memory_kib,
        "time_cost": a.time_cost,
        "parallelism": a.parallelism,
        "argon2_cffi": version("argon2-cffi"),
    }
    print(
        f"argon2id m={a.memory_kib} KiB t={a.time_cost} p={a.parallelism}: {hashes:.1f} hashes/s, "
        f"{verifies:.1f} verifications/s on one core"
    )
    if a.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
