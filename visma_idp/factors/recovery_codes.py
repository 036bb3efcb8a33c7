"""Recovery codes (placeholder API; the full module comes with the two-step work)."""

from __future__ import annotations


def first_codes(user) -> list[str] | None:
    """After a factor is confirmed: new recovery codes (raw, to show once) when
    the user has none yet, else None. The caller commits."""
    return None
