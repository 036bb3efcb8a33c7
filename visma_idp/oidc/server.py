"""Authlib's Flask AuthorizationServer wired to our storage, keys and clock."""

from __future__ import annotations

from collections import defaultdict

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import (
    InsecureTransportError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Response, json
from flask import request as flask_request

from .. import audit
from ..crypto import digest
from ..storage import queries
from .checks.pkce import S256CodeChallenge
from .client_assertion import PrivateKeyJWT
from .grants import (
    CONFIDENTIAL_AUTH_METHODS,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    RefreshTokenGrant,
)
from .tokens import TokenError, access_token_digest, verify, verify_id_token_hint


class StoredPayload(OAuth2Payload):
    """An authorization request replayed from a login transaction."""

    def __init__(self, params: dict[str, str]):
        self._data = dict(params)
        self._datalist = defaultdict(list, {k: [v] for k, v in params.items()})

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class StoredRequest(OAuth2Request):
    def __init__(self, uri: str, params: dict[str, str]):
        super().__init__("GET", uri, headers={})
        self.payload = StoredPayload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


_CHECKED_ORIGINS: set[str] = set()


class IssuerOAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request with its URI on the configured issuer's origin,
    never the Host header or the scheme the WSGI server saw: Authlib refuses
    (InsecureTransportError, a 500) a URI that is not https or loopback, and TLS
    may end at a proxy in front of us."""

    def __init__(self, request, origin: str):
        query = request.query_string.decode("latin-1")
        uri = origin + request.script_root + request.path + ("?" + query if query else "")
        if origin not in _CHECKED_ORIGINS:
            # Authlib's OAuth2Request.__init__ parses the whole URI on every
            # request for its InsecureTransportError check, yet only scheme and
            # host matter and those are the issuer's: check them once per
            # origin, then set the attributes that __init__ sets (a test keeps
            # the two lists equal across Authlib upgrades).
            InsecureTransportError.check(origin + "/")
            _CHECKED_ORIGINS.add(origin)
        self.method = request.method
        self.uri = uri
        self.headers = request.headers
        self._body = None
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def __init__(self, server, idp):
        super().__init__(server)
        self.idp = idp

    def query_token(self, token_string, token_type_hint):
        cache = self.idp.introspection_cache
        if not cache.enabled or not isinstance(token_string, str) or token_string.count(".") != 2:
            return find_token(self.idp, token_string, token_type_hint, load_row=False)
        kept = cache.get(token_string, self.idp.clock.now())
        if kept is not None:
            return TokenInfo(kept)
        counter = cache.read_counter()  # before the database says "live" (revocations.py)
        found = find_token(self.idp, token_string, token_type_hint, load_row=False)
        if found is not None:
            cache.keep(token_string, {k: v for k, v in found.items() if not k.startswith("_")}, counter)
        return found

    def check_permission(self, token, client, request):
        # a client may introspect the tokens issued to it
        return token["client_id"] == client.client_id

    def introspect_token(self, token):
        return token


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS + ["none"]

    def __init__(self, server, idp):
        super().__init__(server)
        self.idp = idp

    def query_token(self, token_string, token_type_hint):
        return find_token(self.idp, token_string, token_type_hint)

    def authenticate_token(self, request, client):
        """Authlib's, except for another client's token: RFC 7009 §2.1 lets a
        client revoke only its own tokens, and Authlib answers 400
        ``invalid_grant``, which tells the caller the token exists. We answer
        what a token that does not exist gets (200, nothing revoked) and audit
        the attempt as a refusal."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and token["client_id"] != client.client_id:
            row = token.get("_row")
            audit.record("token_revoke_refused", outcome="failure", client_id=client.client_id,
                         user_id=row.user_id if row else None,
                         details={"reason": "another client's token", "token_client_id": token["client_id"],
                                  "kind": row.kind if row else "access"})
            return None
        return token

    def revoke_token(self, token, request):
        now = self.idp.clock.now()
        row = token.get("_row")
        if row is not None:
            if row.kind == "refresh":
                queries.revoke_family(row.family_id, now)
            else:
                queries.revoke_token(row.id, now)
        else:
            # a client_credentials JWT has no row: record its jti as revoked
            from ..storage import Token, db

            db.session.add(Token(kind="access", digest=access_token_digest(token["jti"]),
                                 client_id=token["client_id"], scope=token.get("scope", ""),
                                 family_id=token["jti"][:36], issued_at=token["iat"],
                                 expires_at=token["exp"], revoked_at=now))
            db.session.info["tokens_revoked"] = True  # raise the revocation counter (revocations.py)
        audit.record("token_revoked", client_id=request.client.client_id, user_id=row.user_id if row else None,
                     details={"kind": row.kind if row else "access"})


class TokenInfo(dict):
    """A live token's introspection payload, with the methods Authlib's
    introspection and revocation endpoints call on the token they look up."""

    def check_client(self, client) -> bool:
        return self["client_id"] == client.client_id

    def is_expired(self) -> bool:
        return False  # find_token only returns live tokens

    def is_revoked(self) -> bool:
        return False


def find_token(idp, token_string: str, hint: str | None, *, load_row: bool = True) -> TokenInfo | None:
    """Resolve an access or refresh token to its introspection payload.

    Returns None when the token is unknown, expired, revoked or rotated.
    ``load_row=False`` (introspection): for an access token, only ask the
    database whether it was revoked; the payload then has no ``_row``.
    """
    if not isinstance(token_string, str) or not token_string or len(token_string) > 8192:
        return None
    now = idp.clock.now()
    if token_string.count(".") == 2:
        try:
            _, claims = verify(idp.keys, token_string, issuer=idp.issuer, typ="at+jwt")
        except TokenError:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now or not claims.get("jti"):
            return None
        jti_digest = access_token_digest(claims["jti"])
        if load_row:
            row = queries.token_by_digest(jti_digest)
            found, revoked_at = row is not None, (row.revoked_at if row is not None else None)
        else:
            row = None
            found, revoked_at = queries.token_state(jti_digest)
        if revoked_at is not None:
            return None
        if not found and claims.get("sub") != claims.get("client_id"):
            return None  # user tokens always have a row
        payload = TokenInfo({
            "active": True, "client_id": claims["client_id"], "token_type": "Bearer", "sub": claims["sub"],
            "exp": claims["exp"], "iat": claims["iat"], "iss": idp.issuer, "aud": claims["aud"],
            "jti": claims["jti"], "scope": claims.get("scope", ""),
        })
        for extra in ("auth_time", "acr", "amr", "sid"):
            if extra in claims:
                payload[extra] = claims[extra]
        payload["_row"] = row
        return payload
    row = queries.token_by_digest(digest(token_string), "refresh")
    if row is None or row.revoked_at is not None or row.rotated_at is not None or row.expires_at <= now:
        return None
    return TokenInfo({
        "active": True, "client_id": row.client_id, "token_type": "refresh_token",
        "sub": row.user.sub if row.user else None, "exp": row.expires_at, "iat": row.issued_at,
        "iss": idp.issuer, "scope": row.scope, "_row": row,
    })


def checked_redirect_uri(server, request) -> str | None:
    """Where an error about an unusable request may be redirected: only to a URI
    registered for a known client (RFC 6749 §4.1.2.1), and for an OpenID request
    only to the one it named (OIDC Core §3.1.2.1); otherwise nowhere (error page)."""
    client = server.query_client(request.payload.client_id) if request.payload.client_id else None
    if client is None:
        return None
    requested = request.payload.redirect_uri
    if requested:
        return requested if client.check_redirect_uri(requested) else None
    if "openid" in (request.payload.scope or "").split():
        return None
    return client.get_default_redirect_uri()


class EndSession(EndSessionEndpoint):
    def __init__(self, server, idp):
        super().__init__(server)
        self.idp = idp

    def _validate_id_token_hint(self, id_token_hint):
        try:
            claims = verify_id_token_hint(self.idp.keys, id_token_hint, issuer=self.idp.issuer)
        except TokenError as exc:
            raise InvalidRequestError("The id_token_hint is not a valid ID token from this server.") from exc
        return claims

    def end_session(self, end_session_request):
        # the view ends the SSO session; Authlib only decides the redirect
        pass


class IdpIssuer(IssuerParameter):
    def __init__(self, issuer: str):
        self.issuer = issuer

    def get_issuer(self):
        return self.issuer


class IdpAuthorizationServer(AuthorizationServer):
    def __init__(self, idp):
        super().__init__()
        self.idp = idp
        self.scopes_supported = None  # each client's registered scopes decide
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode()])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(idp))
        self.register_endpoint(Introspection(self, idp))
        self.register_endpoint(Revocation(self, idp))
        self.register_endpoint(EndSession(self, idp))
        self.register_extension(IdpIssuer(idp.issuer))

    def query_client(self, client_id):
        return self.idp.clients.get(client_id)

    @hooked
    def create_authorization_response(self, request=None, grant_user=None, grant=None):
        """Authlib's, minus a second validation of the request: our authorize
        view always passes the grant that ``get_consent_grant`` has just
        validated for this very request (client, redirect URI, scope, PKCE,
        nonce), so validating again only cost time. Hooks run as in Authlib
        (RFC 9207 ``iss`` is added by the ``after_`` hook)."""
        try:
            args = grant.create_authorization_response(grant.redirect_uri, grant_user)
            response = self.handle_response(*args)
        except OAuth2Error as error:
            error.state = request.payload.state
            response = self.handle_error_response(request, error)
        grant.execute_hook("after_authorization_response", response)
        return response

    def get_authorization_grant(self, request):
        response_type = request.payload.response_type
        if not response_type:
            # a missing required parameter (RFC 6749 §4.1.2.1), not an unsupported value
            raise InvalidRequestError("Missing 'response_type' in request.",
                                      redirect_uri=checked_redirect_uri(self, request))
        if invalid_error_characters(response_type):
            # Authlib puts the value into error_description, and raises ValueError
            # (a 500) for characters RFC 6749 §4.1.2.1 forbids there.
            raise UnsupportedResponseTypeError(response_type, "The response type is not supported.",
                                               redirect_uri=checked_redirect_uri(self, request))
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            error.redirect_uri = checked_redirect_uri(self, request)  # our rule on where errors may go
            raise

    def save_token(self, token, request):  # grants save their own rows
        pass

    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request
        return IssuerOAuth2Request(flask_request, self.idp.issuer_origin)

    def handle_response(self, status_code, payload, headers):
        if isinstance(payload, dict):
            payload = json.dumps({k: v for k, v in payload.items() if not k.startswith("_")})
        return Response(payload, status=status_code, headers=headers)

    def send_signal(self, name, *args, **kwargs):
        pass
