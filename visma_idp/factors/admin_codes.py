"""Admin-issued one-time codes: a way back in for a user who lost their second factor.

An admin holding the right ``issue_one_time_codes`` for the user's email
domain (``admin/rights.py``) creates a code on the admin page, through the
admin API or with ``visma-idp users one-time-code``. The user then signs in
with their password and the code, and must set up a new factor before the
sign-in ends.

Rules:
- the code is 10 characters from an alphabet without look-alikes (no 0/O,
  1/I/L), shown as two groups of five (about 49 bits); only its keyed digest
  is stored; it is shown once to whoever issued it and never mailed;
- it lives ``ONE_TIME_CODE_LIFETIME`` seconds (10 minutes), works once (an
  atomic conditional UPDATE marks it used), and a new code voids the user's
  older live ones;
- passing the second step with it sets ``must_enrol_factor``: the pending
  sign-in goes to enrolment (``Verified.enrol_next``) and ends only when a
  new factor is confirmed;
- who may issue: an active admin with the right for exactly the user's
  domain, never for their own account. The checks run in an order that keeps
  an admin outside the domain from learning anything: first the right, then
  the address (parsed by ``addresses.py``: exactly one address; its
  parsed domain is what is compared, with no database lookup), and only then
  whether such a user exists. So "no right" and "outside your domains" never
  depend on the account existing; an admin of the domain is told when there
  is no such user (404) or the account cannot sign in (409);
- ``visma-idp users one-time-code`` without ``--admin`` is the operator (who
  has the server and its database anyway) and may issue for anyone; with
  ``--admin`` that admin's right is checked as on the web;
- every issue (``one_time_code_issued``), refusal (``one_time_code_refused``
  with the reason) and use (``one_time_code_used``) is audited; issue and use
  are emailed to the user;
- issuing is an action on the account: it voids the user's pending links that
  would change the account, a pending email change among them
  (``account/sessions.py``), and the email says so when there was one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from .. import audit
from ..addresses import AddressError, as_typed
from ..addresses import parse as parse_address
from ..context import current_idp
from ..errors import VismaIdpError
from ..storage import OneTimeCode, User, db, queries
from . import AMR_OTP, Method, MethodRefused, Verified, register

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols, no 0/O, 1/I/L
LENGTH = 10
GROUP = 5
KEY = "admin_code"
_DIGEST_PREFIX = "admin-one-time-code:"

REFUSALS = {
    # reason: (HTTP status, what the admin is told)
    "no_right": (403, _l("You do not have the right to issue one-time codes.")),
    "outside_domain": (403, _l("You may only issue one-time codes for users in your own email domains.")),
    "self": (403, _l("You cannot issue a one-time code for your own account. Ask another administrator.")),
    "bad_email": (400, _l("Enter the user's email address, like name@example.no.")),
    "unknown_user": (404, _l("There is no user with that email address.")),
    "not_active": (409, _l("That account cannot sign in (it is pending, locked or disabled), so a one-time code "
                           "would not help.")),
}


class IssueRefused(VismaIdpError):
    """Issuing was refused; ``reason`` is a key of :data:`REFUSALS`, ``status``
    the HTTP status and ``message`` the translated text (with ``detail``, a
    translated sentence saying more, after it)."""

    def __init__(self, reason: str, detail: str | None = None):
        self.reason = reason
        self.status, message = REFUSALS[reason]
        self.message = str(message) + (" " + detail if detail else "")
        super().__init__(self.message)


@dataclass(frozen=True)
class IssuedCode:
    """A code just issued: ``code`` (raw, grouped for reading out; show it once),
    ``expires_at`` (epoch seconds) and the ``target`` user."""

    code: str
    expires_at: int
    target: User
    row_id: int



def _digest(normalised: str) -> str:
    return current_idp().secrets.keyed_digest(_DIGEST_PREFIX + normalised)


def new_code() -> str:
    """A fresh raw code, without separators."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def normalise(value: str | None) -> str | None:
    """What the user typed -> the code without spaces or dashes, upper-case; None if it cannot be a code."""
    if not value or len(value) > 64:
        return None
    cleaned = "".join(ch for ch in value.upper() if ch not in " -\t\u00a0")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def live_code(user) -> OneTimeCode | None:
    """The user's unused, unexpired code, if any."""
    now = current_idp().clock.now()
    return db.session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .order_by(OneTimeCode.id.desc()).limit(1)
    )


# -- issuing ------------------------------------------------------------------


def _refuse(reason: str, admin: User | None, typed: str | None, via: str, target: User | None = None,
            address_error: AddressError | None = None):
    details: dict = {"reason": reason, "via": via}
    if target is not None:
        details["target_user_id"] = target.id
    if address_error is not None:
        details["address"] = address_error.reason
    audit.record("one_time_code_refused", outcome="failure", user_id=admin.id if admin else None,
                 subject=as_typed(typed), details=details)
    detail = address_error.message if address_error is not None and address_error.reason not in ("missing", "syntax") \
        else None
    return IssueRefused(reason, detail)


def issue(admin: User | None, target: User, *, via: str = "cli") -> IssuedCode:
    """Issue a code for ``target``; ``admin`` None is the operator (CLI only).
    Audits and queues the email to the user; the caller commits (also when
    this raises: the refusal is audited).

    Raises:
        IssueRefused: the admin may not (no right, outside the domain, their
            own account) or the account cannot sign in.
    """
    if admin is not None:
        from ..admin import rights

        if not rights.holds(admin):
            raise _refuse("no_right", admin, target.email, via)
        if admin.id == target.id:
            raise _refuse("self", admin, target.email, via, target)
        if not rights.may_issue(admin, target):
            raise _refuse("outside_domain", admin, target.email, via)
    if target.status != "active":
        raise _refuse("not_active", admin, target.email, via, target)
    idp = current_idp()
    now = idp.clock.now()
    # a new code voids the older live ones
    db.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == target.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .values(expires_at=now),
        execution_options={"synchronize_session": False},
    )
    raw = new_code()
    lifetime = idp.settings["ONE_TIME_CODE_LIFETIME"]
    row = OneTimeCode(user_id=target.id, issued_by=admin.id if admin else None, digest=_digest(raw),
                      created_at=now, expires_at=now + lifetime)
    db.session.add(row)
    db.session.flush()
    audit.record("one_time_code_issued", user_id=target.id, subject=target.email, details={
        "admin_id": admin.id if admin else None, "admin_email": admin.email if admin else None,
        "operator": admin is None, "via": via, "code_id": row.id, "expires_at": row.expires_at,
    })
    from ..account.sessions import void_pending_links
    from ..notify import messages

    # an admin's action on the account: a pending email change (maybe asked for by
    # whoever made the user call the helpdesk) and every other pending link die
    voided = void_pending_links(target.id, reason="one_time_code_issued", now=now)
    messages.queue("one_time_code_issued", to=target.email, user=target, admin=admin,
                   minutes=max(1, lifetime // 60), email_change_cancelled=voided.email_change)
    return IssuedCode(code=grouped(raw), expires_at=row.expires_at, target=target, row_id=row.id)


def issue_for_email(admin: User | None, email: str | None, *, via: str) -> IssuedCode:
    """Issue a code for the user with this email address, checking in the order
    described in the module docstring (nothing about an account is looked up
    before the admin is known to hold the right for its domain). The caller commits.

    Raises:
        IssueRefused: see :data:`REFUSALS`.
    """
    from ..admin import rights

    typed = (email or "").strip().lower()
    if admin is not None and not rights.holds(admin):
        raise _refuse("no_right", admin, typed, via)
    try:
        # one address in its stored spelling; the domain compared below is the parsed one
        address = parse_address(email)
    except AddressError as exc:
        raise _refuse("bad_email", admin, typed, via, address_error=exc) from None
    typed = address.email
    if admin is not None and not rights.covers(admin, typed):
        raise _refuse("outside_domain", admin, typed, via)
    target = queries.user_by_email(typed)
    if target is None:
        raise _refuse("unknown_user", admin, typed, via)
    return issue(admin, target, via=via)


# -- the second step ------------------------------------------------------------


def _available(user) -> bool:
    return live_code(user) is not None


def _prepare(user) -> dict:
    return {}


def _verify(user, form: Mapping[str, str]) -> Verified:
    code = normalise(form.get("code"))
    if code is None:
        raise MethodRefused(_("Enter the 10-character one-time code your administrator gave you."), 400)
    idp = current_idp()
    now = idp.clock.now()
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.digest == _digest(code),
                                                      OneTimeCode.user_id == user.id))
    if row is None:
        raise MethodRefused(_("That one-time code is not right. Check it and try again."), 400)
    claimed = db.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        db.session.refresh(row)
        if row.used_at is not None:
            message = _("That one-time code was already used. Ask your administrator for a new one.")
        else:
            message = _("That one-time code has expired. Ask your administrator for a new one.")
        raise MethodRefused(message, 410)
    admin = db.session.get(User, row.issued_by) if row.issued_by is not None else None
    audit.record("one_time_code_used", user_id=user.id, subject=user.email,
                 details={"code_id": row.id, "issued_by": row.issued_by})
    from ..notify import messages

    messages.queue("one_time_code_used", to=user.email, user=user, admin=admin, ip=audit.client_ip())
    return Verified(amr=(AMR_OTP,), enrol_next=True)


METHOD = register(Method(
    key=KEY,
    strength=5,
    label=_l("One-time code from your administrator"),
    template="login/_verify_admin_code.html",
    available=_available,
    prepare=_prepare,
    verify=_verify,
    rememberable=False,
))
