"""One small error hierarchy for visma_idp."""

from __future__ import annotations


class VismaIdpError(Exception):
    """Base of every error visma_idp raises on purpose."""


class ConfigError(VismaIdpError):
    """A setting is wrong or missing; start-up stops (exit status 2)."""

    def __init__(self, setting: str, message: str):
        self.setting = setting
        self.message = message
        super().__init__(f"VISMA_IDP_{setting}: {message}")


class InvalidInput(VismaIdpError):
    """Bad input to an operation of the CLI or the Python API (a user, a
    client, an admin right); the message says which and why, in plain
    English (the ``visma-idp`` command exits with status 1)."""


class DatabaseNotReady(VismaIdpError):
    """The database schema is missing or older than this release."""


class PasswordPolicyError(VismaIdpError):
    """A password does not satisfy the policy; ``violations`` are
    :class:`visma_idp.password.policy.Violation` objects (``.message()`` is
    the translated text)."""

    def __init__(self, violations: list):
        self.violations = violations
        super().__init__(" ".join(v.message() for v in violations))  # whole sentences
