"""One-time codes from an agreement's members page (blueprint ``agreement_codes``).

``POST /agreements/<public_id>/members/<sub>/one-time-code``: an admin of the
agreement who also holds ``issue_one_time_codes`` for the member's email
domain issues a code for that member (``one_time_codes.issue``), and the
answer shows it once.

The page and its admin check are ``agreements/console.py``'s; this module
lives in admin/ because admin/ uses agreements/ (its API and console manage
them) and never the other way (``tests/test_layers.py``). At start-up it
tells the members page whom to offer the button for
(``console.offer_one_time_codes``).

Rules:
- who: the agreement's admin, as every post of the members page
  (``console.as_admin``): not signed in, the sign-in; anyone else, another
  agreement's admin included, the same 404 as the page's, and the member is
  looked up *within* the agreement of the URL (``service.member_by_sub``), so
  another agreement's member is 404 too, even in a domain the admin holds.
  A 404 changes nothing, not even an audit row;
- then the right (``one_time_codes.check``): no ``issue_one_time_codes`` for
  the member's domain, or the admin's own account, is 403 with the
  translated reason; an account that cannot sign in is 409; each refusal is
  audited in the agreement's log (``one_time_code_refused``);
- like ``/admin/one-time-codes``, issuing needs the admin's password entered
  within ``RECENT_PASSWORD_SECONDS``: otherwise the password page, which
  comes back to the members page (press the button again);
- the code is shown once, in the answer to the POST (``Cache-Control:
  no-store``); never in the session, a URL or a log. The audit row
  (``one_time_code_issued``) names the agreement and the admin (``by``); the
  member is emailed (``one_time_codes.issue``);
- the button is offered for a member other than the admin, whose account is
  active and whose email domain the admin holds the right for (the rule of
  ``rights.may_issue``, with the admin's domains read once for the page);
- the form carries the CSRF token; the pages have no script (CSP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, make_response, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from ..account import activity
from ..agreements import console, service
from ..context import current_idp
from ..storage import Agreement, SsoSession, User, db
from . import one_time_codes, rights
from .one_time_codes import IssueRefused

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider

bp = Blueprint("agreement_codes", __name__)
VIA = "agreement_console"  # the audit rows' "via"


def offered(admin: User, members: list[User]) -> set[int]:
    """The ids of the ``members`` ``admin`` may issue a one-time code for: not
    themselves, an active account, in a domain the admin holds the right for
    (``rights.may_issue``'s rule; the admin's domains are read once)."""
    held = set(rights.domains(admin, rights.ISSUE_ONE_TIME_CODES))
    if not held:
        return set()
    return {m.id for m in members if m.id != admin.id and m.status == "active" and rights.domain_of(m.email) in held}


@bp.post("/agreements/<public_id>/members/<sub>/one-time-code")
@console.as_admin
def issue(sess: SsoSession, agreement: Agreement, sub: str) -> console.Page:
    from ..factors.views import require_recent_password

    found = service.member_by_sub(agreement, sub)
    if found is None:
        return console.not_found()
    admin, member = sess.user, found[0]
    idp = current_idp()
    try:
        one_time_codes.check(admin, member, via=VIA, agreement=agreement.public_id)
    except IssueRefused as exc:
        db.session.commit()  # the refusal's audit row
        return render_template("error.html", title=_("No one-time code was made"), message=exc.message), exc.status
    members_page = idp.url("agreement_console.members", public_id=agreement.public_id)
    confirm = require_recent_password(sess, members_page.removeprefix(idp.issuer_origin + idp.issuer_path))
    if confirm is not None:
        confirm.status_code = 303
        return confirm
    try:
        issued = one_time_codes.issue(admin, member, via=VIA, agreement=agreement.public_id)
    except IssueRefused as exc:  # checked just above, in this transaction: not expected
        db.session.commit()
        return render_template("error.html", title=_("No one-time code was made"), message=exc.message), exc.status
    db.session.commit()
    zone = activity.user_zone(admin)
    shown = {"code": issued.code, "email": member.email, "until": activity.format_time(issued.expires_at, zone),
             "zone": activity.zone_name(zone)}
    answer = make_response(render_template("agreements/one_time_code.html", user=admin, agreement=agreement,
                                           issued=shown))
    answer.headers["Cache-Control"] = "no-store"  # the code is in this answer only
    return answer


bp.register_error_handler(CSRFError, console.csrf_error)


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the post, offer the button on the members page, and let
    system admins (at the console's level) manage every agreement's pages."""
    idp.register_blueprints(app, bp)
    console.offer_one_time_codes(offered)
    from .console import system_admin_at_level

    console.manage_every_agreement("system_admins", system_admin_at_level)
