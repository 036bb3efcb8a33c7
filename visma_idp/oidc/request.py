"""An authorization request, validated once.

:func:`validate` runs Authlib's checks (client, exact redirect URI, response
type, scope, PKCE, request objects: ``checks/``) and ours (``response_mode``,
``display``, ``prompt``, ``max_age``, ``claims``, ``acr_values``,
``id_token_hint``, a requested ``sub``) on the request as it arrives, and
gives an :class:`Authorization`. When the request must wait for the sign-in,
its parameters are saved as an interaction (``browser/interaction.py``, in a
signed cookie); :func:`restore` rebuilds the :class:`Authorization` from it
when the sign-in hands back, without running Authlib's validation again: it
only makes sure the client is still registered with that redirect URI, and
re-reads our own parameters (pure parsing, no look-ups but an
``id_token_hint``'s signature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError

from ..browser.interaction import Interaction
from ..context import current_idp
from .checks.acr import requested_acrs
from .checks.max_age import parse_max_age
from .checks.prompt import parse_prompt
from .checks.subject import requested_subject
from .claims import parse_claims_param
from .server import StoredRequest
from .tokens import TokenError, verify_id_token_hint

RESPONSE_MODES = {"query", "form_post"}
DISPLAYS = {"page", "popup", "touch", "wap"}
MAX_REQUEST = 8192  # characters of the request's path and query


@dataclass
class Authorization:
    """A validated authorization request.

    Attributes:
        oauth_req: Authlib's request (live or replayed from the interaction).
        grant: Authlib's authorization-code grant for it, ready to issue.
        params: the request's string parameters (what an interaction stores).
        client: the client's snapshot; ``redirect_uri``: where answers go.
        response_mode: ``query`` or ``form_post``.
        prompts: the ``prompt`` values; ``max_age``: seconds or None.
        claims: the parsed ``claims`` parameter; ``acr_values``, ``essential``:
            the levels asked for and whether one is required.
        named_sub: the user the request names (``id_token_hint``, ``claims`` ``sub``).
        agreement_hint: the agreement the app asks for (its id or organisation number).
        scopes: the granted scope values (the client's allowed part of the request's).
    """

    oauth_req: Any
    grant: Any
    params: dict[str, str]
    client: Any
    redirect_uri: str
    response_mode: str
    prompts: set[str]
    max_age: int | None
    claims: dict | None
    acr_values: list[str]
    essential: bool
    named_sub: str | None
    scopes: list[str]
    agreement_hint: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.oauth_req.payload.data


def _ours(grant, data: dict[str, Any], params: dict[str, str]) -> Authorization:
    """Our own parameter checks, after Authlib's; raises OAuth2Error with the checked redirect URI."""
    redirect_uri = grant.redirect_uri
    mode = data.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        raise InvalidRequestError("Unsupported response_mode.", redirect_uri=redirect_uri)
    if data.get("display") and data["display"] not in DISPLAYS:
        raise InvalidRequestError("Unsupported display value.", redirect_uri=redirect_uri)
    prompts = parse_prompt(data.get("prompt"), redirect_uri)
    max_age = parse_max_age(data.get("max_age"), redirect_uri)
    claims = parse_claims_param(data.get("claims"), redirect_uri)
    acr_values, essential = requested_acrs(data.get("acr_values"), claims)
    hint_sub = None
    if data.get("id_token_hint"):
        idp = current_idp()
        try:
            hint_claims = verify_id_token_hint(idp.keys, data["id_token_hint"], issuer=idp.issuer)
        except TokenError:
            raise InvalidRequestError("Invalid id_token_hint.", redirect_uri=redirect_uri) from None
        hint_sub = hint_claims.get("sub")
    return Authorization(
        oauth_req=grant.request, grant=grant, params=params, client=grant.request.client,
        redirect_uri=redirect_uri, response_mode=mode, prompts=prompts, max_age=max_age, claims=claims,
        acr_values=acr_values, essential=essential, named_sub=requested_subject(claims, hint_sub, redirect_uri),
        scopes=grant.request.scope.split(),
        agreement_hint="".join(str(data.get("agreement_hint") or "").split())[:64] or None,
    )


def validate(oauth_req, end_user) -> Authorization:
    """Validate a request as it arrives at the authorization endpoint.

    Args:
        oauth_req: Authlib's request for this HTTP request.
        end_user: the signed-in user, or None (Authlib's own ``prompt=none`` check reads it).

    Returns:
        The validated request.

    Raises:
        OAuth2Error: anything wrong; its ``redirect_uri`` is set only once the
            redirect URI itself was checked (else the error gets a page).
    """
    grant = current_idp().server.get_consent_grant(oauth_req, end_user=end_user)
    params = {k: v for k, v in oauth_req.payload.data.items() if isinstance(v, str)}
    return _ours(grant, oauth_req.payload.data, params)


def restore(ix: Interaction) -> Authorization:
    """The request an interaction saved, ready to decide and issue again.

    Raises:
        InvalidClientError: the client, or its redirect URI, is no longer registered.
        OAuth2Error: from our parameter checks (the same as when it was saved).
    """
    idp = current_idp()
    server = idp.server
    oauth_req = StoredRequest(idp.url("oidc.authorize"), ix.params)
    client = server.query_client(ix.client_id) if ix.client_id else None
    redirect_uri = ix.redirect_uri or (client.get_default_redirect_uri() if client is not None else None)
    if client is None or not redirect_uri or not client.check_redirect_uri(redirect_uri):
        raise InvalidClientError(description="The client or its redirect URI is no longer registered.")
    grant = server.get_authorization_grant(oauth_req)
    oauth_req.client = client
    oauth_req.scope = client.get_allowed_scope(oauth_req.payload.scope) or ""
    grant.redirect_uri = redirect_uri
    grant.prompt = None
    return _ours(grant, oauth_req.payload.data, dict(ix.params))
