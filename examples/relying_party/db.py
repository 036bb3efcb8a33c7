"""Expense's own small SQLite database: app sessions and expense claims.

Plain ``sqlite3``, one connection per request (``get()``), closed when the
request ends. Every claim query takes the agreement id, so a claim is only
ever seen inside the agreement (company) it was made in.
"""

from __future__ import annotations

import sqlite3
import time

from flask import Flask, current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key_digest TEXT PRIMARY KEY,      -- SHA-256 of the cookie value; the value itself is never stored
    data TEXT NOT NULL,
    sid TEXT,                          -- the provider's session id (ID token "sid"), for back-channel logout
    sub TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (sid);
CREATE INDEX IF NOT EXISTS sessions_sub ON sessions (sub);
CREATE TABLE IF NOT EXISTS claims (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agreement_id TEXT NOT NULL,
    kind TEXT NOT NULL,                -- outlay | mileage | travel
    status TEXT NOT NULL DEFAULT 'draft',  -- draft | submitted | approved | rejected
    owner_sub TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    purpose TEXT NOT NULL,
    amount_minor INTEGER,              -- outlay: amount in minor units (øre, cent)
    currency TEXT,
    spent_on TEXT,
    receipt BLOB,
    receipt_type TEXT,
    km REAL,                           -- mileage
    route TEXT,
    start_date TEXT,                   -- travel
    end_date TEXT,
    destination TEXT,
    abroad INTEGER,                    -- travel: 1 when the trip is abroad (the per diem rate)
    per_diem_minor INTEGER,            -- travel: days × the daily rate, in øre, computed when saved
    created_at INTEGER NOT NULL,
    submitted_at INTEGER,
    decided_by TEXT,
    decided_at INTEGER
);
CREATE INDEX IF NOT EXISTS claims_agreement ON claims (agreement_id, status);
CREATE TABLE IF NOT EXISTS passengers (   -- mileage: who rode along, added one at a time
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id INTEGER NOT NULL REFERENCES claims (id),
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passengers_claim ON passengers (claim_id);
CREATE TABLE IF NOT EXISTS seen_logout_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
"""


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def init_app(app: Flask) -> None:
    conn = connect(app.config["DATABASE"])
    try:
        conn.executescript(SCHEMA)
        _add_columns(conn, "claims", {"abroad": "INTEGER", "per_diem_minor": "INTEGER"})
        conn.commit()
    finally:
        conn.close()
    app.teardown_appcontext(_close)


def _add_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Columns added after a database was made (CREATE TABLE IF NOT EXISTS leaves an old table as it is)."""
    have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns.items():
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def get() -> sqlite3.Connection:
    if "expense_db" not in g:
        g.expense_db = connect(current_app.config["DATABASE"])
    return g.expense_db


def _close(_exc=None) -> None:
    conn = g.pop("expense_db", None)
    if conn is not None:
        conn.close()


# -- sessions -----------------------------------------------------------------------

def load_session(key_digest: str) -> sqlite3.Row | None:
    return get().execute("SELECT * FROM sessions WHERE key_digest = ? AND expires_at > ?",
                         (key_digest, int(time.time()))).fetchone()


def insert_session(key_digest: str, data: str, sid: str | None, sub: str | None, expires_at: int) -> None:
    conn = get()
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (int(time.time()),))
    conn.execute("INSERT INTO sessions (key_digest, data, sid, sub, expires_at) VALUES (?, ?, ?, ?, ?)",
                 (key_digest, data, sid, sub, expires_at))
    conn.commit()


def update_session(key_digest: str, data: str, sid: str | None, sub: str | None, expires_at: int) -> bool:
    """Save an existing session; False when it is gone (ended by a back-channel logout meanwhile)."""
    conn = get()
    cur = conn.execute("UPDATE sessions SET data = ?, sid = ?, sub = ?, expires_at = ? WHERE key_digest = ?",
                       (data, sid, sub, expires_at, key_digest))
    conn.commit()
    return cur.rowcount == 1


def delete_session(key_digest: str) -> None:
    conn = get()
    conn.execute("DELETE FROM sessions WHERE key_digest = ?", (key_digest,))
    conn.commit()


def end_sessions(*, sid: str | None, sub: str | None) -> int:
    """End the sessions of a provider session (``sid``), or of a person (``sub`` alone)."""
    conn = get()
    if sid:
        cur = conn.execute("DELETE FROM sessions WHERE sid = ?", (sid,))
    else:
        cur = conn.execute("DELETE FROM sessions WHERE sub = ?", (sub,))
    conn.commit()
    return cur.rowcount


def remember_jti(jti: str, expires_at: int) -> bool:
    """Record a logout token's id; False when it was seen before (a replay)."""
    conn = get()
    conn.execute("DELETE FROM seen_logout_tokens WHERE expires_at <= ?", (int(time.time()),))
    try:
        conn.execute("INSERT INTO seen_logout_tokens (jti, expires_at) VALUES (?, ?)", (jti, expires_at))
    except sqlite3.IntegrityError:
        conn.rollback()
        return False
    conn.commit()
    return True


# -- claims -------------------------------------------------------------------------

def create_claim(*, agreement_id: str, kind: str, owner_sub: str, owner_name: str, purpose: str, **fields) -> int:
    columns = {"agreement_id": agreement_id, "kind": kind, "owner_sub": owner_sub, "owner_name": owner_name,
               "purpose": purpose, "created_at": int(time.time()), **fields}
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    conn = get()
    cur = conn.execute(f"INSERT INTO claims ({names}) VALUES ({marks})", tuple(columns.values()))
    conn.commit()
    return int(cur.lastrowid)


LIST_COLUMNS = ("id, kind, status, owner_sub, owner_name, purpose, amount_minor, currency, spent_on, km, route, "
                "start_date, end_date, destination, abroad, per_diem_minor, receipt_type, created_at, decided_by, "
                "(SELECT COUNT(*) FROM passengers WHERE passengers.claim_id = claims.id) AS passenger_count")


def claims_of(agreement_id: str, owner_sub: str) -> list[sqlite3.Row]:
    return get().execute(f"SELECT {LIST_COLUMNS} FROM claims WHERE agreement_id = ? AND owner_sub = ? "
                         "ORDER BY id DESC", (agreement_id, owner_sub)).fetchall()


def submitted_claims(agreement_id: str) -> list[sqlite3.Row]:
    return get().execute(f"SELECT {LIST_COLUMNS} FROM claims WHERE agreement_id = ? AND status = 'submitted' "
                         "ORDER BY submitted_at", (agreement_id,)).fetchall()


def claim(agreement_id: str, claim_id: int) -> sqlite3.Row | None:
    return get().execute("SELECT * FROM claims WHERE agreement_id = ? AND id = ?", (agreement_id, claim_id)).fetchone()


def submit(agreement_id: str, claim_id: int, owner_sub: str) -> bool:
    conn = get()
    cur = conn.execute("UPDATE claims SET status = 'submitted', submitted_at = ? WHERE agreement_id = ? AND id = ? "
                       "AND owner_sub = ? AND status = 'draft'", (int(time.time()), agreement_id, claim_id, owner_sub))
    conn.commit()
    return cur.rowcount == 1


def decide(agreement_id: str, claim_id: int, decision: str, approver_sub: str) -> bool:
    """Approve or reject a submitted claim of the agreement; never one's own."""
    assert decision in ("approved", "rejected")
    conn = get()
    cur = conn.execute("UPDATE claims SET status = ?, decided_by = ?, decided_at = ? WHERE agreement_id = ? AND id = ? "
                       "AND status = 'submitted' AND owner_sub <> ?",
                       (decision, approver_sub, int(time.time()), agreement_id, claim_id, approver_sub))
    conn.commit()
    return cur.rowcount == 1


# -- passengers (mileage) -------------------------------------------------------------

# Changed only while the claim is the owner's draft: the condition is in the statement itself,
# so a passenger cannot slip in after the claim was submitted.
OWN_DRAFT_MILEAGE = ("SELECT id FROM claims WHERE agreement_id = ? AND id = ? AND owner_sub = ? "
                     "AND kind = 'mileage' AND status = 'draft'")


def passengers(claim_id: int) -> list[sqlite3.Row]:
    return get().execute("SELECT id, name FROM passengers WHERE claim_id = ? ORDER BY id", (claim_id,)).fetchall()


def add_passenger(agreement_id: str, claim_id: int, owner_sub: str, name: str) -> bool:
    conn = get()
    cur = conn.execute(f"INSERT INTO passengers (claim_id, name) SELECT id, ? FROM ({OWN_DRAFT_MILEAGE})",
                       (name, agreement_id, claim_id, owner_sub))
    conn.commit()
    return cur.rowcount == 1


def remove_passenger(agreement_id: str, claim_id: int, owner_sub: str, passenger_id: int) -> bool:
    conn = get()
    cur = conn.execute(f"DELETE FROM passengers WHERE id = ? AND claim_id IN ({OWN_DRAFT_MILEAGE})",
                       (passenger_id, agreement_id, claim_id, owner_sub))
    conn.commit()
    return cur.rowcount == 1
