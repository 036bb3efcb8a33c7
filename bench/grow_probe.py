"""The database's part of a login and a token request at two database sizes.

Whole requests (``bench/profile_token.py``) carry the app's CPU and a
commit's disk flush, which do not depend on the number of rows and which
vary by tens of per cent from minute to minute on a shared machine. What the
size of the tables can change is the time of the statements themselves. So
this calls the application's own look-ups (``visma_idp.storage.queries``)
with random existing keys — any of the million users, any of the ten million
tokens — on the databases of ``bench/grow.py``, in rounds that alternate
between them, and prints the median µs per call for each size::

    .venv/bin/python bench/grow_probe.py \\
        --db small=postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_growth_small \\
        --db big=postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_growth

Only reads and statements that change nothing (an UPDATE whose condition
matches no row, a rotation claim rolled back): the databases stay as grown.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH wins
sys.path.append(str(ROOT / "bench"))

from seed import SECRET_KEY, user_email  # noqa: E402


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Probe:
    """One grown database: its app and the numbers bench/grow.py made."""

    def __init__(self, name: str, dsn: str, hot: int = 0):
        from sqlalchemy import func, select

        from visma_idp import create_app
        from visma_idp.storage import db
        from visma_idp.storage.models import AuthorizationCode, SsoSession, Token, User

        self.name = name
        self.app = create_app({"ISSUER": "http://127.0.0.1:7002", "DATABASE_URL": dsn, "SECRET_KEY": SECRET_KEY})
        with self.app.app_context():
            self.users = db.session.scalar(select(func.count()).select_from(User))
            self.families = db.session.scalar(select(func.count()).select_from(AuthorizationCode))
            self.sessions = db.session.scalar(select(func.count()).select_from(SsoSession))
            self.tokens = db.session.scalar(select(func.max(Token.id)))
            db.session.remove()
        if hot:  # draw the keys from the first `hot` users, families and sessions only (all cached)
            self.users, self.families, self.sessions = (min(hot, self.users), min(hot, self.families),
                                                        min(hot, self.sessions))
        self.times: dict[str, list[float]] = {}

    def calls(self):
        """(name, function of a random generator) for every look-up."""
        from visma_idp.storage import db, queries

        def family(rng):
            return rng.randrange(self.families)

        def user_id(rng):
            return 1 + rng.randrange(self.users)

        def rotate(rng):
            # the refresh grant's claim on a random row, rolled back
            token = queries.token_by_digest(sha(f"token{family(rng)}.3"), "refresh")
            if token is not None:
                queries.claim_refresh_token(token.id, 0)
            db.session.rollback()

        return [
            ("user_by_email (login)", lambda rng: queries.user_by_email(user_email(rng.randrange(self.users - 1)))),
            ("memberships_of (login, agreements)", lambda rng: queries.memberships_of(user_id(rng))),
            ("code_by_digest (token)", lambda rng: queries.code_by_digest(sha(f"code{family(rng)}"), "bench-web")),
            ("claim_code, no row left (token)", lambda rng: queries.claim_code(1 + family(rng), 0)),
            ("token_by_digest refresh (token)", lambda rng: queries.token_by_digest(
                sha(f"token{family(rng)}.{rng.choice((1, 3))}"), "refresh")),
            ("token_by_digest + claim_refresh_token, rolled back", rotate),
            ("token_state (introspection)", lambda rng: queries.token_state(sha(f"token{family(rng)}.0"))),
            ("live_sessions_of_user (account)", lambda rng: queries.live_sessions_of_user(user_id(rng), 0)),
            ("clients_of_session (logout)", lambda rng: queries.clients_of_session(
                str(uuid.UUID(hashlib.md5(f"sid{rng.randrange(self.sessions)}".encode()).hexdigest())))),
        ]

    def run(self, n: int, seed: int) -> None:
        from visma_idp.storage import db

        with self.app.app_context():
            for name, call in self.calls():
                rng = random.Random(seed)
                for _ in range(20):  # warm the connection and the statement cache
                    call(rng)
                db.session.rollback()
                spent = self.times.setdefault(name, [])
                for _ in range(n):
                    t0 = time.perf_counter()
                    call(rng)
                    spent.append((time.perf_counter() - t0) * 1e6)
                    db.session.rollback()
                    db.session.expunge_all()
            db.session.remove()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", action="append", required=True, metavar="NAME=DSN")
    ap.add_argument("-n", type=int, default=500, help="calls per look-up per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hot", type=int, default=0, metavar="N",
                    help="keys from the first N users, families and sessions only: a working set that stays "
                    "cached, to tell the cost of the bigger indexes from the cost of cache misses")
    a = ap.parse_args()

    probes = [Probe(*spec.split("=", 1), hot=a.hot) for spec in a.db]
    for p in probes:
        print(f"{p.name}: {p.users:,} users, {p.tokens:,} tokens, {p.families:,} codes, {p.sessions:,} sessions")
    for r in range(a.rounds):
        for p in probes if r % 2 == 0 else reversed(probes):
            p.run(a.n, seed=r)
        print(f"round {r + 1} done", flush=True)
    names = [name for name, _ in probes[0].calls()]
    head = "".join(f"{p.name + ' µs':>12}" for p in probes)
    print(f"\nmedian per call (µs, {a.rounds} rounds x {a.n} random keys){'':4}\n{'look-up':52}{head}"
          + (f"{'ratio':>8}" if len(probes) == 2 else ""))
    for name in names:
        medians = [statistics.median(p.times[name]) for p in probes]
        ratio = f"{medians[1] / medians[0]:8.2f}" if len(probes) == 2 else ""
        print(f"{name:52}" + "".join(f"{m:12.0f}" for m in medians) + ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
