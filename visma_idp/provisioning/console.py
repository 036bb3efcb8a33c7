"""The agreement admins' page of provisioning conflicts (blueprint ``provisioning_console``).

- ``GET /agreements/<public_id>/conflicts``: the open conflicts, oldest
  first: whose detail, the value kept and its source, the value not applied
  and its source, first and last seen (in the admin's time zone); per
  conflict one button per source the admin may choose.
- ``POST /agreements/<public_id>/conflicts/<conflict_id>``: settle one with
  ``source`` (``sources.resolve``): that source owns the attribute from now
  on and its value is applied. An email address is never swapped here: the
  person confirms the chosen address from its mailbox first (``sources.resolve``).

Rules: the same admins as the members page (``agreements/console.as_admin``:
not signed in, the sign-in page; everyone else the same 404, and a conflict
of another agreement or an unknown id too; an agreement that requires a
second factor, 403 below that level); every form carries the CSRF token;
after a post the page is shown again (303) with a one-time confirmation kept
in the signed session; a refused choice (not one of the two sources, or one
a configured authority overrules: ``sources.configured_owner``) changes
nothing and shows the page with 400 and the translated reason next to the
conflict. The members page links here while there are open conflicts
(:func:`members_page_links`, registered by ``provisioning.init_app``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from ..account import activity
from ..agreements.console import PageLink, as_admin, csrf_error, not_found
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Agreement, ProvisioningClient, ProvisioningConflict, SsoSession, db
from . import sources

bp = Blueprint("provisioning_console", __name__)

DONE_KEY = "provisioning_console_done"  # the confirmation of the last post, for the next view of the page

ATTRIBUTE_LABELS = {
    "email": _l("Email address"),
    "name": _l("Display name"),
    "given_name": _l("Given name"),
    "family_name": _l("Family name"),
    "phone_number": _l("Phone number"),
    "locale": _l("Language"),
}


def attribute_label(name: str) -> str:
    return str(ATTRIBUTE_LABELS[name]) if name in ATTRIBUTE_LABELS else name


def source_label(source: str) -> str:
    """How the page names a source: the provisioning client's name, or the person themself."""
    if source == sources.SELF:
        return _("the person (My details)")
    return sources.client_name(source) or source


def _url(agreement: Agreement) -> str:
    return current_idp().url("provisioning_console.conflicts", public_id=agreement.public_id)


# -- the members page's link ---------------------------------------------------------------


def members_page_links(agreement: Agreement) -> list[PageLink]:
    """The link to this page, with the number of open conflicts (none while there are none)."""
    count = len(sources.open_conflicts(agreement))
    if not count:
        return []
    return [PageLink(ngettext("%(num)d provisioning conflict to resolve", "%(num)d provisioning conflicts to resolve",
                              count), _url(agreement))]


# -- the page ------------------------------------------------------------------------------


def _refusal(row: ProvisioningConflict, chosen: str, configured: ProvisioningClient | None) -> str | None:
    """Why ``chosen`` may not settle ``row`` (translated), or None when it may
    (``configured``: the attribute's configured authority, ``sources.configured_owner``)."""
    if chosen not in (row.current_source, row.other_source):
        return _("Choose one of the two values.")
    if configured is not None and configured.source != chosen:
        return _("%(client)s is set up as the authority for this detail, so its value is always kept. "
                 "Ask a system administrator if that should change.", client=configured.name)
    return None


def _done_message(kept: Any, agreement: Agreement) -> str | None:
    if not isinstance(kept, dict) or kept.get("agreement") != agreement.public_id:
        return None
    key, person = kept.get("key"), str(kept.get("person", ""))
    if key == "resolved":
        return _("%(attribute)s of %(person)s now comes from %(source)s.",
                 attribute=attribute_label(str(kept.get("attribute", ""))), person=person,
                 source=source_label(str(kept.get("source", ""))))
    if key == "email":
        return _("The email address of %(person)s now comes from %(source)s. It changes when the person confirms "
                 "%(email)s with the link we sent there.", person=person,
                 source=source_label(str(kept.get("source", ""))), email=str(kept.get("email", "")))
    if key == "already":
        return _("This conflict was resolved already.")
    return None


def _page(sess: SsoSession, agreement: Agreement, *, status: int = 200,
          refused: tuple[int, str] | None = None) -> tuple[str, int]:
    zone = activity.user_zone(sess.user)
    done = _done_message(session.pop(DONE_KEY, None), agreement) if status == 200 else None
    rows = []
    for row in sources.open_conflicts(agreement):
        configured = sources.configured_owner(row.user_id, row.attribute)
        choices = [source for source in (row.current_source, row.other_source)
                   if _refusal(row, source, configured) is None]
        rows.append({
            "id": row.id, "person": row.user.email, "name": row.user.name, "attribute": attribute_label(row.attribute),
            "current_value": row.current_value or "", "current_label": source_label(row.current_source),
            "other_value": row.other_value or "", "other_label": source_label(row.other_source),
            "keep": row.current_source if row.current_source in choices else None,
            "use": row.other_source if row.other_source in choices else None,
            "authority": configured.name if configured is not None else None,
            "first_seen": activity.format_time(row.first_seen, zone), "first_iso": activity.iso_time(row.first_seen),
            "last_seen": activity.format_time(row.last_seen, zone), "last_iso": activity.iso_time(row.last_seen),
            "error": refused[1] if refused is not None and refused[0] == row.id else None,
        })
    # a refusal about a conflict no longer listed (settled meanwhile) is shown at the top
    error = refused[1] if refused is not None and not any(r["error"] for r in rows) else None
    return render_template("provisioning/conflicts.html", user=sess.user, agreement=agreement, conflicts=rows,
                           done=done, error=error, zone=activity.zone_name(zone)), status


@bp.get("/agreements/<public_id>/conflicts")
@as_admin
def conflicts(sess: SsoSession, agreement: Agreement) -> tuple[str, int]:
    return _page(sess, agreement)


def _done(agreement: Agreement, key: str, **values: str) -> Response:
    """PRG: remember the confirmation for the next view of the page, go back to it."""
    session[DONE_KEY] = {"key": key, "agreement": agreement.public_id, **values}
    return redirect(_url(agreement), 303)


@bp.post("/agreements/<public_id>/conflicts/<int:conflict_id>")
@as_admin
def resolve(sess: SsoSession, agreement: Agreement, conflict_id: int) -> tuple[str, int] | Response:
    row = sources.conflict_of(agreement, conflict_id)
    if row is None:
        return not_found()
    if row.resolved_at is not None:  # another admin was first, or the form was sent twice
        return _done(agreement, "already")
    chosen = str(request.form.get("source", ""))[:64]
    refusal = _refusal(row, chosen, sources.configured_owner(row.user_id, row.attribute))
    if refusal is not None:
        db.session.rollback()
        return _page(sess, agreement, status=400, refused=(row.id, refusal))
    person, attribute = row.user.email, row.attribute
    value = row.other_value if chosen == row.other_source else row.current_value
    try:
        sources.resolve(row, chosen, by=sess.user)
    except InvalidInput:  # settled meanwhile, or a configuration changed meanwhile
        db.session.rollback()
        return _page(sess, agreement, status=400, refused=(conflict_id, _(
            "This conflict could not be resolved. Reload the page and try again.")))
    db.session.commit()
    if attribute == "email" and value and row.user.email != value:  # the person confirms it first
        return _done(agreement, "email", person=person, source=chosen, email=value)
    return _done(agreement, "resolved", person=person, attribute=attribute, source=chosen)


bp.register_error_handler(CSRFError, csrf_error)
