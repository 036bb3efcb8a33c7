"""Tables. Times are integer seconds since the epoch (UTC), read from the
app clock so tests can move time. Secrets and tokens are stored only as
digests (see :mod:`visma_idp.crypto`); message texts are encrypted with the
app's :class:`~visma_idp.crypto.Secrets`, which :func:`visma_idp.storage.init_app`
keeps for this package (storage imports nothing above itself)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from typing import Any, Self

from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, BigInteger, Boolean, Double, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy import false as sql_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..crypto import Secrets


class Base(DeclarativeBase):
    pass


# Objects stay loaded after a commit: a request that commits before it renders
# its page (the sign-in's steps do) reads what it just wrote instead of loading
# the session, the user and the factor again. A row changed by a statement
# (``storage/queries.py`` runs them without ``synchronize_session``) is
# refreshed by the caller that reads it back (``db.session.refresh``).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

Json = JSON()


def new_sub() -> str:
    return str(uuid.uuid4())


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub: Mapped[str] = mapped_column(String(36), unique=True, default=new_sub)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(16))
    zoneinfo: Mapped[str | None] = mapped_column(String(64))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # other standard profile claims: nickname, preferred_username, profile,
    # picture, website, gender, birthdate, middle_name
    profile: Mapped[dict[str, Any] | None] = mapped_column(Json)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # account lifecycle: a user created without a password is "pending" until
    # activated; "locked" (set by the "this wasn't me" link of an email change)
    # refuses sign-in until the password is reset
    activated_at: Mapped[int | None] = mapped_column(BigInteger)
    locked_at: Mapped[int | None] = mapped_column(BigInteger)
    password_changed_at: Mapped[int | None] = mapped_column(BigInteger)
    # "Changed my account details" emails (security changes are always sent)
    notify_profile_changes: Mapped[bool] = mapped_column(Boolean, default=True)
    # the company (agreement) name the password policy compares against until
    # the agreements issue brings real memberships
    company_name: Mapped[str | None] = mapped_column(String(200))
    # two-step verification: required for this user (the deployment may
    # require it for everyone: MFA_REQUIRED); must enrol again after an
    # admin-issued one-time code; when factors last changed (voids
    # "remember this browser")
    mfa_required: Mapped[bool] = mapped_column(Boolean, default=False)
    must_enrol_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    factors_changed_at: Mapped[int | None] = mapped_column(BigInteger)
    # provisioning (provisioning/people.py): the agreement whose deactivation
    # left the person in none and disabled the account (the id of the
    # agreement; a reactivation there, or a rehire, enables it again)
    disabled_by_agreement: Mapped[int | None] = mapped_column(Integer)

    @property
    def status(self) -> str:
        """``pending`` (never activated), ``locked``, ``disabled`` or ``active``."""
        if not self.is_active:
            return "disabled"
        if self.locked_at is not None:
            return "locked"
        if self.password_hash is None and self.activated_at is None:
            return "pending"  # an account made by an upstream provider is active without a password
        return "active"

    def get_user_id(self) -> int:
        return self.id


class ClientRules:
    """The checks of Authlib's ClientMixin that read only the registration,
    shared by the table row and the per-process snapshot (:class:`ClientSnapshot`).
    The two that need the protocol's rules or the app's secret key,
    ``check_redirect_uri`` and ``check_client_secret``, are added by the
    client Authlib sees (``oidc/clients.py``)."""

    client_id: str
    secret_digest: str | None
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    scope: str
    token_endpoint_auth_method: str
    application_type: str
    require_pkce: bool
    skip_consent: bool
    id_token_signed_response_alg: str | None
    jwks: dict[str, Any] | None
    id_token_claims: bool | None
    requires_agreement: bool

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {
            "client_name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": list(self.response_types),
            "scope": self.scope,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "application_type": self.application_type,
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
        }

    # Authlib ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC requires redirect_uri on every request; OAuth-only requests
        # may omit it when exactly one is registered.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # introspection / revocation: the client's own method (never "none"
        # for introspection: RFC 7662 wants an authenticated caller)
        if endpoint == "introspection" and method == "none":
            return False
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class Client(ClientRules, db.Model):  # type: ignore[name-defined]
    """A relying party (its registration; Authlib sees ``oidc/clients.py``'s ``OAuthClient``)."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    redirect_uris: Mapped[list[str]] = mapped_column(Json, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(Json, default=list)
    grant_types: Mapped[list[str]] = mapped_column(Json, default=list)
    response_types: Mapped[list[str]] = mapped_column(Json, default=list)
    scope: Mapped[str] = mapped_column(Text, default="openid")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    application_type: Mapped[str] = mapped_column(String(16), default="web")
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    skip_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # the claims of the granted scopes in the ID token too: None = the server's
    # ID_TOKEN_SCOPE_CLAIMS, True/False = this client's choice
    id_token_claims: Mapped[bool | None] = mapped_column(Boolean)
    # the app works only for people of an agreement: one without any sees a page saying so
    requires_agreement: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # OIDC Back-Channel Logout 1.0: where to send logout tokens (oidc/backchannel.py)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False,
                                                                      server_default=sql_false())
    # OIDC Front-Channel Logout 1.0: the page the logout page loads in a hidden iframe
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    frontchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False,
                                                                       server_default=sql_false())


@dataclass(frozen=True)
class ClientSnapshot(ClientRules):
    """A read-only copy of a client row, safe to keep between requests (no
    session attached); what the per-process client cache hands out."""

    id: int
    client_id: str
    secret_digest: str | None
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    scope: str
    token_endpoint_auth_method: str
    application_type: str
    require_pkce: bool
    skip_consent: bool
    id_token_signed_response_alg: str | None
    jwks: dict[str, Any] | None
    id_token_claims: bool | None
    requires_agreement: bool
    created_at: int
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False

    @classmethod
    def of(cls, row: Client, **extra: Any) -> Self:
        """A snapshot of ``row``; ``extra``: the fields a subclass adds."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(ClientSnapshot)}, **extra)


class AuthorizationCode(db.Model):  # type: ignore[name-defined]
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(512))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(128))
    amr: Mapped[list[str] | None] = mapped_column(Json)
    claims: Mapped[dict[str, Any] | None] = mapped_column(Json)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id", ondelete="SET NULL"))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_codes_client_nonce", "client_id", "nonce"),)

    # Authlib AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str] | None:
        return self.amr


class Token(db.Model):  # type: ignore[name-defined]
    """Refresh tokens and user-bound access tokens, by digest.

    ``kind`` is ``refresh`` or ``access``. Access tokens are JWTs; their row is
    keyed by the digest of the ``jti`` so they can be revoked and introspected.
    A ``family_id`` ties every token issued from one code (and its refresh
    rotations) together, so reuse revokes them all.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    code_id: Mapped[int | None] = mapped_column(Integer, index=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(128))
    amr: Mapped[list[str] | None] = mapped_column(Json)
    claims: Mapped[dict[str, Any] | None] = mapped_column(Json)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id", ondelete="SET NULL"))

    user: Mapped[User | None] = relationship(lazy="joined")

    # Authlib TokenMixin (refresh-token grant)
    def check_client(self, client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope


class SsoSession(db.Model):  # type: ignore[name-defined]
    """A browser's single sign-on session. ``id`` is the digest of the cookie value."""

    __tablename__ = "sso_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_sub)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[list[str] | None] = mapped_column(Json)
    acr: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    # when the password was last entered in this session (enrolling or
    # removing a factor needs it within the last five minutes)
    password_at: Mapped[int | None] = mapped_column(BigInteger)
    # the agreement (company) the person works in now; switching changes it, not the sign-in
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id", ondelete="SET NULL"))
    # back-channel logout (oidc/backchannel.py): when the ended or expired
    # session's logout tokens were queued (once, by whichever worker claims it)
    logout_queued_at: Mapped[int | None] = mapped_column(BigInteger, index=True)

    user: Mapped[User] = relationship(lazy="joined")


class Consent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(Json, default=list)
    granted_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("user_id", "client_id", name="uq_consent_user_client"),)


class SigningKey(db.Model):  # type: ignore[name-defined]
    """A signing key; the private part is encrypted (Fernet, key from SECRET_KEY)."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16), index=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(Json)
    private_key_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # set when a newer key of the same alg took over; the public key stays
    # published until every token it signed has expired
    retired_at: Mapped[int | None] = mapped_column(BigInteger)


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """A security event (``audit.py``). ``agreement``: the public id of the
    agreement the event is about (its admins' audit log reads the rows by it,
    newest first: the index is on the agreement and the row id), else None."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject: Mapped[str | None] = mapped_column(String(320))
    client_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    agreement: Mapped[str | None] = mapped_column(String(36))
    # the X-Request-Id of the response to the request that recorded it (None outside a request)
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_events_agreement", "agreement", "id"),)


class SeenJti(db.Model):  # type: ignore[name-defined]
    """JWT ids of client assertions already used (replay protection)."""

    __tablename__ = "seen_jtis"

    jti_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AccountToken(db.Model):  # type: ignore[name-defined]
    """A single-use link sent by email, stored as the SHA-256 digest of its
    random value. ``kind``: ``activation`` (7 days), ``reset`` and
    ``login_link`` (30 minutes; a newer request or the other link voids
    both), ``email_change`` (sent to the new address) and ``email_cancel``
    ("this wasn't me", sent to the old one). ``data`` holds what the link
    acts on (the new email address)."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    voided_at: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any] | None] = mapped_column(Json)

    user: Mapped[User] = relationship(lazy="joined")


class PasswordHistory(db.Model):  # type: ignore[name-defined]
    """Earlier password hashes, for the optional "last N not reused" rule."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)


class MailOutbox(db.Model):  # type: ignore[name-defined]
    """A composed message waiting to leave (or gone). Written in the same
    transaction as the change that causes it; the mail worker sends it.

    ``status``: ``pending`` → ``sent``, or ``failed`` after the last retry.
    ``lease_until`` is set when a worker claims the row, so two workers never
    send one message; ``message_id`` stays the same across retries."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # the bodies carry live single-use links: encrypted at rest (Fernet, key
    # from SECRET_KEY), read and written through ``text_body``/``html_body``
    text_body_enc: Mapped[str] = mapped_column(Text)
    html_body_enc: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)

    @property
    def text_body(self) -> str:
        return _secrets().decrypt(self.text_body_enc).decode("utf-8")

    @text_body.setter
    def text_body(self, value: str) -> None:
        self.text_body_enc = _secrets().encrypt(value.encode("utf-8"))

    @property
    def html_body(self) -> str:
        return _secrets().decrypt(self.html_body_enc).decode("utf-8")

    @html_body.setter
    def html_body(self, value: str) -> None:
        self.html_body_enc = _secrets().encrypt(value.encode("utf-8"))


SECRETS_KEY = "visma_idp.storage.secrets"


def _secrets() -> Secrets:
    """The app's cipher for encrypted columns, kept by :func:`visma_idp.storage.init_app`."""
    return current_app.extensions[SECRETS_KEY]


class ProfileChangeNotice(db.Model):  # type: ignore[name-defined]
    """Profile changes waiting to be told to the user in one email. The first
    change opens the batch; changes until ``due_at`` join it; the mail worker
    turns a due batch into one "your account details were changed" message."""

    __tablename__ = "profile_change_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    fields: Mapped[list[str]] = mapped_column(Json, default=list)
    first_at: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)

    # the mail worker's flush asks for the unsent due ones: index only those (migration 0014)
    __table_args__ = (Index("ix_profile_change_notices_unsent", "due_at", postgresql_where=text("sent_at IS NULL"),
                            sqlite_where=text("sent_at IS NULL")),)


class RoleChangeNotice(db.Model):  # type: ignore[name-defined]
    """Changes of one user's roles in one agreement waiting to be told in one
    email (``account/notifications.py``): ``agreement`` is the agreement's
    public id and ``agreement_name`` its name for the message; ``added`` and
    ``removed`` the role labels, as the net change since ``first_at``. Changes
    until ``due_at`` join it; the mail worker turns a due notice into one
    "your roles have changed" message (none when the net change is nothing)."""

    __tablename__ = "role_change_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", name="fk_role_change_notices_user"), index=True)
    agreement: Mapped[str] = mapped_column(String(36))
    agreement_name: Mapped[str] = mapped_column(String(200))
    added: Mapped[list[str]] = mapped_column(Json, default=list)
    removed: Mapped[list[str]] = mapped_column(Json, default=list)
    first_at: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)

    # the mail worker's flush asks for the unsent due ones: index only those (migration 0014)
    __table_args__ = (Index("ix_role_change_notices_unsent", "due_at", postgresql_where=text("sent_at IS NULL"),
                            sqlite_where=text("sent_at IS NULL")),)


class Factor(db.Model):  # type: ignore[name-defined]
    """A second factor of a user. ``kind``: ``totp`` (authenticator app;
    ``secret_enc`` is the encrypted key, ``last_step`` the last accepted time
    step), ``sms`` (``phone``) or ``webauthn`` (security key or passkey:
    ``credential_id`` and ``public_key`` base64url, ``sign_count``,
    ``discoverable`` for passkeys). A factor counts only once ``confirmed_at``
    is set (the user proved it works)."""

    __tablename__ = "factors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    confirmed_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    secret_enc: Mapped[str | None] = mapped_column(Text)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    phone: Mapped[str | None] = mapped_column(String(32))
    credential_id: Mapped[str | None] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str] | None] = mapped_column(Json)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False)
    aaguid: Mapped[str | None] = mapped_column(String(36))

    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(db.Model):  # type: ignore[name-defined]
    """A single-use recovery code, stored as a keyed digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class SmsCode(db.Model):  # type: ignore[name-defined]
    """A code sent by SMS (enrolment or sign-in), by keyed digest, with its tries."""

    __tablename__ = "sms_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    factor_id: Mapped[int | None] = mapped_column(ForeignKey("factors.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class AdminRight(db.Model):  # type: ignore[name-defined]
    """A right an admin holds, limited to email domains (``["example.no"]``)."""

    __tablename__ = "admin_rights"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    right: Mapped[str] = mapped_column(String(64))
    domains: Mapped[list[str]] = mapped_column(Json, default=list)
    granted_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("user_id", "right", name="uq_admin_right_user_right"),)


class OneTimeCode(db.Model):  # type: ignore[name-defined]
    """An admin-issued one-time code that lets a locked-out user pass the
    second step once (keyed digest; 10 minutes; single use)."""

    __tablename__ = "one_time_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class SmsOutbox(db.Model):  # type: ignore[name-defined]
    """Text messages of the ``outbox`` SMS backend (demo and tests): kept
    here instead of leaving, the text encrypted (it holds a live code)."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    body_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def body(self) -> str:
        return _secrets().decrypt(self.body_enc).decode("utf-8")

    @body.setter
    def body(self, value: str) -> None:
        self.body_enc = _secrets().encrypt(value.encode("utf-8"))


class Upstream(db.Model):  # type: ignore[name-defined]
    """An upstream OpenID provider people may sign in through (``federation/``):
    a company's ADFS or Entra ID, or a national eID (ID-porten, BankID).

    ``issuer`` is what its ID tokens must say; for a multi-tenant Entra ID it
    is the template ``https://login.microsoftonline.com/{tenantid}/v2.0`` and
    ``tenants`` lists the ``tid`` values allowed. The client secret and our
    private key (``private_key_jwt``) are encrypted. ``metadata_doc`` is the
    discovery document, refreshed after ``UPSTREAM_METADATA_SECONDS``;
    ``jwks_doc`` its keys, fetched again for an unknown ``kid``.

    Trust: ``create_accounts`` (just-in-time accounts for its ``domains``),
    ``link_by_proof`` (a person may link an identity of it to an account they
    prove), ``trust_email`` (its ``email`` claim counts as verified even
    without ``email_verified``; never used for linking)."""

    __tablename__ = "upstreams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    discovery_url: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_method: Mapped[str] = mapped_column(String(32))  # client_secret_basic | client_secret_post | private_key_jwt
    client_secret_enc: Mapped[str | None] = mapped_column(Text)
    private_key_enc: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(Json, default=list)
    acr_values: Mapped[list[str]] = mapped_column(Json, default=list)
    claim_map: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    tenants: Mapped[list[str]] = mapped_column(Json, default=list)
    id_token_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    acr: Mapped[str | None] = mapped_column(String(100))  # the session's acr after this upstream
    trust_amr: Mapped[bool] = mapped_column(Boolean, default=False)
    create_accounts: Mapped[bool] = mapped_column(Boolean, default=False)
    link_by_proof: Mapped[bool] = mapped_column(Boolean, default=True)
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)
    national_id_claim: Mapped[str | None] = mapped_column(String(64))
    test_environment: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    button: Mapped[bool] = mapped_column(Boolean, default=True)  # "Sign in with ..." on the email page
    metadata_doc: Mapped[dict[str, Any] | None] = mapped_column(Json)
    metadata_at: Mapped[int | None] = mapped_column(BigInteger)
    jwks_doc: Mapped[dict[str, Any] | None] = mapped_column(Json)
    jwks_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def client_secret(self) -> str | None:
        return _secrets().decrypt(self.client_secret_enc).decode("utf-8") if self.client_secret_enc else None

    @client_secret.setter
    def client_secret(self, value: str | None) -> None:
        self.client_secret_enc = _secrets().encrypt(value.encode("utf-8")) if value else None

    @property
    def private_key(self) -> dict[str, Any] | None:
        import json

        return json.loads(_secrets().decrypt(self.private_key_enc)) if self.private_key_enc else None

    @private_key.setter
    def private_key(self, value: dict[str, Any] | None) -> None:
        import json

        self.private_key_enc = _secrets().encrypt(json.dumps(value).encode("utf-8")) if value else None

    domain_rows: Mapped[list[UpstreamDomain]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="UpstreamDomain.domain")

    @property
    def domains(self) -> list[str]:
        """The email domains it serves (home-realm discovery; one upstream per domain)."""
        return [d.domain for d in self.domain_rows]

    @domains.setter
    def domains(self, values: list[str]) -> None:
        self.domain_rows = [UpstreamDomain(domain=v) for v in values]

    @property
    def national(self) -> bool:
        """A national eID: it proves a national identity number, not a company account."""
        return bool(self.national_id_claim)

    @property
    def label(self) -> str:
        return self.display_name or self.name


class UpstreamDomain(db.Model):  # type: ignore[name-defined]
    """An email domain an upstream serves: its addresses go to that upstream
    from the email page. The domain is the key, so one upstream per domain,
    and finding it is one indexed look-up among thousands of companies."""

    __tablename__ = "upstream_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), index=True)


class UpstreamIdentity(db.Model):  # type: ignore[name-defined]
    """An identity at an upstream provider linked to a local account: the
    upstream, the issuer that vouched for it (one tenant's for a multi-tenant
    Entra ID) and its subject (``tid``/``oid`` for Entra ID, never the email).
    One account per identity."""

    __tablename__ = "upstream_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(320), default="")  # what the person saw at the upstream (an address)
    linked_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)

    upstream: Mapped[Upstream] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("upstream_id", "issuer", "subject", name="uq_upstream_identity"),)


class NationalIdentity(db.Model):  # type: ignore[name-defined]
    """A national identity number linked to one account: a keyed digest to
    find it (one account per number, one number per account) and the number
    encrypted (shown masked only)."""

    __tablename__ = "national_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    number_enc: Mapped[str] = mapped_column(Text)
    upstream_id: Mapped[int | None] = mapped_column(ForeignKey("upstreams.id", ondelete="SET NULL"))
    linked_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship(lazy="joined")

    @property
    def number(self) -> str:
        return _secrets().decrypt(self.number_enc).decode("utf-8")

    @number.setter
    def number(self, value: str) -> None:
        self.number_enc = _secrets().encrypt(value.encode("utf-8"))


class Agreement(db.Model):  # type: ignore[name-defined]
    """A company whose apps people use (Visma Connect's "agreement"): its name,
    Norwegian organisation number (9 digits, mod-11), email domains and status
    (``active`` or ``closed``). ``require_acr``: the level its members must
    reach to work in it (None, or ``urn:visma_idp:acr:mfa`` / ``...:phr``),
    enforced at sign-in and at switching. ``public_id`` is what tokens carry."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_sub)
    name: Mapped[str] = mapped_column(String(200))
    org_number: Mapped[str] = mapped_column(String(9), unique=True)
    domains: Mapped[list[str]] = mapped_column(Json, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    require_acr: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger)


class Membership(db.Model):  # type: ignore[name-defined]
    """A user's place in an agreement and their roles there: ``roles`` is a list
    of ``{"role": name, "client": client_id or null}`` (null: in every app of
    the agreement). ``last_used_at``: the chooser puts the last used first."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    roles: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)

    agreement: Mapped[Agreement] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("agreement_id", "user_id", name="uq_membership"),)

    def roles_for(self, client_id: str | None) -> list[str]:
        """The role names that hold in the app ``client_id`` (those of every app, and its own)."""
        return sorted({r["role"] for r in self.roles or [] if r.get("client") in (None, client_id)})


class AgreementInvitation(db.Model):  # type: ignore[name-defined]
    """An invitation to join an agreement, sent to one email address: its link's
    digest (single use, ``expires_at``), the roles it gives, who sent it, and
    what became of it (accepted by a user, or revoked)."""

    __tablename__ = "agreement_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    roles: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    accepted_at: Mapped[int | None] = mapped_column(BigInteger)
    accepted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)

    agreement: Mapped[Agreement] = relationship(lazy="joined")


class ProvisioningClient(db.Model):  # type: ignore[name-defined]
    """A payroll or HR system that pushes people into one agreement over SCIM
    (``provisioning/``): its bearer token's keyed digest (shown once, rotatable)
    and the person attributes it is the configured authority for
    (``authoritative_for``; see ``provisioning/sources.py``)."""

    __tablename__ = "provisioning_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    authoritative_for: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)

    agreement: Mapped[Agreement] = relationship(lazy="joined")

    @property
    def source(self) -> str:
        """How attribute sources and conflicts name this client."""
        return f"scim:{self.id}"


class ScimResource(db.Model):  # type: ignore[name-defined]
    """One SCIM resource (a ``User`` or a ``Group``) as one provisioning client
    pushed it: ``data`` is its JSON without ``id``, ``meta`` or a password, so
    the client reads back what it sent. A User resource is the client's record
    of a person, linked to the account (``user_id``) once matched; a Group is
    a role in the agreement (``role``), its members in ``data``.

    ``key`` is the User's ``userName`` (the client's own key for the person,
    unique per client) or the Group's ``displayName``; ``version`` gives the
    ETag; ``granted_roles`` are the roles this client's groups gave the person,
    ``kept_roles`` the membership's roles while the person is deactivated;
    ``requested_email`` the address whose change this client last asked for."""

    __tablename__ = "scim_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scim_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_sub)
    client_id: Mapped[int] = mapped_column(ForeignKey("provisioning_clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    role: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    granted_roles: Mapped[list[str]] = mapped_column(Json, default=list)
    kept_roles: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    requested_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    client: Mapped[ProvisioningClient] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("client_id", "kind", "key", name="uq_scim_resource_key"),
        Index("ix_scim_resources_external_id", "client_id", "external_id"),
    )


class AttributeSource(db.Model):  # type: ignore[name-defined]
    """Who set a person's attribute and so owns it (``provisioning/sources.py``):
    ``self`` (the person, on My details) or ``scim:<provisioning client id>``."""

    __tablename__ = "attribute_sources"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    attribute: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[int] = mapped_column(BigInteger)


class ProvisioningConflict(db.Model):  # type: ignore[name-defined]
    """A value for a person's attribute from a source that does not own it,
    kept instead of applied: both values, both sources, first and last seen;
    ``notified_at`` (the agreement's admins were told, once), ``resolved_at``,
    ``resolved_by`` and ``chosen`` (the source the admin picked). One row per
    (person, attribute, source, value): the same value pushed again only moves
    ``last_seen``."""

    __tablename__ = "provisioning_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(32))
    current_source: Mapped[str] = mapped_column(String(64))
    current_value: Mapped[str | None] = mapped_column(String(320))
    other_source: Mapped[str] = mapped_column(String(64))
    other_value: Mapped[str | None] = mapped_column(String(320))
    first_seen: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[int] = mapped_column(BigInteger)
    notified_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    chosen: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])


class ThrottleCount(db.Model):  # type: ignore[name-defined]
    """A throttle count kept in the database while Redis does not answer
    (``login/throttle.py``'s fallback): the key's SHA-256, never the address or email."""

    __tablename__ = "throttle_counts"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    last: Mapped[float] = mapped_column(Double, default=0.0, index=True)


class LogoutDelivery(db.Model):  # type: ignore[name-defined]
    """One back-channel logout token to deliver to one relying app
    (``oidc/backchannel.py``): for which session (``sid``, its public id) and
    user (``sub``), where (``uri``, copied when queued), its ``jti`` (fixed:
    every try carries the same one, so the app can drop a repeat), and the
    delivery's state like the mail outbox's: ``pending`` / ``sent`` /
    ``failed``, ``attempts`` (the claim's fencing token), ``lease_until``,
    ``next_attempt_at``, ``last_error``."""

    __tablename__ = "logout_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    uri: Mapped[str] = mapped_column(String(2000))
    sub: Mapped[str] = mapped_column(String(36))
    sid: Mapped[str | None] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
