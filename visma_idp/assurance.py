"""How sure we are of who signed in: the ``acr`` ladder and the ``amr`` values.

Both the protocol (``oidc/``: what an app asks for, what a token says) and
the sign-in (``login/``, ``factors/``: what a person proved) speak these
words, so they live here, below both.

The ladder (lowest first; docs/security.md has the table):

- ``urn:visma_idp:acr:pwd``  password, or another single factor;
- ``urn:visma_idp:acr:mfa``  two factors;
- ``urn:visma_idp:acr:phr``  phishing-resistant: a security key or passkey.

``amr`` values follow RFC 8176 (``email`` for the one-time login link is
ours: RFC 8176 has no value for it).
"""

from __future__ import annotations

ACR_PASSWORD = "urn:visma_idp:acr:pwd"
ACR_MFA = "urn:visma_idp:acr:mfa"
ACR_PHISHING_RESISTANT = "urn:visma_idp:acr:phr"
LADDER = (ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT)

AMR_PASSWORD = "pwd"
AMR_EMAIL_LINK = "email"  # a one-time login link from the mailbox (not in RFC 8176)
AMR_OTP = "otp"  # a one-time code: authenticator app, recovery code, admin-issued code
AMR_SMS = "sms"
AMR_HARDWARE_KEY = "hwk"
AMR_SOFTWARE_KEY = "swk"
AMR_USER_PRESENCE = "user"
AMR_PIN = "pin"
AMR_MFA = "mfa"


def rank(acr: str | None) -> int:
    """Position on the ladder; -1 for None or a value we do not know."""
    return LADDER.index(acr) if acr in LADDER else -1


def at_least(acr: str | None, wanted: str | None) -> bool:
    """Whether ``acr`` meets ``wanted`` (None wants nothing)."""
    return wanted is None or rank(acr) >= rank(wanted)
