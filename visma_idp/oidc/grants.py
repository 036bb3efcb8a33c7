"""Authlib grants, extended only through their documented hooks.

- Authorization code: codes stored as digests, 60 s, single use. Redemption
  is atomic (``claim_code``) and done in the same transaction as the token
  rows, so of two concurrent redemptions exactly one wins; a second use
  revokes every token issued from the code.
- Refresh token: rotated on each use; a rotated token presented again
  revokes its whole family; bound to its client; absolute lifetime.
- Client credentials: RFC 9068 JWT, nothing written to the database.
"""

from __future__ import annotations

import logging
import secrets

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oidc.core import grants as oidc_grants

from .. import audit
from ..assurance import at_least
from ..context import current_idp
from ..crypto import digest
from ..storage import AuthorizationCode, db, queries
from .checks.request_object import check_request_object
from .issuance import AuthContext, client_access_token, id_token, user_tokens

log = logging.getLogger(__name__)

ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]



class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43

    def validate_authorization_request(self):
        # OIDC Core 3.1.2.1: redirect_uri is REQUIRED for OpenID requests; without it
        # we cannot know where the client wants the answer, so show an error page.
        if not self.request.payload.redirect_uri and "openid" in (self.request.payload.scope or "").split():
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        return super().validate_authorization_request()

    def validate_authorization_redirect_uri(self, request, client):
        requested = request.payload.redirect_uri
        if requested and not client.check_redirect_uri(requested):
            # Authlib's message quotes the URI, and an error description with a
            # character RFC 6749 forbids there raises ValueError (a 500).
            raise InvalidRequestError("The redirect URI is not registered for this client.")
        redirect_uri = super().validate_authorization_redirect_uri(request, client)
        # Decided as soon as there is a checked URI to answer to: the object may
        # hold the PKCE, nonce or prompt parameters the later checks look for.
        check_request_object(request.payload.data, redirect_uri)
        return redirect_uri

    def generate_authorization_code(self) -> str:
        """256 random bits, URL-safe (43 characters). Authlib's generator draws
        each character with a system call of its own."""
        return secrets.token_urlsafe(32)

    def save_authorization_code(self, code, request):
        idp = current_idp()
        ctx: AuthContext = request.auth_context
        now = idp.clock.now()
        scope = request.scope
        if getattr(request, "drop_offline_access", False):
            scope = " ".join(s for s in scope.split() if s != "offline_access")
        row = AuthorizationCode(
            code_digest=digest(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri or self.redirect_uri or "",
            scope=scope,
            nonce=request.payload.data.get("nonce"),
            auth_time=ctx.auth_time,
            acr=ctx.acr,
            amr=ctx.amr,
            claims=ctx.claims,
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
            sid=ctx.sid,
            agreement_id=ctx.agreement_id,
            issued_at=now,
            expires_at=now + idp.settings["CODE_LIFETIME"],
        )
        db.session.add(row)

    def query_authorization_code(self, code, client):
        idp = current_idp()
        if not isinstance(code, str) or len(code) > 512:
            return None
        row = queries.code_by_digest(digest(code), client.client_id)
        if row is None:
            return None
        now = idp.clock.now()
        if row.used_at is not None:
            self._reuse_detected(row, now)
            return None
        if now >= row.expires_at:
            return None
        return row

    def _reuse_detected(self, row, now):
        revoked = queries.revoke_tokens_of_code(row.id, now)
        audit.record("code_reuse_detected", outcome="failure", user_id=row.user_id,
                     client_id=row.client_id, details={"revoked_tokens": revoked})

    def delete_authorization_code(self, authorization_code):
        # the code was already marked used atomically in authenticate_user
        pass

    def authenticate_user(self, authorization_code):
        idp = current_idp()
        now = idp.clock.now()
        if not queries.claim_code(authorization_code.id, now):
            # lost a race with a concurrent redemption: same as reuse
            self._reuse_detected(authorization_code, now)
            raise InvalidGrantError("The authorization code was already used.")
        user = authorization_code.user
        if user is None or not user.is_active:
            return None
        return user

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        idp = current_idp()
        code = self.request.authorization_code
        ctx = AuthContext(auth_time=code.auth_time, acr=code.acr, amr=code.amr, sid=code.sid,
                          claims=code.claims, nonce=code.nonce, agreement_id=code.agreement_id)
        with_refresh = include_refresh_token and "offline_access" in scope.split()
        issued = user_tokens(idp, self.request.client, user, scope, ctx, family_id=None,
                             code_id=code.id, with_refresh=with_refresh)
        self._rows = issued.rows
        return issued.token

    def save_token(self, token):
        db.session.add_all(self._rows)
        audit.record("token_issued", user_id=self.request.user.id, client_id=self.request.client.client_id,
                     details={"grant_type": "authorization_code", "scope": token.get("scope")})


class OpenIDCode(oidc_grants.OpenIDCode):
    """OIDC on the code grant. The ID token is minted in ``generate_token``
    (it needs the auth context); this extension keeps Authlib's nonce and
    prompt handling hooks, and leaves prompt semantics to our authorize view."""

    def exists_nonce(self, nonce, request):
        # Nonce replay is the relying party's check (it compares the nonce in
        # the ID token with the one it stored); refusing a repeated nonce here
        # would break legitimate retries of the same login.
        return False

    def process_token(self, grant, response):
        return response[1]

    def __call__(self, grant):
        if "openid" in (grant.request.payload.scope or "").split():
            grant.register_hook("after_validate_authorization_request_payload",
                                self.validate_openid_authorization_request)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        idp = current_idp()
        if not isinstance(refresh_token, str) or len(refresh_token) > 512:
            return None
        row = queries.token_by_digest(digest(refresh_token), "refresh")
        if row is None:
            return None
        now = idp.clock.now()
        if row.rotated_at is not None and row.revoked_at is None:
            self._reuse_detected(row, now)
            return None
        if row.revoked_at is not None or now >= row.expires_at:
            return None
        return row

    def _reuse_detected(self, row, now):
        revoked = queries.revoke_family(row.family_id, now)
        audit.record("refresh_token_reuse_detected", outcome="failure", user_id=row.user_id,
                     client_id=row.client_id, details={"revoked_tokens": revoked})

    def authenticate_user(self, refresh_token):
        idp = current_idp()
        now = idp.clock.now()
        self._agreement_id = self._agreement(refresh_token)  # refused before the token is spent
        if not queries.claim_refresh_token(refresh_token.id, now):
            self._reuse_detected(refresh_token, now)
            raise InvalidGrantError("The refresh token was already used.")
        user = refresh_token.user
        if user is None or not user.is_active:
            return None
        return user

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        idp = current_idp()
        old = self.request.refresh_token
        ctx = AuthContext(auth_time=old.auth_time, acr=old.acr, amr=old.amr, sid=old.sid, claims=old.claims,
                          agreement_id=self._agreement_id)
        issued = user_tokens(idp, self.request.client, user, scope, ctx, family_id=old.family_id,
                             code_id=old.code_id, with_refresh=True, refresh_expires_at=old.expires_at)
        self._rows = issued.rows
        return issued.token

    def _agreement(self, refresh_token) -> int | None:
        """The agreement the new tokens work in: the one of the refresh token, or
        (``agreement`` parameter: an id or an organisation number) another one of
        the user's, for an app that switches in the background. The refresh family
        stays bound to the user and the client.

        Raises:
            InvalidGrantError: the user is not (or no longer) a member of it.
            InvalidRequestError: ``agreement`` without the ``agreements`` scope.
        """
        wanted = self.request.payload.data.get("agreement")
        if wanted is None:
            if refresh_token.agreement_id is not None and queries.membership_of(
                    refresh_token.user_id, refresh_token.agreement_id) is None:
                raise InvalidGrantError("The user is no longer a member of the token's agreement.")
            return refresh_token.agreement_id
        if "agreements" not in (refresh_token.scope or "").split():
            raise InvalidRequestError("The agreement parameter needs the agreements scope.")
        wanted = "".join(str(wanted).split())[:64]
        found = next((m for m in queries.memberships_of(refresh_token.user_id)
                      if wanted in (m.agreement.public_id, m.agreement.org_number)), None)
        if found is None:
            raise InvalidGrantError("The user is not a member of that agreement.")
        if not at_least(refresh_token.acr, found.agreement.require_acr):  # the agreement asks more than this sign-in
            raise InvalidGrantError("That agreement needs a stronger sign-in: send the user to the authorization "
                                    "endpoint with agreement_hint.")
        if found.agreement_id != refresh_token.agreement_id:
            audit.record("agreement_switched", user_id=refresh_token.user_id, client_id=refresh_token.client_id,
                         details={"agreement": found.agreement.public_id, "via": "refresh_token"})
        return found.agreement_id

    def save_token(self, token):
        db.session.add_all(self._rows)
        audit.record("token_refreshed", user_id=self.request.user.id, client_id=self.request.client.client_id)

    def revoke_old_credential(self, refresh_token):
        # rotated atomically in authenticate_user
        pass


def client_credentials_scope(client, scope: str | None) -> str | None:
    """The scope a client_credentials token gets (each asked scope once), or
    None when the client may not ask for one of them (never openid or
    offline_access: no user). The grant and ``fastlane.py`` both use it."""
    requested = (scope or "").split()
    allowed = set(client.scope.split())
    if any(s not in allowed or s in {"openid", "offline_access"} for s in requested):
        return None
    return " ".join(dict.fromkeys(requested))


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=False):
        client = self.request.client
        granted = client_credentials_scope(client, scope)
        if granted is None:
            raise InvalidScopeError("The client may not request this scope.")
        return client_access_token(current_idp(), client, granted)

    def save_token(self, token):
        pass


__all__ = ["AuthorizationCodeGrant", "ClientCredentialsGrant", "OpenIDCode", "RefreshTokenGrant", "id_token"]
