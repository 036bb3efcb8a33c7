"""Time ``visma-idp purge`` on a grown database and watch what it does to
the traffic beside it (issue 14: "clears expired rows in batches without
long locks, measured").

Runs :func:`visma_idp.maintenance.purge` in process on the database of
``bench/grow.py`` (use a copy: it deletes), timing every transaction it
commits (one batch: the SELECT of the batch's keys, the DELETE, the COMMIT),
while a writer thread does what the token endpoint does to the same table
every ``--every`` ms (INSERT an access and a refresh token, UPDATE one
refresh token of a live family as a rotation does, COMMIT) and a watcher
samples ``pg_locks`` for lock waits. The writer's latency is measured for
``--baseline`` seconds before the purge as well::

    psql -h 127.0.0.1 -U postgres -d postgres -c \\
        'CREATE DATABASE visma_idp_growth_purge TEMPLATE visma_idp_growth'
    .venv/bin/python bench/purge_watch.py \\
        --dsn postgresql+psycopg://postgres@127.0.0.1:5432/visma_idp_growth_purge
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH wins
sys.path.append(str(ROOT / "bench"))

from logins import percentile  # noqa: E402
from seed import SECRET_KEY  # noqa: E402


def pct(values: list[float], p: float) -> float:
    return percentile(values, p, 0.0)


def _reconnect(dsn: str, *, autocommit: bool):
    import psycopg

    while True:
        try:
            return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=3)
        except psycopg.OperationalError:
            time.sleep(0.5)


class Writer(threading.Thread):
    """The token endpoint's writes to ``tokens``, one transaction every ``every`` seconds."""

    def __init__(self, dsn: str, every: float):
        super().__init__(daemon=True)
        import psycopg

        self.dsn = dsn
        self.conn = psycopg.connect(dsn)
        self.errors: list[tuple[float, str]] = []
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (time, seconds)
        self.stop = threading.Event()
        now = int(time.time())
        # live refresh tokens (a family of the last days) to rotate, as the refresh grant does
        self.live = [r[0] for r in self.conn.execute(
            "SELECT id FROM tokens WHERE kind = 'refresh' AND rotated_at IS NULL AND expires_at > %s "
            "ORDER BY id DESC LIMIT 2000", (now,)).fetchall()]
        self.conn.commit()

    def run(self) -> None:
        import psycopg

        n = 0
        while not self.stop.is_set():
            t0 = time.perf_counter()
            now = int(time.time())
            family = secrets.token_hex(18)
            try:
                with self.conn.cursor() as cur:
                    for kind, life in (("access", 600), ("refresh", 30 * 86400)):
                        cur.execute(
                            "INSERT INTO tokens (kind, digest, client_id, user_id, scope, family_id, issued_at,"
                            " expires_at) VALUES (%s, %s, 'bench-web', 1, 'openid', %s, %s, %s)",
                            (kind, secrets.token_hex(32), family, now, now + life))
                    if self.live:
                        cur.execute("UPDATE tokens SET rotated_at = %s WHERE id = %s AND rotated_at IS NULL",
                                    (now, self.live[n % len(self.live)]))
                self.conn.commit()
            except psycopg.OperationalError as exc:  # the server restarted under us: not a lock wait
                self.errors.append((time.time(), str(exc).splitlines()[0]))
                self.conn = _reconnect(self.dsn, autocommit=False)
                continue
            self.samples.append((time.time(), time.perf_counter() - t0))
            n += 1
            self.stop.wait(max(0.0, self.every - (time.perf_counter() - t0)))
        self.conn.close()


class LockWatcher(threading.Thread):
    """Samples ``pg_locks`` for locks someone waits for in this database."""

    def __init__(self, dsn: str, every: float = 0.05):
        super().__init__(daemon=True)
        import psycopg

        self.dsn = dsn
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.every = every
        self.waits: list[tuple[float, str]] = []
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.stop.is_set():
            try:
                rows = self.conn.execute(
                    "SELECT l.locktype, l.mode, coalesce(c.relname, ''), a.query FROM pg_locks l "
                    "LEFT JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()").fetchall()
            except psycopg.OperationalError:
                self.conn = _reconnect(self.dsn, autocommit=True)
                continue
            self.samples += 1
            for r in rows:
                self.waits.append((time.time(), f"{r[0]} {r[1]} {r[2]}: {' '.join(r[3].split())[:120]}"))
            self.stop.wait(self.every)
        self.conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True, help="a copy of the grown database (rows are deleted)")
    ap.add_argument("--issuer", default="http://127.0.0.1:7002")
    ap.add_argument("--secret-key", default=SECRET_KEY)
    ap.add_argument("--batch", type=int, default=5000, help="as visma-idp purge --batch")
    ap.add_argument("--every", type=float, default=20, help="ms between the writer's transactions")
    ap.add_argument("--baseline", type=float, default=10, help="seconds of writer latency before the purge")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()

    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from visma_idp import create_app
    from visma_idp.maintenance import purge
    from visma_idp.storage import db

    plain = a.dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    app = create_app({"ISSUER": a.issuer, "DATABASE_URL": a.dsn, "SECRET_KEY": a.secret_key})

    # one record per transaction of the purge: its statements' times and the table it deleted from
    batches: list[dict] = []
    current: dict = {}
    t_start = [time.time()]

    def before(conn, cursor, statement, parameters, context, executemany):
        if not current:
            current.update(start=time.perf_counter(), select=0.0, delete=0.0, table="", rows=0)
        conn.info["t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        verb = statement.lstrip()[:6].upper()
        if verb == "SELECT":
            current["select"] += took
        elif verb == "DELETE":
            current["delete"] += took
            current["table"] = statement.split()[2]
            current["rows"] = cursor.rowcount

    def commit(conn):
        if current:
            current["total"] = time.perf_counter() - current["start"]
            current["at"] = time.time()
            batches.append(dict(current))
            if len(batches) % 100 == 0:
                b = batches[-1]
                print(f"  {b['at'] - t_start[0]:6.1f} s: {len(batches)} batches, last {b['table']} "
                      f"{b['total'] * 1000:.0f} ms (SELECT {b['select'] * 1000:.0f} ms)", flush=True)
            current.clear()

    writer = Writer(plain, a.every / 1000)
    watcher = LockWatcher(plain)
    writer.start()
    watcher.start()
    print(f"writer: one transaction every {a.every:.0f} ms; baseline {a.baseline:.0f} s ...", flush=True)
    time.sleep(a.baseline)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        event.listen(db.engine, "commit", commit)
        started = t_start[0] = time.time()
        t0 = time.perf_counter()
        counts: dict[str, int] = {}
        restarts: list[float] = []
        while True:
            try:
                for table, n in purge(batch=a.batch).items():
                    counts[table] = counts.get(table, 0) + n
                break
            except OperationalError as exc:  # the server restarted (others' drills): go on where it stopped
                print(f"  {time.time() - started:6.1f} s: {str(exc.orig).splitlines()[0]}; again", flush=True)
                restarts.append(time.time())
                current.clear()
                db.session.remove()
                db.engine.dispose()
                time.sleep(2)
        took = time.perf_counter() - t0
        ended = time.time()
        event.remove(db.engine, "commit", commit)
        db.engine.dispose()
    time.sleep(2)
    writer.stop.set()
    watcher.stop.set()
    writer.join()
    watcher.join()

    # the batches' own counts: a purge cut short by a restart returned none of its counts
    deleted = sum(b["rows"] for b in batches if b["table"])
    print(f"\npurge: {deleted:,} rows in {took:.1f} s ({deleted / took:,.0f} rows/s), batch {a.batch}")
    print(f"{'table':22} {'rows':>11} {'batches':>8} {'seconds':>8} {'rows/s':>9} {'batch p50 ms':>13} "
          f"{'p99 ms':>8} {'max ms':>8} {'max SELECT':>11} {'max DELETE+COMMIT':>18}")
    by_table: dict[str, list[dict]] = {}
    for b in batches:
        if b["table"]:
            by_table.setdefault(b["table"], []).append(b)
    for table, rows in by_table.items():
        totals = [b["total"] * 1000 for b in rows]
        n = sum(b["rows"] for b in rows)
        seconds = sum(b["total"] for b in rows)
        print(f"{table:22} {n:>11,} {len(rows):>8} {seconds:>8.1f} {n / max(seconds, 1e-9):>9,.0f} "
              f"{statistics.median(totals):>13.0f} {pct(totals, 99):>8.0f} {max(totals):>8.0f} "
              f"{max(b['select'] for b in rows) * 1000:>11.0f} "
              f"{max(b['total'] - b['select'] for b in rows) * 1000:>18.0f}")
    def near_restart(t: float) -> bool:
        return any(r - 5 <= t <= r + 5 for r in restarts) or any(e - 5 <= t <= e + 5 for e, _ in writer.errors)

    base = [s * 1000 for t, s in writer.samples if t < started]
    during = [s * 1000 for t, s in writer.samples if started <= t <= ended and not near_restart(t)]
    if restarts or writer.errors:
        print(f"\nthe server restarted {len(restarts)} times during the purge (not ours); the writer's samples "
              f"within 5 s of one are left out")
    print(f"\nwriter (INSERT 2 tokens + UPDATE 1 + COMMIT), ms: "
          f"before p50 {pct(base, 50):.1f} p99 {pct(base, 99):.1f} max {max(base, default=0):.1f} ({len(base)}); "
          f"during p50 {pct(during, 50):.1f} p99 {pct(during, 99):.1f} max {max(during, default=0):.1f} "
          f"({len(during)})")
    print(f"lock waits seen in pg_locks: {len(watcher.waits)} in {watcher.samples} samples every 50 ms")
    for at, what in watcher.waits[:10]:
        print(f"    {at - started:7.2f} s  {what}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "counts": counts, "seconds": took, "batches": batches, "restarts": restarts,
            "writer": writer.samples, "purge_window": [started, ended], "lock_waits": watcher.waits,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
