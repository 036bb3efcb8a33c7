"""Security keys and passkeys (WebAuthn, py_webauthn 3): the ceremonies.

Rules:
- the relying party is ``WEBAUTHN_RP_ID`` (default: the issuer's host name),
  responses must come from one of ``WEBAUTHN_ORIGINS`` (default: the
  issuer's origin), dialogs show ``WEBAUTHN_RP_NAME``; attestation is
  ``none`` (we do not ask which make of key it is, so no key is turned away
  for its brand and no attestation certificate is stored);
- every ceremony has its own challenge: 32 random bytes, bound to the
  ceremony (``register``, ``2fa``, ``passkey``) and to the user (none for a
  passkey sign-in, where the user is not known yet), valid
  ``CHALLENGE_LIFETIME`` seconds. It waits in the signed session cookie and
  is taken out when a response comes back; its digest is also written to
  ``seen_jtis`` then, so even a copy of the old cookie cannot use it twice.
  The passkey sign-in's challenge waits in a cookie of its own
  (``browser/cookies.PASSKEY``, signed, HttpOnly, ``__Host-`` on https): the email
  page fetches it as it loads, and that answer must not overwrite a session
  cookie the email form's answer has just written;
- two kinds can be registered: a *security key* (a key you plug in or tap:
  cross-platform, not discoverable, user verification not asked) and a
  *passkey* (a discoverable credential with user verification: a PIN,
  fingerprint or face), which can also sign in without a password. A
  credential id is registered once in the whole system (one already known,
  to anybody, is refused: with attestation ``none`` that is what stops
  someone from claiming another person's credential id);
- the stored sign counter must grow with every use when the key counts at
  all; a counter that stands still or goes back means the key may have been
  copied: the use is refused and audited (``webauthn_counter_regressed``);
- ``amr`` (RFC 8176) of a use, see :func:`amr_for`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import session
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..browser import cookies
from ..context import current_idp
from ..crypto import derive_key, digest
from ..storage import Factor, db, queries
from . import AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY, AMR_USER_PRESENCE, Method, MethodRefused, Verified, register

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor


class _Library:
    """py_webauthn (about 14 MB per process with what it loads), imported by
    the first ceremony: a worker that never sees a security key or passkey
    never holds it. ``_w.name`` is the library's ``name``."""

    def __getattr__(self, name: str) -> Any:
        import webauthn
        import webauthn.helpers
        import webauthn.helpers.exceptions
        import webauthn.helpers.structs

        for module in (webauthn, webauthn.helpers, webauthn.helpers.exceptions, webauthn.helpers.structs):
            if hasattr(module, name):
                value = getattr(module, name)
                setattr(self, name, value)
                return value
        raise AttributeError(name)


_w = _Library()


KIND = "webauthn"
SECURITY_KEY = "key"
PASSKEY = "passkey"
CHALLENGE_LIFETIME = 300  # seconds from the options to the response
CEREMONY_TIMEOUT_MS = 180_000  # what the browser is told (a hint; below the challenge's lifetime)
MAX_CREDENTIALS = 20  # security keys and passkeys per user
MAX_NAME = 60
MAX_RESPONSE = 32 * 1024  # characters of a credential's JSON
STATE_KEY = "webauthn"
# transports of a key of its own (a USB stick, an NFC card, a Bluetooth token)
HARDWARE_TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card"})


class Refused(Exception):
    """A ceremony failed; ``message`` is for the user (translated), ``reason``
    for the audit trail, ``status`` the HTTP status, ``user_id`` whose
    credential it was, when known."""

    def __init__(self, message: str, reason: str, status: int = 400, user_id: int | None = None):
        self.message = message
        self.reason = reason
        self.status = status
        self.user_id = user_id
        super().__init__(reason)



# -- the relying party ---------------------------------------------------------------


def rp_id() -> str:
    configured = current_idp().settings["WEBAUTHN_RP_ID"]
    return configured or (urlsplit(current_idp().issuer).hostname or "")


def rp_name() -> str:
    return current_idp().settings["WEBAUTHN_RP_NAME"]


def origins() -> list[str]:
    configured = current_idp().settings["WEBAUTHN_ORIGINS"]
    if configured:
        return [o.rstrip("/") for o in configured.split()]
    return [current_idp().issuer_origin]


def user_handle(user) -> bytes:
    """The WebAuthn user id: stable, opaque, no personal data (a digest of ``sub``)."""
    return hashlib.sha256(f"visma_idp:webauthn-user:{user.sub}".encode()).digest()


# -- challenges ----------------------------------------------------------------------


def _passkey_serializer() -> URLSafeSerializer:
    key = derive_key(current_idp().settings["SECRET_KEY"], "passkey-challenge").hex()
    return URLSafeSerializer(key, salt="visma_idp.passkey")


def _new_challenge(ceremony: str, user_id: int | None, **extra: Any) -> bytes:
    challenge = secrets.token_bytes(32)
    state = {"c": _w.bytes_to_base64url(challenge), "u": user_id, "at": current_idp().clock.now(), **extra}
    if ceremony == "passkey":
        cookies.set(cookies.PASSKEY, _passkey_serializer().dumps(state), max_age=CHALLENGE_LIFETIME)
        return challenge
    states = dict(session.get(STATE_KEY) or {})
    states[ceremony] = state
    session[STATE_KEY] = states
    return challenge


def _stored_state(ceremony: str) -> Any:
    """Take the ceremony's stored state out of where it waits (None: there is none)."""
    if ceremony == "passkey":
        cookies.clear(cookies.PASSKEY)  # cleared with the answer, whatever the outcome
        raw = cookies.read(cookies.PASSKEY)
        if not raw or len(raw) > 1000:
            return None
        try:
            return _passkey_serializer().loads(raw)
        except BadSignature:
            return None
    states = dict(session.get(STATE_KEY) or {})
    state = states.pop(ceremony, None)
    if states:
        session[STATE_KEY] = states
    else:
        session.pop(STATE_KEY, None)
    return state


def _expired() -> Refused:
    return Refused(_("The request took too long or was already used. Try again."), "challenge_expired")


def _take_challenge(ceremony: str, user_id: int | None) -> tuple[bytes, dict[str, Any]]:
    """Take the ceremony's challenge out (it is single use); raise :class:`Refused`
    when there is none, it is someone else's, too old, or was used before."""
    state = _stored_state(ceremony)
    if not isinstance(state, dict) or not isinstance(state.get("c"), str) or state.get("u") != user_id:
        raise _expired()
    now = current_idp().clock.now()
    at = int(state.get("at") or 0)
    if now - at > CHALLENGE_LIFETIME or now < at:
        raise _expired()
    if not queries.remember_jti(digest(f"webauthn:{state['c']}"), at + CHALLENGE_LIFETIME, now):
        raise Refused(_("The request took too long or was already used. Try again."), "challenge_replayed")
    return _w.base64url_to_bytes(state["c"]), state


# -- the user's credentials ------------------------------------------------------------


def keys_of(user) -> list[Factor]:
    """The user's confirmed security keys and passkeys, oldest first."""
    return list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .order_by(Factor.id)
    ))


def count_of(user) -> int:
    return db.session.scalar(
        select(func.count(Factor.id)).where(Factor.user_id == user.id, Factor.kind == KIND)
    ) or 0


def has_keys(user) -> bool:
    return db.session.scalar(
        select(Factor.id).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .limit(1)
    ) is not None


def key_of(user, factor_id: int) -> Factor | None:
    factor = db.session.get(Factor, factor_id)
    if factor is None or factor.user_id != user.id or factor.kind != KIND or factor.confirmed_at is None:
        return None
    return factor


def _descriptors(factors: list[Factor]) -> list[PublicKeyCredentialDescriptor]:
    found = []
    for f in factors:
        transports = []
        for t in f.transports or []:
            try:
                transports.append(_w.AuthenticatorTransport(t))
            except ValueError:
                continue
        found.append(_w.PublicKeyCredentialDescriptor(id=_w.base64url_to_bytes(f.credential_id or ""),
                                                   transports=transports or None))
    return found


def amr_for(transports: list[str] | None, multi_device: bool, user_verified: bool) -> tuple[str, ...]:
    """What a use of a credential proves, as RFC 8176 ``amr`` values.

    - ``hwk`` (proof of a hardware-secured key): the credential is bound to
      one device (not backup eligible, so it cannot be synced) and was
      registered with only transports of a separate key (USB, NFC,
      Bluetooth, smart card);
    - ``swk`` (a software-secured key) otherwise: platform authenticators
      (``internal``), a phone over ``hybrid``, synced passkeys, and keys whose
      transports the browser did not tell (we do not claim hardware we
      cannot see);
    - plus ``user`` when the authenticator verified the user (a PIN, a
      fingerprint or a face: WebAuthn does not say which, so not ``pin`` or
      ``fpt``).
    """
    known = set(transports or [])
    hardware = bool(known) and known <= HARDWARE_TRANSPORTS and not multi_device
    amr = [AMR_HARDWARE_KEY if hardware else AMR_SOFTWARE_KEY]
    if user_verified:
        amr.append(AMR_USER_PRESENCE)
    return tuple(amr)


def _parse_json(raw: str | None) -> dict[str, Any]:
    if not raw or len(raw) > MAX_RESPONSE:
        raise Refused(_("Your browser sent no answer from the security key or passkey. Try again."), "no_response")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or len(value["id"]) > 1400:
        raise Refused(_("Your browser sent an answer we cannot read. Try again."), "malformed")
    return value


# -- registration ------------------------------------------------------------------------


def kind_label(kind: str) -> str:
    return _("Passkey") if kind == PASSKEY else _("Security key")


def clean_name(raw: str | None, kind: str) -> str:
    """The name the user gave (trimmed, no control characters), or the kind's label;
    raise :class:`Refused` when it is too long."""
    name = " ".join("".join(ch for ch in (raw or "") if ch.isprintable()).split())
    if len(name) > MAX_NAME:
        raise Refused(_("Use at most %(count)d characters for the name.", count=MAX_NAME), "name_too_long")
    return name or kind_label(kind)


def registration_options(user, kind: str, name: str) -> str:
    """Options for ``navigator.credentials.create()`` (JSON); keeps the challenge."""
    if kind == PASSKEY:
        selection = _w.AuthenticatorSelectionCriteria(
            resident_key=_w.ResidentKeyRequirement.REQUIRED,
            user_verification=_w.UserVerificationRequirement.REQUIRED,
        )
        hints = None
    else:
        selection = _w.AuthenticatorSelectionCriteria(
            authenticator_attachment=_w.AuthenticatorAttachment.CROSS_PLATFORM,
            resident_key=_w.ResidentKeyRequirement.DISCOURAGED,
            user_verification=_w.UserVerificationRequirement.DISCOURAGED,
        )
        hints = [_w.PublicKeyCredentialHint.SECURITY_KEY]
    challenge = _new_challenge("register", user.id, k=kind, n=name)
    options = _w.generate_registration_options(
        rp_id=rp_id(), rp_name=rp_name(), user_id=user_handle(user), user_name=user.email,
        user_display_name=user.name or user.email, challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
        attestation=_w.AttestationConveyancePreference.NONE, authenticator_selection=selection,
        exclude_credentials=_descriptors(keys_of(user)), hints=hints,
    )
    return _w.options_to_json(options)


@dataclass(frozen=True)
class Registered:
    factor: Factor
    amr: tuple[str, ...]


def finish_registration(user, raw: str | None) -> Registered:
    """Check the browser's answer to :func:`registration_options` and store the
    credential as a confirmed factor (the caller commits). Raises :class:`Refused`."""
    challenge, state = _take_challenge("register", user.id)
    kind = PASSKEY if state.get("k") == PASSKEY else SECURITY_KEY
    value = _parse_json(raw)
    try:
        credential = _w.parse_registration_credential_json(value)
        verification = _w.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins(), require_user_verification=kind == PASSKEY,
        )
    except _w.WebAuthnException as exc:
        if "User verification is required" in str(exc):
            raise Refused(_("A passkey must confirm it is you with a PIN, fingerprint or face. "
                            "Use a device or security key that can, or add it as a security key."),
                          "user_not_verified") from exc
        raise Refused(_("The security key or passkey could not be registered. Try again."),
                      "invalid_response") from exc
    if count_of(user) >= MAX_CREDENTIALS:
        raise Refused(_("You have %(count)d security keys and passkeys, the most we keep. Remove one first.",
                        count=MAX_CREDENTIALS), "too_many", 409)
    credential_id = _w.bytes_to_base64url(verification.credential_id)
    if db.session.scalar(select(Factor.id).where(Factor.credential_id == credential_id)) is not None:
        raise Refused(_("This security key or passkey is already registered."), "already_registered", 409)
    transports = sorted({t.value for t in credential.response.transports or []})
    now = current_idp().clock.now()
    factor = Factor(
        user_id=user.id, kind=KIND, name=str(state.get("n") or kind_label(kind))[:MAX_NAME],
        created_at=now, confirmed_at=now, credential_id=credential_id,
        public_key=_w.bytes_to_base64url(verification.credential_public_key), sign_count=verification.sign_count,
        transports=transports, discoverable=kind == PASSKEY, aaguid=verification.aaguid,
    )
    try:
        with db.session.begin_nested():  # two registrations of one credential racing
            db.session.add(factor)
    except IntegrityError as exc:
        raise Refused(_("This security key or passkey is already registered."), "already_registered", 409) from exc
    multi = verification.credential_device_type == _w.CredentialDeviceType.MULTI_DEVICE
    return Registered(factor, amr_for(transports, multi, verification.user_verified))


def rename(factor: Factor, raw: str | None) -> str:
    name = clean_name(raw, PASSKEY if factor.discoverable else SECURITY_KEY)
    factor.name = name
    return name


# -- using a credential --------------------------------------------------------------------


def second_step_options(user) -> str:
    """Options for ``navigator.credentials.get()`` in the second step (JSON)."""
    challenge = _new_challenge("2fa", user.id)
    options = _w.generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=_descriptors(keys_of(user)),
        # the password came first: a touch is enough (a passkey may still ask for more)
        user_verification=_w.UserVerificationRequirement.DISCOURAGED,
    )
    return _w.options_to_json(options)


def passkey_options() -> str:
    """Options for a sign-in without a password: any discoverable credential,
    the user verified by the authenticator (JSON)."""
    challenge = _new_challenge("passkey", None)
    options = _w.generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
        user_verification=_w.UserVerificationRequirement.REQUIRED,
    )
    return _w.options_to_json(options)


def _not_verified() -> Refused:
    return Refused(_("Your security key or passkey could not be verified. Try again, or use another way."),
                   "invalid_signature", 401)


def _check_assertion(factor: Factor, value: dict[str, Any], challenge: bytes, *,
                     require_uv: bool) -> tuple[str, ...]:
    """Verify an assertion by ``factor``; update its counter; return its ``amr``."""
    try:
        credential = _w.parse_authentication_credential_json(value)
        verification = _w.verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins(), credential_public_key=_w.base64url_to_bytes(factor.public_key or ""),
            # 0: the counter is checked below, after the signature, so that only a
            # genuine signature with a stale counter is reported as a copied key
            credential_current_sign_count=0, require_user_verification=require_uv,
        )
    except _w.WebAuthnException as exc:
        if require_uv and "User verification is required" in str(exc):
            raise Refused(_("Your passkey must confirm it is you with a PIN, fingerprint or face. Try again."),
                          "user_not_verified", 401) from exc
        raise _not_verified() from exc
    if require_uv and credential.response.user_handle is not None and not hmac.compare_digest(
            credential.response.user_handle, user_handle(factor.user)):
        raise _not_verified()
    new, old = verification.new_sign_count, factor.sign_count or 0
    now = current_idp().clock.now()
    if (new or old) and new <= old:
        audit.record("webauthn_counter_regressed", outcome="failure", user_id=factor.user_id,
                     details={"factor_id": factor.id, "stored": old, "received": new})
        raise Refused(_("This security key or passkey may have been copied, so we did not accept it. "
                        "Sign in another way and tell your administrator."), "counter_regressed", 403)
    if new > old:
        # conditional, so two uses racing with the same counter cannot both pass
        done = db.session.execute(
            update(Factor).where(Factor.id == factor.id, Factor.sign_count < new)
            .values(sign_count=new, last_used_at=now)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise _not_verified()
    else:
        factor.last_used_at = now
    multi = verification.credential_device_type == _w.CredentialDeviceType.MULTI_DEVICE
    return amr_for(factor.transports, multi, verification.user_verified)


def verify_second_step(user, form) -> Verified:
    """The second step with a security key or passkey of this user."""
    try:
        challenge, _state = _take_challenge("2fa", user.id)
        value = _parse_json(form.get("credential"))
        factor = db.session.scalar(select(Factor).where(
            Factor.credential_id == value["id"], Factor.user_id == user.id, Factor.kind == KIND,
            Factor.confirmed_at.is_not(None)))
        if factor is None:
            raise Refused(_("This security key or passkey is not registered to your account."), "unknown_credential")
        amr = _check_assertion(factor, value, challenge, require_uv=False)
    except Refused as exc:
        if exc.reason not in ("counter_regressed",):
            audit.record("webauthn_refused", outcome="failure", user_id=user.id, details={"reason": exc.reason})
        raise MethodRefused(exc.message, exc.status) from exc
    return Verified(amr=amr, phishing_resistant=True, factor_id=factor.id)


def verify_passkey(raw: str | None) -> tuple[Any, Factor, tuple[str, ...]]:
    """A sign-in without a password: (user, factor, amr). Raises :class:`Refused`."""
    challenge, _state = _take_challenge("passkey", None)
    value = _parse_json(raw)
    factor = db.session.scalar(select(Factor).where(
        Factor.credential_id == value["id"], Factor.kind == KIND, Factor.confirmed_at.is_not(None)))
    if factor is None:
        raise Refused(_("This passkey is not registered here. Sign in with your email address and password."),
                      "unknown_credential", 401)
    try:
        amr = _check_assertion(factor, value, challenge, require_uv=True)
    except Refused as exc:
        exc.user_id = factor.user_id
        raise
    if not factor.discoverable:
        raise Refused(_("This security key is set up only as the second step. Sign in with your email address "
                        "and password, then use the key."), "not_a_passkey", user_id=factor.user_id)
    return factor.user, factor, amr


def _prepare(user) -> dict[str, Any]:
    return {"options": second_step_options(user)}


METHOD = register(Method(
    key="webauthn",
    strength=90,
    label=lazy_gettext("Security key or passkey"),
    template="login/_verify_webauthn.html",
    available=has_keys,
    prepare=_prepare,
    verify=verify_second_step,
    phishing_resistant=True,
    own_submit=True,
))
