"""Every row of every table, to show that a refused call changed nothing."""

from __future__ import annotations

from typing import Any

Rows = dict[str, dict[tuple, dict[str, Any]]]


def rows(app) -> Rows:
    """{table: {primary key: {column: value}}} of the whole database."""
    from visma_idp.storage import db

    out: Rows = {}
    with app.app_context():
        with db.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                keys = [c.name for c in table.primary_key.columns]
                out[table.name] = {tuple(r[k] for k in keys): dict(r)
                                   for r in conn.execute(table.select()).mappings()}
    return out


def diff(before: Rows, after: Rows) -> dict[str, dict[str, list]]:
    """What changed: {table: {"added": [...], "changed": [(old, new)], "removed": [...]}}, only tables that did."""
    out = {}
    for table in after:
        old, new = before.get(table, {}), after[table]
        changes = {"added": [new[k] for k in new.keys() - old.keys()],
                   "changed": [(old[k], new[k]) for k in new.keys() & old.keys() if old[k] != new[k]],
                   "removed": [old[k] for k in old.keys() - new.keys()]}
        if any(changes.values()):
            out[table] = changes
    return out
