"""Grow a database to production size: a million users, a hundred thousand
agreements, ten million token rows (issue 14's data-growth check).

It starts from ``bench/seed.py`` (drop/create the database, migrate to head,
signing keys, the bench clients, users ``bench-user-0..7`` and the
authenticator-app user), then fills the big tables with set-based SQL
(``INSERT ... SELECT FROM generate_series``) in one server-side pass each::

    .venv/bin/python bench/grow.py --db visma_idp_growth \
        --users 1000000 --agreements 100000 --tokens 10000000

Every user gets the same password hash: the one ``seed.py`` computed for
``bench-user-0`` (Argon2id at the configured parameters), so any
``bench-user-N@example.com`` signs in with ``seed.USER_PASSWORD`` and
``bench/profile_token.py --dsn ... --login-users N`` can log in as any of them.

What the rows look like (``now`` is the wall clock; ages are spread evenly
over ``--days`` days, 120 by default, so with the default 30 days of
``RETENTION_DAYS`` a large share is purgeable):

- users: ``bench-user-N@example.com``, active, verified;
- agreements: organisation numbers ``000000001``..., one in 50 closed;
- memberships: every user in 1-3 agreements (2 on average);
- sso_sessions: one per two users; 12 hour lifetime; 30 % ended early; the
  logout worker has queued every ended or expired one;
- token families (``--tokens`` / 4 of them), each from one authorization
  code in one session of that session's user: an access token and a refresh
  token from the code, an hour later an access token and a refresh token
  from a rotation (the first refresh token rotated). Access tokens expire
  after 600 s, refresh tokens 30 days after the family started; one family
  in ten revoked; half carry the user's first agreement;
- authorization_codes: one per family, used at once, expired after 60 s;
- audit_events: ``--audit`` rows (one per family by default), sign-ins and
  token events of those users.

Foreign keys are consistent by construction; the FK triggers are skipped
while loading (``session_replication_role = replica``) and the secondary
indexes and unique constraints of each big table are dropped before its load
and built again after it (with the names and definitions the migrations gave
them), which is several times faster than maintaining them row by row.
Prints the time of every step and the size of every table and index.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "bench"))

from seed import SECRET_KEY  # noqa: E402

DAY = 86400
HASH = "2654435761"  # Knuth's multiplicative hash: spreads n over users / agreements


def log(msg: str) -> None:
    print(msg, flush=True)


class Loader:
    def __init__(self, conn, *, now: int, users: int, agreements: int, tokens: int, audit: int, days: int):
        self.conn = conn
        self.now = now
        self.users_wanted = users
        self.agreements = agreements
        self.families = max(1, tokens // 4)
        self.audit = audit
        self.span = days * DAY
        self.timings: list[tuple[str, float, int]] = []

    def sql(self, statement: str, params: dict | None = None) -> int:
        cur = self.conn.execute(statement, params or {})
        return cur.rowcount

    def scalar(self, statement: str, params: dict | None = None):
        return self.conn.execute(statement, params or {}).fetchone()[0]

    # -- indexes off while a table loads ----------------------------------------------

    def _secondary(self, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(unique constraints, plain indexes) of ``table``: name and definition."""
        constraints = self.conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %(t)s::regclass AND contype = 'u'", {"t": table}).fetchall()
        names = {c for c, _ in constraints}
        indexes = self.conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %(t)s::regclass AND NOT x.indisprimary", {"t": table}).fetchall()
        return list(constraints), [(n, d) for n, d in indexes if n not in names]

    def load(self, table: str, statement: str, params: dict | None = None) -> None:
        constraints, indexes = self._secondary(table)
        for name, _ in indexes:
            self.sql(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            self.sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        self.conn.commit()
        t0 = time.perf_counter()
        rows = self.sql(statement, params)
        self.conn.commit()
        t1 = time.perf_counter()
        for name, definition in constraints:
            self.sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            self.sql(definition)
        self.conn.commit()
        t2 = time.perf_counter()
        self.timings.append((table, t2 - t0, rows))
        log(f"{table:22} {rows:>11,} rows  insert {t1 - t0:7.1f} s  indexes {t2 - t1:6.1f} s "
            f"({len(constraints)} unique, {len(indexes)} other)")

    # -- the tables ----------------------------------------------------------------------

    def users(self) -> None:
        pw_hash = self.scalar("SELECT password_hash FROM users WHERE email = 'bench-user-0@example.com'")
        have = self.scalar("SELECT count(*) FROM users")
        extra = max(0, self.users_wanted - have)
        # the seeded ones are bench-user-0..7; the new ones continue from 8
        self.load("users", """
            INSERT INTO users (sub, email, email_verified, name, given_name, family_name, locale,
                               phone_number_verified, password_hash, is_active, created_at, updated_at,
                               activated_at, password_changed_at, notify_profile_changes, mfa_required,
                               must_enrol_factor)
            SELECT md5('user' || n)::uuid::text, 'bench-user-' || n || '@example.com', true,
                   'Bench User ' || n, 'Bench', 'User ' || n, 'nb',
                   false, %(hash)s, true, c, c, c, c, true, false, false
            FROM generate_series(8, 7 + %(extra)s) AS n,
                 LATERAL (SELECT %(now)s - (n::bigint * 7919 %% %(span)s) AS c) t
        """, {"hash": pw_hash, "extra": extra, "now": self.now, "span": self.span})
        self.nusers = self.scalar("SELECT max(id) FROM users")

    def agreement_rows(self) -> None:
        self.load("agreements", """
            INSERT INTO agreements (public_id, name, org_number, domains, status, created_at)
            SELECT md5('agreement' || a)::uuid::text, 'Company ' || a || ' AS', lpad(a::text, 9, '0'),
                   json_build_array('company' || a || '.example.no'),
                   CASE WHEN a %% 50 = 0 THEN 'closed' ELSE 'active' END,
                   %(now)s - %(span)s
            FROM generate_series(1, %(n)s) AS a
        """, {"n": self.agreements, "now": self.now, "span": self.span})
        self.first_agreement = self.scalar("SELECT min(id) FROM agreements")

    def memberships(self) -> None:
        # user u is in 1 + (u mod 3) agreements; the j-th is hashed from u and j
        self.load("memberships", """
            INSERT INTO memberships (agreement_id, user_id, roles, created_at, last_used_at)
            SELECT DISTINCT ON (a, u) a, u, '[{"role": "employee", "client": null}]'::json,
                   %(now)s - %(span)s, CASE WHEN j = 0 THEN %(now)s - (u %% 86400) END
            FROM generate_series(1, %(users)s) AS u,
                 generate_series(0, 2) AS j,
                 LATERAL (SELECT %(a0)s + ((u::bigint * """ + HASH + """ + j * 40503) %% %(agreements)s) AS a) t
            WHERE j <= u %% 3
        """, {"users": self.nusers, "agreements": self.agreements, "a0": self.first_agreement,
              "now": self.now, "span": self.span})

    def _user_of(self, expr: str) -> str:
        return f"(1 + (({expr})::bigint * {HASH} %% {self.nusers}))"

    def _agreement_of_user(self, user_expr: str) -> str:
        # the user's j = 0 membership (see memberships)
        return f"({self.first_agreement} + (({user_expr})::bigint * {HASH} %% {self.agreements}))"

    def _session_age(self, k: str) -> str:
        """Seconds since session ``k`` started: spread evenly over the span, the oldest first
        (rows are written in time order, as a live server writes them: ids grow with time)."""
        return f"({self.span} - ({k})::bigint * {self.span} / {self.nsessions})"

    def sessions(self) -> None:
        self.nsessions = max(1, self.nusers // 2)
        user = self._user_of("k")
        self.load("sso_sessions", f"""
            INSERT INTO sso_sessions (id, public_id, user_id, created_at, auth_time, expires_at, last_seen_at,
                                      amr, acr, ip, user_agent, ended_at, password_at, agreement_id,
                                      logout_queued_at)
            SELECT encode(sha256(('session' || k)::bytea), 'hex'), md5('sid' || k)::uuid::text, {user},
                   c, c, c + 43200, c + 1800, '["pwd"]'::json, NULL,
                   '10.' || (k %% 250) || '.' || (k / 250 %% 250) || '.1',
                   'Mozilla/5.0 (bench)', e, c,
                   CASE WHEN k %% 2 = 0 THEN {self._agreement_of_user(user)} END,
                   CASE WHEN coalesce(e, c + 43200) < %(now)s THEN coalesce(e, c + 43200) END
            FROM generate_series(0, %(n)s - 1) AS k,
                 LATERAL (SELECT %(now)s - {self._session_age('k')} AS c) t,
                 LATERAL (SELECT CASE WHEN k %% 10 < 3 THEN t.c + 7200 END AS e) t2
        """, {"n": self.nsessions, "now": self.now, "span": self.span})

    def _family_source(self, per: int = 1) -> str:
        """One row per family f: its session k (families in time order, a few per session),
        the session's user u and the family's start t0 (inside the session's 12 hours)."""
        user = self._user_of("k")
        return f"""
            generate_series(0, %(families)s * {per} - 1) AS i,
            LATERAL (SELECT i / {per} AS f, i %% {per} AS pos) fp,
            LATERAL (SELECT f::bigint * %(sessions)s / %(families)s AS k) s,
            LATERAL (SELECT {user} AS u,
                            least(%(now)s - 3700, %(now)s - {self._session_age('s.k')} + 60 + f %% 20 * 600) AS t0) fam
        """

    def codes(self) -> None:
        self.load("authorization_codes", f"""
            INSERT INTO authorization_codes (id, code_digest, client_id, user_id, redirect_uri, scope, nonce, auth_time,
                                             amr, code_challenge, code_challenge_method, sid, agreement_id,
                                             issued_at, expires_at, used_at)
            SELECT f + 1, encode(sha256(('code' || f)::bytea), 'hex'),
                   CASE WHEN f %% 10 < 7 THEN 'bench-web' ELSE 'bench-consent' END,
                   u, 'http://127.0.0.1:9/cb', 'openid profile email offline_access', md5('nonce' || f),
                   t0 - 5, '["pwd"]'::json, md5('challenge' || f) || md5('challenge2' || f), 'S256',
                   md5('sid' || k)::uuid::text,
                   CASE WHEN f %% 2 = 0 THEN {self._agreement_of_user('u')} END,
                   t0 - 1, t0 + 59, t0
            FROM {self._family_source()}
        """, self._family_params())
        self.sql("SELECT setval(pg_get_serial_sequence('authorization_codes', 'id'), max(id)) FROM authorization_codes")
        self.conn.commit()
        self.first_code = 1

    def _family_params(self) -> dict:
        return {"families": self.families, "sessions": self.nsessions, "now": self.now, "span": self.span}

    def tokens(self) -> None:
        # pos 0: access from the code; 1: refresh from the code (rotated after an hour);
        # 2: access from the rotation; 3: refresh from the rotation (live until the family expires)
        self.load("tokens", f"""
            INSERT INTO tokens (kind, digest, client_id, user_id, scope, family_id, code_id, issued_at,
                                expires_at, revoked_at, rotated_at, auth_time, acr, amr, claims, sid, agreement_id)
            SELECT CASE WHEN pos %% 2 = 0 THEN 'access' ELSE 'refresh' END,
                   encode(sha256(('token' || f || '.' || pos)::bytea), 'hex'),
                   CASE WHEN f %% 10 < 7 THEN 'bench-web' ELSE 'bench-consent' END,
                   u, 'openid profile email offline_access', md5('family' || f)::uuid::text,
                   CASE WHEN pos < 2 THEN {self.first_code} + f END,
                   t0 + (pos / 2) * 3600,
                   CASE WHEN pos %% 2 = 0 THEN t0 + (pos / 2) * 3600 + 600 ELSE t0 + 30 * 86400 END,
                   CASE WHEN f %% 10 = 0 THEN t0 + 7200 END,
                   CASE WHEN pos = 1 THEN t0 + 3600 END,
                   t0 - 5, NULL, '["pwd"]'::json, NULL, md5('sid' || k)::uuid::text,
                   CASE WHEN f %% 2 = 0 THEN {self._agreement_of_user('u')} END
            FROM {self._family_source(per=4)}
        """, self._family_params())

    def audit_events(self) -> None:
        user = self._user_of("e")
        self.load("audit_events", f"""
            INSERT INTO audit_events (at, event, outcome, user_id, subject, client_id, ip, user_agent, details)
            SELECT %(now)s - %(span)s + (e::bigint * %(span)s / %(n)s),
                   (ARRAY['login_succeeded', 'token_issued', 'login_failed', 'token_refreshed', 'logout'])[1 + e %% 5],
                   CASE WHEN e %% 5 = 2 THEN 'failure' ELSE 'success' END,
                   {user}, 'bench-user-' || ({user} - 1) || '@example.com',
                   CASE WHEN e %% 10 < 7 THEN 'bench-web' ELSE 'bench-consent' END,
                   '10.' || (e %% 250) || '.' || (e / 250 %% 250) || '.1', 'Mozilla/5.0 (bench)', NULL
            FROM generate_series(0, %(n)s - 1) AS e
        """, {"n": self.audit, "now": self.now, "span": self.span})


def sizes(conn) -> list[dict]:
    rows = conn.execute("""
        SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid),
               pg_total_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
        ORDER BY pg_total_relation_size(c.oid) DESC
    """).fetchall()
    return [{"table": r[0], "rows": r[1], "table_bytes": r[2], "index_bytes": r[3], "total_bytes": r[4]}
            for r in rows]


def index_sizes(conn, tables: list[str]) -> list[tuple[str, str, int]]:
    return conn.execute("""
        SELECT t.relname, i.relname, pg_relation_size(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%(t)s) ORDER BY t.relname, pg_relation_size(i.oid) DESC
    """, {"t": tables}).fetchall()


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="visma_idp_growth", help="database name (dropped and re-created!)")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432", help="server URL, no database")
    ap.add_argument("--issuer", default="http://127.0.0.1:7002")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--agreements", type=int, default=100_000)
    ap.add_argument("--tokens", type=int, default=10_000_000, help="token rows (4 per family)")
    ap.add_argument("--audit", type=int, help="audit events (default: one per token family)")
    ap.add_argument("--days", type=int, default=120, help="the span the rows' ages are spread over")
    ap.add_argument("--json", metavar="FILE", help="also write the timings and sizes here")
    a = ap.parse_args()
    if a.users < 9 or a.agreements < 1 or a.tokens < 4:
        ap.error("at least 9 users, 1 agreement and 4 tokens")

    import psycopg

    dsn = f"{a.pg}/{a.db}"
    started = time.perf_counter()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "bench" / "seed.py"), "--dsn", dsn, "--issuer", a.issuer,
                    "--secret-key", SECRET_KEY, "--users", "8"], check=True, stdout=subprocess.DEVNULL)
    log(f"{'seed.py + migrations':22} {'':>11}       {time.perf_counter() - t0:7.1f} s")

    plain = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET session_replication_role = replica")  # no FK triggers: consistent by construction
        conn.commit()
        loader = Loader(conn, now=int(time.time()), users=a.users, agreements=a.agreements, tokens=a.tokens,
                        audit=a.audit if a.audit is not None else max(1, a.tokens // 4), days=a.days)
        # refresh tokens for the login apps (bench/profile_token.py --endpoint refresh)
        conn.execute("UPDATE clients SET scope = scope || ' offline_access' "
                     "WHERE client_id IN ('bench-web', 'bench-consent') AND scope NOT LIKE '%%offline_access%%'")
        loader.users()
        loader.agreement_rows()
        loader.memberships()
        loader.sessions()
        loader.codes()
        loader.tokens()
        loader.audit_events()
        conn.execute("SET session_replication_role = DEFAULT")
        conn.commit()
        conn.autocommit = True
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")  # what autovacuum would do: statistics and the visibility map
        log(f"{'VACUUM ANALYZE':22} {'':>11}       {time.perf_counter() - t0:7.1f} s")
        table_sizes = sizes(conn)
        big = [t["table"] for t in table_sizes[:7]]
        idx = index_sizes(conn, big)
        purgeable = conn.execute(
            "SELECT count(*) FILTER (WHERE expires_at < %(cut)s), count(*) FROM tokens",
            {"cut": loader.now - 30 * DAY}).fetchone()
    total = time.perf_counter() - started

    log(f"\ntotal {total:.0f} s; tokens past 30 days of retention: {purgeable[0]:,} of {purgeable[1]:,}"
        f" ({purgeable[0] / max(1, purgeable[1]):.0%})\n")
    log(f"{'table':24} {'rows':>12} {'table MiB':>10} {'index MiB':>10} {'total MiB':>10}")
    for t in table_sizes:
        if t["total_bytes"] >= 1 << 20:
            log(f"{t['table']:24} {t['rows']:>12,} {mib(t['table_bytes']):>10} {mib(t['index_bytes']):>10} "
                f"{mib(t['total_bytes']):>10}")
    log(f"\n{'table':22} {'index':40} {'MiB':>8}")
    for table, index, size in idx:
        log(f"{table:22} {index:40} {mib(size):>8}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "args": vars(a), "total_seconds": total,
            "timings": [{"table": t, "seconds": s, "rows": r} for t, s, r in loader.timings],
            "sizes": table_sizes, "indexes": [{"table": t, "index": i, "bytes": s} for t, i, s in idx],
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
