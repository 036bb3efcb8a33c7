"""The agreement admins' page of provisioning conflicts (blueprint ``provisioning_console``).

- ``GET /agreements/<public_id>/conflicts``: the open conflicts: whose
  attribute, the value kept and its source, the value refused and its source,
  first and last seen; per conflict one button per source.
- ``POST /agreements/<public_id>/conflicts/<conflict_id>``: settle one with
  ``source`` (``sources.resolve``): that source owns the attribute from now
  on and its value is applied.

Rules: the same admins as the members page (``agreements/console.as_admin``:
everyone else gets the same 404, a conflict of another agreement too); every
form carries the CSRF token; after a post the page is shown again (303); a
refused choice shows the page with 400 and the reason.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ..account import activity
from ..agreements.console import as_admin, not_found
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Agreement, SsoSession
from . import sources

bp = Blueprint("provisioning_console", __name__)

DONE_KEY = "provisioning_console_done"

ATTRIBUTE_LABELS = {
    "email": _l("Email address"),
    "name": _l("Display name"),
    "given_name": _l("First name"),
    "family_name": _l("Last name"),
    "phone_number": _l("Mobile number"),
    "locale": _l("Language"),
}


def attribute_label(name: str) -> str:
    return str(ATTRIBUTE_LABELS[name]) if name in ATTRIBUTE_LABELS else name


def _source_label(source: str) -> str:
    if source == sources.SELF:
        return _("The person (My details)")
    return sources.client_name(source) or source


def _page(sess: SsoSession, agreement: Agreement, *, status: int = 200, error: str | None = None
          ) -> tuple[str, int]:
    zone = activity.user_zone(sess.user)
    kept = session.pop(DONE_KEY, None) if status == 200 else None
    rows = [{
        "id": row.id, "person": row.user.email, "attribute": attribute_label(row.attribute),
        "current_value": row.current_value or "", "current_source": row.current_source,
        "current_label": _source_label(row.current_source), "other_value": row.other_value or "",
        "other_source": row.other_source, "other_label": _source_label(row.other_source),
        "first_seen": activity.format_time(row.first_seen, zone), "last_seen": activity.format_time(row.last_seen, zone),
    } for row in sources.open_conflicts(agreement)]
    done = _("The conflict is resolved.") if kept == agreement.public_id else None
    return render_template("provisioning/conflicts.html", agreement=agreement, conflicts=rows, done=done,
                           error=error, zone=activity.zone_name(zone)), status


@bp.get("/agreements/<public_id>/conflicts")
@as_admin
def conflicts(sess: SsoSession, agreement: Agreement) -> tuple[str, int]:
    return _page(sess, agreement)


@bp.post("/agreements/<public_id>/conflicts/<int:conflict_id>")
@as_admin
def resolve(sess: SsoSession, agreement: Agreement, conflict_id: int) -> tuple[str, int] | Response:
    from ..storage import db

    row = sources.conflict_of(agreement, conflict_id)
    if row is None:
        return not_found()
    try:
        sources.resolve(row, str(request.form.get("source", "")), by=sess.user)
    except InvalidInput as exc:
        db.session.rollback()
        return _page(sess, agreement, status=400, error=str(exc))
    db.session.commit()
    session[DONE_KEY] = agreement.public_id
    return redirect(current_idp().url("provisioning_console.conflicts", public_id=agreement.public_id), 303)
