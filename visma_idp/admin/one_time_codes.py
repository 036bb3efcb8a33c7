"""Issuing admin one-time codes: who may give a user who lost their second
factor a way back in, and what issuing does.

An admin holding the right ``issue_one_time_codes`` for the user's email
domain (``rights.py``) creates a code on the admin page (``views.py``),
through the admin API (``api.py``), on an agreement's members page for one of
its members (``agreement_codes.py``) or with ``visma-idp users one-time-code``
(``cli.py``). The code itself, and signing in with it, are
``factors/admin_codes.py``'s.

Rules:
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
- a new code voids the user's older live ones (``factors/admin_codes.py``
  stores it); it is shown once, to whoever issued it, and never mailed;
- every issue (``one_time_code_issued``) and refusal (``one_time_code_refused``
  with the reason) is audited; the user is emailed when a code is issued. A
  code issued for a member of an agreement (``agreement``: its public id) is
  in that agreement's audit log: the rows name the agreement, and the admin
  in ``by``;
- issuing is an action on the account: it voids the user's pending links that
  would change the account, a pending email change among them
  (``account/sessions.py``), and the email says so when there was one;
- issuing lifts a lock of the user's second step (wrong codes lock it for
  15 minutes, then longer each time, up to a day: ``login/throttle.py``), so
  the code can be entered at once; the audit event says whether there was one
  (``second_step_unlocked``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from .. import audit
from ..account.sessions import void_pending_links
from ..addresses import AddressError, as_typed
from ..addresses import parse as parse_address
from ..context import current_idp
from ..errors import VismaIdpError
from ..factors import admin_codes, second_step_key
from ..notify import messages
from ..storage import User, queries
from . import rights

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


def _refuse(reason: str, admin: User | None, typed: str | None, via: str, target: User | None = None,
            address_error: AddressError | None = None, agreement: str | None = None):
    details: dict = {"reason": reason, "via": via}
    if target is not None:
        details["target_user_id"] = target.id
    if address_error is not None:
        details["address"] = address_error.reason
    if agreement is not None and admin is not None:
        details["by"] = admin.id
    audit.record("one_time_code_refused", outcome="failure", user_id=admin.id if admin else None,
                 subject=as_typed(typed), details=details, agreement=agreement)
    detail = address_error.message if address_error is not None and address_error.reason not in ("missing", "syntax") \
        else None
    return IssueRefused(reason, detail)


def check(admin: User | None, target: User, *, via: str, agreement: str | None = None) -> None:
    """Whether ``admin`` may issue a code for ``target`` now: returns when they
    may (``admin`` None is the operator), else audits the refusal (the caller
    commits it) and raises it.

    Raises:
        IssueRefused: the admin may not (no right, outside the domain, their
            own account) or the account cannot sign in.
    """
    if admin is not None:
        if not rights.holds(admin):
            raise _refuse("no_right", admin, target.email, via, agreement=agreement)
        if admin.id == target.id:
            raise _refuse("self", admin, target.email, via, target, agreement=agreement)
        if not rights.may_issue(admin, target):
            raise _refuse("outside_domain", admin, target.email, via, agreement=agreement)
    if target.status != "active":
        raise _refuse("not_active", admin, target.email, via, target, agreement=agreement)


def issue(admin: User | None, target: User, *, via: str = "cli", agreement: str | None = None) -> IssuedCode:
    """Issue a code for ``target``; ``admin`` None is the operator (CLI only);
    ``agreement``: the public id of the agreement whose member ``target`` is,
    when the code is issued from its console. Audits and queues the email to
    the user; the caller commits (also when this raises: the refusal is audited).

    Raises:
        IssueRefused: see :func:`check`.
    """
    check(admin, target, via=via, agreement=agreement)
    code, row = admin_codes.create(target, issued_by=admin)  # voids the older live codes
    # the helpdesk has checked who is calling: a lock of the second step (it grows up to a day) must not keep
    # the user from entering the code they are given
    idp = current_idp()
    unlocked = idp.throttle.clear(second_step_key(target.id), growing=True)
    audit.record("one_time_code_issued", user_id=target.id, subject=target.email, details={
        "admin_id": admin.id if admin else None, "admin_email": admin.email if admin else None,
        "operator": admin is None, "via": via, "code_id": row.id, "expires_at": row.expires_at,
        "second_step_unlocked": unlocked, **({"by": admin.id} if agreement is not None and admin else {}),
    }, agreement=agreement)
    # an admin's action on the account: a pending email change (maybe asked for by
    # whoever made the user call the helpdesk) and every other pending link die
    voided = void_pending_links(target.id, reason="one_time_code_issued", now=row.created_at)
    lifetime = idp.settings["ONE_TIME_CODE_LIFETIME"]
    messages.queue("one_time_code_issued", to=target.email, user=target, admin=admin,
                   minutes=max(1, lifetime // 60), email_change_cancelled=voided.email_change)
    return IssuedCode(code=code, expires_at=row.expires_at, target=target, row_id=row.id)


def issue_for_email(admin: User | None, email: str | None, *, via: str) -> IssuedCode:
    """Issue a code for the user with this email address, checking in the order
    described in the module docstring (nothing about an account is looked up
    before the admin is known to hold the right for its domain). The caller commits.

    Raises:
        IssueRefused: see :data:`REFUSALS`.
    """
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
