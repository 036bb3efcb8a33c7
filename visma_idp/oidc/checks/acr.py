"""Authentication context: ``acr_values`` and the essential ``acr`` claim.

The ladder (lowest first), documented in docs/security.md:

- ``urn:visma_idp:acr:pwd``  — password (one factor)
- ``urn:visma_idp:acr:mfa``  — two factors
- ``urn:visma_idp:acr:phr``  — phishing-resistant (security key or passkey)

National eID levels (``idporten-loa-high``, ...) stand at their place on it
(``assurance.NATIONAL_LEVELS``): a session reached by ID-porten at the high
level says ``idporten-loa-high`` and meets a request for ``phr``; a request
for ``idporten-loa-high`` is met by a session at ``phr``.

Rules:
- ``acr_values`` are voluntary (OIDC Core §3.1.2.1): we try to satisfy the
  first value we know; if the session is below it, the user is asked to
  authenticate again at that level when we can offer it, otherwise the
  session's own ``acr`` is returned. Unknown values are ignored.
- ``claims={"id_token":{"acr":{"essential":true,"values":[...]}}}`` is
  mandatory (§5.5.1.1): when no requested value can be met the request fails
  with ``unmet_authentication_requirements``.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error

from ...assurance import KNOWN, rank


class UnmetAuthenticationRequirements(OAuth2Error):
    error = "unmet_authentication_requirements"
    description = "The requested authentication context cannot be met."


def requested_acrs(acr_values: str | None, claims: dict | None) -> tuple[list[str], bool]:
    """Return (acceptable values in order, essential?)."""
    essential = False
    values: list[str] = []
    acr_claim = ((claims or {}).get("id_token") or {}).get("acr")
    if isinstance(acr_claim, dict):
        essential = bool(acr_claim.get("essential"))
        if isinstance(acr_claim.get("values"), list):
            values = [v for v in acr_claim["values"] if isinstance(v, str)]
        elif isinstance(acr_claim.get("value"), str):
            values = [acr_claim["value"]]
    if not values and acr_values:
        values = acr_values.split()
    return values, essential


def wants_more(session_acr: str | None, values: list[str]) -> bool:
    """Whether a known requested level is above the session's and none is met
    (only then is it worth asking what the user could reach)."""
    known = [v for v in values if v in KNOWN]
    return bool(known) and not any(rank(session_acr) >= rank(v) for v in known)


def check_acr(
    session_acr: str | None, values: list[str], essential: bool, achievable: str, redirect_uri: str
) -> str | None:
    """Return the ACR the user must reach before a code is issued, or None.

    ``achievable`` is the highest level this deployment can offer the user.
    """
    known = [v for v in values if v in KNOWN]
    if not known:
        if essential and values:
            raise UnmetAuthenticationRequirements(redirect_uri=redirect_uri)
        return None
    if any(rank(session_acr) >= rank(v) for v in known):
        return None
    reachable = [v for v in known if rank(v) <= rank(achievable)]
    if reachable:
        return min(reachable, key=rank)
    if essential:
        raise UnmetAuthenticationRequirements(redirect_uri=redirect_uri)
    return None
