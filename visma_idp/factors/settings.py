"""The second factors' settings (``factors/``): the recent-password window, authenticator apps, text
messages, security keys and passkeys, admin-issued codes.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, integer, optional_text, text

SETTINGS: tuple[Setting, ...] = (
    Setting("RECENT_PASSWORD_SECONDS", 300, integer(30),
            "Enrolling or removing a factor, or viewing recovery codes, needs the password entered within this many seconds."),
    Setting("TOTP_ISSUER", "Visma IdP", text, "The account label's issuer that authenticator apps show."),
    Setting("SMS_PER_NUMBER", 3, integer(1),
            "Text messages one phone number gets in 10 minutes, across all accounts (against toll fraud)."),
    Setting("SMS_PER_ACCOUNT_DAY", 10, integer(1), "Text messages one account may have sent in a day."),
    Setting("WEBAUTHN_RP_ID", None, optional_text, "WebAuthn relying-party id. Default: the issuer's host name."),
    Setting("WEBAUTHN_RP_NAME", "Visma IdP", text, "The name security-key and passkey dialogs show."),
    Setting("WEBAUTHN_ORIGINS", None, optional_text,
            "Space-separated origins WebAuthn responses may come from. Default: the issuer's origin."),
    Setting("ONE_TIME_CODE_LIFETIME", 600, integer(60), "Seconds an admin-issued one-time code stays valid (10 minutes)."),
)
