"""The one clock visma_idp reads, so tests can move time without sleeping."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time in seconds since the epoch, with an adjustable offset.

    Tests call :meth:`advance` to make codes, sessions and locks expire.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> int:
        return int(self.time())

    def advance(self, seconds: float) -> None:
        self.offset += seconds
