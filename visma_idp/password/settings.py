"""The password settings (``password/``): reset links and their quotas, the policy, the human check, Argon2id.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, boolean, integer, text

SETTINGS: tuple[Setting, ...] = (
    Setting("RESET_LIFETIME", 1800, integer(60),
            "Seconds a password-reset or one-time login link stays valid (30 minutes)."),
    Setting("FORGOT_PER_EMAIL", 3, integer(1),
            "Forgot-password emails one address gets in an hour; more requests get the same answer and no email."),
    Setting("FORGOT_PER_IP", 30, integer(1),
            "Forgot-password requests one client IP may make in an hour; more get the same answer and no email."),
    Setting("PASSWORD_MIN_LENGTH", 12, integer(8),
            "Fewest characters (Unicode code points) in a password. 8 is allowed when a second factor is enforced."),
    Setting("PASSWORD_CHARACTER_CLASSES", 0, integer(0),
            "Optional: how many of lower case, upper case, digits and symbols a password must mix (0 = no rule, up to 4)."),
    Setting("PASSWORD_FORBID_SPACES", False, boolean, "Optional: refuse passwords with spaces."),
    Setting("PASSWORD_HISTORY", 0, integer(0), "Optional: a new password must differ from the last N (0 = no rule)."),
    Setting("PASSWORD_MIN_GUESSES_LOG10", 10, integer(0),
            "Refuse a password that zxcvbn (with Nordic words and the person's own details) estimates takes fewer "
            "than 10^N guesses (0-20; 10 = zxcvbn's top score, 4; 0 = no rule). See docs/password-policy.md."),
    Setting("CAPTCHA_VERIFIER", "visma_idp.password.challenge:ProofOfWork", text,
            "`module:Class` of the human check on the forgot-password form. The default is a self-hosted "
            "proof-of-work; a deployment may plug in hCaptcha or Turnstile (see docs/security.md)."),
    Setting("POW_DIFFICULTY", 16, integer(1),
            "Leading zero bits the proof-of-work must find (each bit doubles the browser's work; 16 ≈ 65,000 hashes)."),
    Setting("ARGON2_TIME_COST", 2, integer(1), "Argon2id iterations (OWASP: 2)."),
    Setting("ARGON2_MEMORY_KIB", 19456, integer(1024), "Argon2id memory in KiB (OWASP: 19 MiB = 19456)."),
    Setting("ARGON2_PARALLELISM", 1, integer(1), "Argon2id lanes (OWASP: 1)."),
    Setting("ARGON2_CONCURRENCY", 0, integer(0),
            "Password hashes one worker process computes at once; further logins wait their turn. "
            "0 = the number of CPUs the process may run on. More at once only thrash the CPU caches "
            "(19 MiB each) and memory."),
)
