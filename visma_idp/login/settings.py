"""The sign-in's settings (``login/``): the SSO session, the throttles and locks, the second step.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, boolean, integer

SETTINGS: tuple[Setting, ...] = (
    Setting("SESSION_LIFETIME", 12 * 3600, integer(60), "Seconds a single sign-on session lasts after login."),
    Setting("THROTTLE_FREE_ATTEMPTS", 3, integer(0), "Failed logins per account before a growing delay applies."),
    Setting("THROTTLE_MAX_FAILURES", 10, integer(1), "Failed logins per account before a temporary lock."),
    Setting("THROTTLE_LOCK_SECONDS", 900, integer(1), "Length of the temporary account lock, in seconds."),
    Setting("THROTTLE_IP_MAX_FAILURES", 50, integer(1), "Failed logins from one client IP before that IP is locked."),
    Setting("THROTTLE_WINDOW_SECONDS", 900, integer(1), "How long failed attempts are remembered."),
    Setting("SECOND_STEP_MAX_LOCK_SECONDS", 86400, integer(1),
            "Longest lock of the second step: each lock of one account's second step within "
            "SECOND_STEP_LOCK_MEMORY_SECONDS of the last lasts twice as long as the one before, from "
            "THROTTLE_LOCK_SECONDS up to this (password locks stay at THROTTLE_LOCK_SECONDS). "
            "With the defaults a guesser gets at most 70 codes on the first day and 10 a day after."),
    Setting("SECOND_STEP_LOCK_MEMORY_SECONDS", 7 * 86400, integer(1),
            "How long the second step remembers its last lock (the next one within it is longer)."),
    Setting("MFA_REQUIRED", False, boolean,
            "Everyone must use two-step verification: a user without a second factor enrols one right after the password."),
    Setting("REMEMBER_BROWSER_DAYS", 30, integer(0),
            "Days a browser may skip the second step after \"Remember this browser\" (0 = not offered). "
            "Void after a password or factor change."),
)
