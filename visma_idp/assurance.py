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
AMR_FEDERATED = "fed"  # an upstream provider vouched for the person (RFC 8176)

# The levels of national eID upstreams, on our ladder (docs/federation.md).
# ID-porten's high level counts as a phishing-resistant second factor; its
# substantial level and both BankID levels (a code or an app approval can be
# relayed by a phishing page) as two factors.
NATIONAL_LEVELS = {
    "idporten-loa-substantial": ACR_MFA,
    "idporten-loa-high": ACR_PHISHING_RESISTANT,
    "urn:bankid:bis;LOA=3": ACR_MFA,
    "urn:bankid:bid;LOA=4": ACR_MFA,
}
KNOWN = (*LADDER, *NATIONAL_LEVELS)


def national_level(acr: str | None) -> str | None:
    """Where a national eID level stands on our ladder (None: not one we know)."""
    return NATIONAL_LEVELS.get(acr) if acr else None


def rank(acr: str | None) -> int:
    """Position on the ladder (a national eID level at its place); -1 for None or a value we do not know."""
    if acr in NATIONAL_LEVELS:
        acr = NATIONAL_LEVELS[acr]
    return LADDER.index(acr) if acr in LADDER else -1


def at_least(acr: str | None, wanted: str | None) -> bool:
    """Whether ``acr`` meets ``wanted`` (None wants nothing)."""
    return wanted is None or rank(acr) >= rank(wanted)
