"""The agreement admins' console: the members page and the audit log (blueprint ``agreement_console``).

- ``GET /agreements/<public_id>/members``: the agreement's name and
  organisation number, its members (email, name, roles; a role for one app
  names the app's id), the pending invitations and the "Invite a colleague"
  form; per member a form to change roles and a "Remove" button, and "Issue
  a one-time code" for the members the admin may give one (below);
- ``GET /agreements/<public_id>/audit`` (``?before=<row id>``: older
  rows): the agreement's audit log, newest first, 50 rows a page with
  "Newer" and "Older": when (in the admin's time zone), what (a translated
  label; an event without one is "Other event", never its raw name), whom it
  was about, who did it (the email of ``by``; read for the whole page in one
  statement) and the outcome. Only rows naming *this* agreement are read
  (``service.audit_log``); details are never shown beyond the roles of a
  change or an invitation (no row holds a secret);
- ``POST /agreements/<public_id>/invitations``: invite an address
  (``invitations.invite``);
- ``POST /agreements/<public_id>/invitations/<invitation_id>/revoke``:
  revoke a pending invitation (``invitations.revoke``);
- ``POST /agreements/<public_id>/members/<sub>/roles``: replace a member's
  agreement-wide roles, or their roles in one app (``service.set_roles``);
- ``POST /agreements/<public_id>/members/<sub>/remove``: end a membership
  (``service.remove_member``).

A one-time code for a member is issued by ``admin/agreement_codes.py``
(``POST /agreements/<public_id>/members/<sub>/one-time-code``), which uses
:func:`as_admin` and :func:`not_found` of this module and tells it whom to
offer the button for (:func:`offer_one_time_codes`): admin/ uses agreements/,
never the other way (``tests/test_layers.py``).
Other packages' pages about the agreement are linked at the top of the
members page through :func:`link_pages` (``provisioning/`` registers its
conflicts page while there are open conflicts; it uses :func:`as_admin` too).

Rules:
- who: a signed-in member of the agreement with the agreement-wide role
  ``admin`` (``invitations.may_invite``), or a system admin whose session
  reached ``ADMIN_CONSOLE_ACR`` (``admin/`` registers that check:
  :func:`manage_every_agreement`). Not signed in: the sign-in page
  (after a GET it comes back here). Anyone else (no such role, an unknown or
  closed agreement, another agreement's admin) gets the same 404 page: an
  outsider never learns whether the agreement exists. A refused post changes
  nothing, not even an audit row;
- an agreement that requires a second factor (``require_acr``) is managed
  only from a session at that level: below it, a 403 page (the admin knows
  the agreement exists);
- a member or an invitation is looked up *within* the agreement of the URL
  (``service.member_by_sub``, ``service.invitation_of``): another agreement's
  member or invitation is the same 404;
- an admin cannot remove themselves or take away their own agreement-wide
  ``admin`` role (400: ask another admin), so an agreement never loses its
  last admin by accident;
- the changes are made and audited by ``service.py`` and ``invitations.py``
  (who made them: the inviter, the revoker, ``by`` of a change of roles);
  after a post the page is shown again (303) with a one-time confirmation
  kept in the signed session, never taken from the URL; a refused post shows
  the page again with 400 and the translated message next to its form;
- every form carries the CSRF token; the page has no script (CSP).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from .. import addresses
from ..account import activity
from ..assurance import at_least
from ..browser import signin
from ..browser.sso import current_session
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Agreement, AuditEvent, SsoSession, User, db, queries
from . import invitations, service

bp = Blueprint("agreement_console", __name__)

DONE_KEY = "agreement_console_done"  # the confirmation of the last post, for the next view of the page
MAX_ROLES_TEXT = 1000  # characters of a roles field
MAX_ROLES = 50  # roles in one field
_SEPARATORS = re.compile(r"[\s,;]+")

Page = tuple[str, int] | Response

# the events of an agreement's audit log, as its admins read them
EVENT_LABELS = {
    "agreement_created": _l("Company created"),
    "agreement_member_added": _l("Member added"),
    "agreement_member_removed": _l("Member removed"),
    "agreement_roles_changed": _l("Roles changed"),
    "agreement_invitation_sent": _l("Invitation sent"),
    "agreement_invitation_revoked": _l("Invitation revoked"),
    "agreement_invitation_accepted": _l("Invitation accepted"),
    "user_created": _l("Account created from an invitation"),
    "account_activated": _l("Account activated from an invitation"),
    "one_time_code_issued": _l("One-time code issued"),
    "one_time_code_refused": _l("One-time code refused"),
    "agreement_updated": _l("Company settings changed"),
    "agreement_closed": _l("Company closed"),
    "agreement_reopened": _l("Company reopened"),
    # provisioning (provisioning/): the payroll and HR systems that push the agreement's people
    "provisioning_client_created": _l("Provisioning client added"),
    "provisioning_token_rotated": _l("Provisioning client's token replaced"),
    "provisioning_authority_changed": _l("Provisioning client's authority changed"),
    "provisioning_client_removed": _l("Provisioning client removed"),
    "scim_created": _l("Provisioning: record added"),
    "scim_updated": _l("Provisioning: record updated"),
    "scim_deleted": _l("Provisioning: record deleted"),
    "provisioning_linked": _l("Provisioning: record linked to an account"),
    "provisioning_user_created": _l("Provisioning: account created"),
    "provisioning_invited": _l("Provisioning: invitation sent"),
    "provisioning_deactivated": _l("Provisioning: member removed"),
    "provisioning_email_taken": _l("Provisioning: email address in use by another account"),
    "provisioning_conflict": _l("Provisioning: conflicting value not applied"),
    "provisioning_conflict_resolved": _l("Provisioning conflict resolved"),
    "user_disabled": _l("Account disabled"),
    "user_enabled": _l("Account enabled again"),
}
_OTHER_EVENT = _l("Other event")


class Admin(NamedTuple):
    """The signed-in admin's session and the agreement of the URL."""

    sess: SsoSession
    agreement: Agreement


class Refused(Exception):
    """A post that cannot be done: ``form`` is the form the message belongs
    to, ``field`` the input it is about (or None), ``message`` translated."""

    def __init__(self, form: str, message: str, field: str | None = None):
        super().__init__(message)
        self.form, self.field, self.message = form, field, message


# -- who may use the page --------------------------------------------------------------


def not_found() -> tuple[str, int]:
    """The one page of everyone who may not manage the agreement (or of a target not in it)."""
    if request.method == "POST":
        db.session.rollback()  # nothing of a refused post stays
    return render_template("error.html", title=_("Page not found"),
                           message=_("There is no such page, or you cannot use it.")), 404


def _admin(public_id: str) -> Admin | Page:
    """The signed-in admin's session and the agreement, or the answer that refuses them."""
    idp = current_idp()
    sess = current_session()
    if sess is None:
        if request.method == "GET":  # the sign-in comes back here (when no app waits)
            state = signin.current()
            state.next = idp.url(request.endpoint or "agreement_console.members", **(request.view_args or {})
                                 ).removeprefix(idp.issuer_origin + idp.issuer_path)
        return redirect(idp.url("login.email"), 303 if request.method == "POST" else 302)
    agreement = service.find(public_id) if isinstance(public_id, str) and len(public_id) <= 36 else None
    if agreement is None or agreement.public_id != public_id or not may_manage(sess, agreement):
        return not_found()
    if not at_least(sess.acr, agreement.require_acr):
        if request.method == "POST":
            db.session.rollback()
        return render_template("error.html", title=_("Two-step verification is required"), message=_(
            "%(agreement)s requires two-step verification. Sign out, and sign in again with your second step "
            "to manage its members.", agreement=agreement.name)), 403
    return Admin(sess, agreement)


_managers: dict[str, Callable[[SsoSession], bool]] = {}


def manage_every_agreement(name: str, check: Callable[[SsoSession], bool]) -> None:
    """Let the sessions ``check`` accepts manage every agreement's pages
    (``admin/`` registers its system admins at the console's level); by name,
    so registering again replaces."""
    _managers[name] = check


def may_manage(sess: SsoSession, agreement: Agreement) -> bool:
    """Whether the session's user manages ``agreement`` here: its admin, or one a registered check accepts."""
    return invitations.may_invite(sess.user, agreement) or any(check(sess) for check in _managers.values())


def as_admin(view: Callable[..., Page]) -> Callable[..., Page]:
    """The view runs for the agreement's signed-in admin only (``sess`` and
    ``agreement`` as its first arguments); anyone else gets :func:`_admin`'s answer."""

    @functools.wraps(view)
    def wrapper(public_id: str, **kwargs: str) -> Page:
        found = _admin(public_id)
        if not isinstance(found, Admin):
            return found
        return view(found.sess, found.agreement, **kwargs)

    return wrapper


def _done(agreement: Agreement, key: str, anchor: str, **values: str) -> Response:
    """PRG: remember the confirmation for the next view of the page, go back to it."""
    session[DONE_KEY] = {"key": key, "agreement": agreement.public_id, **values}
    return redirect(current_idp().url("agreement_console.members", public_id=agreement.public_id) + "#" + anchor, 303)


def _done_message(kept: Any, agreement: Agreement) -> str | None:
    if not isinstance(kept, dict) or kept.get("agreement") != agreement.public_id:
        return None
    email, key = str(kept.get("email", "")), kept.get("key")
    if key == "invited":
        return _("We sent an invitation to %(email)s.", email=email)
    if key == "revoked":
        return _("The invitation of %(email)s is revoked: its link no longer works.", email=email)
    if key == "revoked_already":
        return _("The invitation of %(email)s was accepted or revoked already.", email=email)
    if key == "roles":
        return _("The roles of %(email)s are saved. We told them by email.", email=email)
    if key == "roles_same":
        return _("Nothing to save: the roles of %(email)s are as they were.", email=email)
    if key == "removed":
        return _("%(email)s is no longer a member of %(agreement)s.", email=email, agreement=agreement.name)
    return None


# -- the page ---------------------------------------------------------------------------


def role_label(role: dict[str, Any]) -> str:
    """``approver``, or ``approver (expense)`` for a role in one app (its client id)."""
    return role["role"] if role.get("client") is None else f"{role['role']} ({role['client']})"


def _sorted_roles(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The roles of every app first, then each app's, by name."""
    return sorted(roles or [], key=lambda r: (r.get("client") is not None, r.get("client") or "", r["role"]))


def _scopes(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The member's role forms: every app (always), then each app they have roles in."""
    apps = sorted({r["client"] for r in roles or [] if r.get("client") is not None})
    return [{"client": client, "text": ", ".join(sorted(r["role"] for r in roles or [] if r.get("client") == client))}
            for client in [None, *apps]]


# -- what admin/ adds to the page ----------------------------------------------------------

CodeOffers = Callable[[User, list[User]], set[int]]
_offers: dict[str, CodeOffers] = {}


def offer_one_time_codes(offered: CodeOffers) -> None:
    """Show "Issue a one-time code" on the members page for the members
    ``offered(admin, members)`` names (their user ids); its form posts to
    ``agreement_codes.issue``. ``admin/agreement_codes.py`` registers this at
    start-up; without it the page offers no codes."""
    _offers["codes"] = offered


def _code_offers(user: User, members: list[User]) -> set[int]:
    offered = _offers.get("codes")
    return offered(user, members) if offered is not None and members else set()


class PageLink(NamedTuple):
    """A link at the top of the members page: its (translated) text and URL."""

    text: str
    url: str


PageLinks = Callable[[Agreement], list[PageLink]]
_links: dict[str, PageLinks] = {}


def link_pages(name: str, links: PageLinks) -> None:
    """Show ``links(agreement)`` at the top of the members page: another
    package's pages about the agreement, for its admins (``provisioning/``
    registers its conflicts page, shown while there are open conflicts). By
    name, so registering again replaces."""
    _links[name] = links


def _page_links(agreement: Agreement) -> list[PageLink]:
    return [link for links in _links.values() for link in links(agreement)]


def _page(sess: SsoSession, agreement: Agreement, *, status: int = 200, refused: Refused | None = None,
          values: dict[str, str] | None = None) -> tuple[str, int]:
    user = sess.user
    zone = activity.user_zone(user)
    done = _done_message(session.pop(DONE_KEY, None), agreement) if status == 200 else None
    member_rows, invitation_rows = service.members(agreement), service.pending_invitations(agreement)
    codes = _code_offers(user, [member for member, _row in member_rows])
    members = [
        {"sub": member.sub, "email": member.email, "name": member.name, "is_self": member.id == user.id,
         "roles": [role_label(r) for r in _sorted_roles(row.roles)], "scopes": _scopes(row.roles),
         "code": member.id in codes and member.id != user.id}
        for member, row in member_rows
    ]
    pending = [
        {"id": row.id, "email": row.email, "roles": [role_label(r) for r in _sorted_roles(row.roles)],
         "expires": activity.format_time(row.expires_at, zone), "expires_iso": activity.iso_time(row.expires_at)}
        for row in invitation_rows
    ]
    in_use = [r for _m, row in member_rows for r in row.roles or []]
    in_use += [r for row in invitation_rows for r in row.roles or []]
    return render_template(
        "agreements/console.html", user=user, agreement=agreement, members=members, invitations=pending,
        roles_in_use=sorted({r["role"] for r in in_use}),
        apps_in_use=sorted({r["client"] for r in in_use if r.get("client")}),
        refused=refused, values=values or {}, done=done, zone=activity.zone_name(zone),
        days=invitations.LIFETIME // 86400, page_links=_page_links(agreement),
    ), status


@bp.get("/agreements/<public_id>/members")
@as_admin
def members(sess: SsoSession, agreement: Agreement) -> Page:
    return _page(sess, agreement)


# -- the audit log ---------------------------------------------------------------------------


def event_label(event: str) -> str:
    """The translated label of an event of the audit log ("Other event" for one without a label)."""
    return str(EVENT_LABELS.get(event, _OTHER_EVENT))


def _row_id(value: str | None) -> int | None:
    """A row id from the URL (None: none, or not a number)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _roles_of(row: AuditEvent) -> str | None:
    """The roles a change of roles left, or an invitation offered (names of roles and apps only)."""
    if row.event not in ("agreement_roles_changed", "agreement_invitation_sent") or not isinstance(row.details, dict):
        return None
    roles = row.details.get("roles")
    if not isinstance(roles, list):
        return None
    labels = [role_label(r) for r in _sorted_roles([r for r in roles if isinstance(r, dict) and "role" in r])]
    return ", ".join(labels) if labels else _("No roles")


def _who(row: AuditEvent, actors: dict[int, str]) -> str | None:
    """Who did it: the email of ``by`` (None: the row names nobody, as the operator's commands)."""
    by = row.details.get("by") if isinstance(row.details, dict) else None
    if not isinstance(by, int):
        return None
    return actors.get(by) or _("An account that no longer exists")


@bp.get("/agreements/<public_id>/audit")
@as_admin
def audit_log(sess: SsoSession, agreement: Agreement) -> Page:
    idp = current_idp()
    before = _row_id(request.args.get("before"))
    page = service.AUDIT_PAGE
    rows = service.audit_log(agreement, limit=page + 1, before=before)
    older = rows[page - 1].id if len(rows) > page else None
    rows = rows[:page]
    newer_url = None
    if before is not None:
        newer = service.audit_log_newer(agreement, before, limit=page)
        newer_url = idp.url("agreement_console.audit_log", public_id=agreement.public_id, before=newer)
    actors = service.audit_actors(rows)
    zone = activity.user_zone(sess.user)
    events = [
        {"label": event_label(row.event), "when": activity.format_time(row.at, zone), "iso": activity.iso_time(row.at),
         "subject": row.subject, "roles": _roles_of(row), "failed": row.outcome != "success",
         "by": _who(row, actors)}
        for row in rows
    ]
    return render_template(
        "agreements/audit.html", user=sess.user, agreement=agreement, events=events, zone=activity.zone_name(zone),
        newer_url=newer_url,
        older_url=idp.url("agreement_console.audit_log", public_id=agreement.public_id, before=older)
        if older is not None else None,
    ), 200


# -- reading a form ------------------------------------------------------------------------


def _roles(form: str) -> list[str]:
    """The role names typed in the form's ``roles`` field (separated by commas or spaces)."""
    text = request.form.get("roles") or ""
    if len(text) > MAX_ROLES_TEXT:
        raise Refused(form, _("Too many roles: at most %(count)d.", count=MAX_ROLES), "roles")
    names = list(dict.fromkeys(name for name in _SEPARATORS.split(text) if name))
    if len(names) > MAX_ROLES:
        raise Refused(form, _("Too many roles: at most %(count)d.", count=MAX_ROLES), "roles")
    try:
        service.check_roles(names, None)
    except InvalidInput:
        raise Refused(form, _("A role is a short word: letters, digits and _ - : . (at most 64 characters). "
                              "Separate roles with commas or spaces."), "roles") from None
    return names


def _client(form: str) -> str | None:
    """The app of the form's ``client`` field (None: every app of the agreement)."""
    client_id = (request.form.get("client") or "").strip()
    if not client_id:
        return None
    if queries.client_by_id(client_id) is None:
        raise Refused(form, _("There is no app with the id %(client)s.", client=client_id[:128]), "client")
    return client_id


def _refused(sess: SsoSession, agreement: Agreement, refused: Refused, values: dict[str, str]) -> Page:
    db.session.rollback()  # nothing of a refused post stays
    return _page(sess, agreement, status=400, refused=refused, values=values)


# -- the posts --------------------------------------------------------------------------------


@bp.post("/agreements/<public_id>/invitations")
@as_admin
def invite(sess: SsoSession, agreement: Agreement) -> Page:
    typed = {"email": (request.form.get("email") or "")[:addresses.MAX_TYPED],
             "roles": (request.form.get("roles") or "")[:MAX_ROLES_TEXT],
             "client": (request.form.get("client") or "").strip()[:128]}
    try:
        try:
            address = addresses.parse(request.form.get("email") or "").email
        except addresses.AddressError as exc:
            raise Refused("invite", exc.message, "email") from None
        roles = _roles("invite")
        client_id = _client("invite")
        if client_id is not None and not roles:
            raise Refused("invite", _("Give at least one role in the app."), "roles")
        try:
            invitations.invite(agreement, address, roles, invited_by=sess.user, client_id=client_id)
        except invitations.AlreadyMember:
            raise Refused("invite", _("%(email)s is a member of %(agreement)s already.", email=address,
                                      agreement=agreement.name), "email") from None
        except InvalidInput:
            raise Refused("invite", _("The invitation could not be sent. Check the address and the roles."),
                          "email") from None
    except Refused as refused:
        return _refused(sess, agreement, refused, typed)
    db.session.commit()
    return _done(agreement, "invited", "invitations", email=address)


@bp.post("/agreements/<public_id>/invitations/<invitation_id>/revoke")
@as_admin
def revoke(sess: SsoSession, agreement: Agreement, invitation_id: str) -> Page:
    known = invitation_id.isascii() and invitation_id.isdigit() and len(invitation_id) <= 18
    row = service.invitation_of(agreement, int(invitation_id)) if known else None
    if row is None:
        return not_found()
    done = invitations.revoke(row, sess.user)
    db.session.commit()
    return _done(agreement, "revoked" if done else "revoked_already", "invitations", email=row.email)


@bp.post("/agreements/<public_id>/members/<sub>/roles")
@as_admin
def set_roles(sess: SsoSession, agreement: Agreement, sub: str) -> Page:
    found = service.member_by_sub(agreement, sub)
    if found is None:
        return not_found()
    member, row = found
    new_app = request.form.get("form") == "new"
    typed_client = (request.form.get("client") or "").strip()[:128]
    shown = {r.get("client") or "" for r in row.roles or []} | {""}  # the forms the page shows for the member
    form = f"roles:{sub}:" + (typed_client if not new_app and typed_client in shown else "+")
    typed = {"roles": (request.form.get("roles") or "")[:MAX_ROLES_TEXT], "client": typed_client}
    try:
        roles = _roles(form)
        client_id = _client(form)
        if new_app and client_id is None:
            raise Refused(form, _("Enter the id of the app."), "client")
        if invitations.takes_own_admin_role(sess.user, member, roles, client_id):
            raise Refused(form, _("You cannot take away your own %(role)s role. Ask another admin of "
                                  "%(agreement)s to do it.", role=invitations.ADMIN_ROLE, agreement=agreement.name),
                          "roles")
        changed = service.set_roles(agreement, member, roles, client_id, by=sess.user)
    except Refused as refused:
        return _refused(sess, agreement, refused, typed)
    db.session.commit()
    return _done(agreement, "roles" if changed else "roles_same", "members", email=member.email)


@bp.post("/agreements/<public_id>/members/<sub>/remove")
@as_admin
def remove(sess: SsoSession, agreement: Agreement, sub: str) -> Page:
    found = service.member_by_sub(agreement, sub)
    if found is None:
        return not_found()
    member = found[0]
    if member.id == sess.user.id:
        return _refused(sess, agreement, Refused(f"remove:{sub}", _(
            "You cannot remove yourself from %(agreement)s. Ask another admin to do it.",
            agreement=agreement.name)), {})
    service.remove_member(agreement, member, by=sess.user)
    db.session.commit()
    return _done(agreement, "removed", "members", email=member.email)


@bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400


# -- My details: the agreements the signed-in user administers -------------------------------


def admin_of_context() -> dict[str, Any]:
    """Template values of My details: ``agreement_admin_of``, a link to the
    members page of each agreement where the signed-in user is an admin."""
    sess = current_session()
    if sess is None or sess.user.status != "active":
        return {}
    idp = current_idp()
    return {"agreement_admin_of": [
        {"name": row.agreement.name, "url": idp.url("agreement_console.members", public_id=row.agreement.public_id)}
        for row in sorted(service.memberships_of(sess.user_id), key=lambda m: m.agreement.name.lower())
        if any(r["role"] == invitations.ADMIN_ROLE and r.get("client") is None for r in row.roles or [])
    ]}
