"""The federation's pages: the one callback of every upstream round trip, our
``private_key_jwt`` keys, and linking on My details.

Rules:
- ``/upstreams/callback`` checks the answer (``roundtrip.finish``) and hands
  it to the view registered for the round trip's purpose; a failure is
  audited with its reason and answered with a translated page (400; 503 when
  the upstream does not answer), never a 500;
- linking from My details needs a signed-in session, and the answer counts
  only while the same account is still signed in in this browser;
- a company identity linked to another account is not moved; a national
  identity number linked to another account is not moved either: the page
  says which account has it (masked), how to unlink it there, and that
  account's owner is emailed;
- unlinking either needs the password entered within
  ``RECENT_PASSWORD_SECONDS`` ("Enter your password to continue"), and is
  audited and emailed.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, redirect, render_template, request, session
from flask_babel import gettext as _

from .. import audit
from ..browser.sso import current_session
from ..context import current_idp
from ..factors.views import gate
from ..storage import db
from . import linking, national_id, roundtrip, upstreams

log = logging.getLogger("visma_idp.federation")

bp = Blueprint("federation", __name__)

LINKED_PATH = "/account/linked"
DONE_KEY = "linked_done"


def _say(message: str, *, error: bool = False) -> None:
    session[DONE_KEY] = {"text": str(message)[:400], "error": error}


def _to_linked():
    """Back to the "Linked sign-ins" part of My details."""
    return redirect(current_idp().url("account.details") + "#linked")


def _error_page(title: str, message: str, status: int, back: str | None = None):
    return render_template("federation/error.html", title=title, message=message,
                           back=back or current_idp().url("login.email")), status


@bp.get("/upstreams/callback")
def callback():
    try:
        result = roundtrip.finish()
    except roundtrip.RoundTripFailed as exc:
        name = exc.upstream.name if exc.upstream is not None else None
        log.warning("upstream %s: round trip failed: %s", name, exc.reason)
        audit.record("upstream_failed", outcome="failure", details={"upstream": name, "reason": exc.reason,
                                                                    "purpose": exc.purpose})
        db.session.commit()
        back = current_idp().url("account.details") if exc.purpose in (roundtrip.LINK, roundtrip.NATIONAL_LINK) \
            else current_idp().url("login.email", tx=exc.extra.get("tx"))
        label = exc.upstream.label if exc.upstream is not None else _("the other service")
        if exc.unavailable:
            return _error_page(_("%(upstream)s does not answer", upstream=label),
                               _("We cannot reach %(upstream)s right now. Try again in a few minutes.",
                                 upstream=label), 503, back)
        if exc.cancelled:
            return _error_page(_("You did not finish signing in at %(upstream)s", upstream=label),
                               _("Nothing was changed. Try again, or choose another way to sign in."), 400, back)
        if exc.untrusted:
            return _error_page(_("We could not confirm who you are at %(upstream)s", upstream=label),
                               _("The answer from %(upstream)s did not pass our checks, so nothing was changed. Try "
                                 "again; if it happens again, tell your administrator.", upstream=label), 400, back)
        return _error_page(_("This sign-in has expired or was started in another browser"),
                           _("Nothing was changed. Start again from the page you came from, in this browser."),
                           400, back)
    return roundtrip.handler(result.purpose)(result)


@bp.get("/upstreams/jwks.json")
def jwks():
    resp = jsonify(upstreams.public_jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


# -- My details ------------------------------------------------------------------------


def linked_context() -> dict:
    """Template values of the "Linked sign-ins" section of My details."""
    sess = current_session()
    if sess is None:
        return {}
    companies, national = upstreams.buttons()
    mine = national_id.of_user(sess.user_id)
    upstreams.allow_forms_to([(u.metadata_doc or {}).get("authorization_endpoint")
                              for u in [*companies, *national]])  # the link buttons end there
    return {"linked": {
        "identities": upstreams.identities_of(sess.user_id),
        "companies": [u for u in companies if u.link_by_proof],
        "national_upstreams": national,
        "national": mine,
        "national_masked": national_id.mask(mine.number) if mine is not None else None,
        "done": session.pop(DONE_KEY, None),
    }}


def _signed_in():
    sess = current_session()
    return (sess.user, sess) if sess is not None else (None, None)


@bp.post(LINKED_PATH + "/<name>/start")
def link_start(name: str):
    user, sess = _signed_in()
    if user is None:
        return redirect(current_idp().url("login.email"))
    row = upstreams.by_name(name)
    if row is None or not row.enabled or (not row.national and not row.link_by_proof):
        return _error_page(_("This way to sign in is not available"), _("Go back to My details."), 404,
                           current_idp().url("account.details"))
    purpose = roundtrip.NATIONAL_LINK if row.national else roundtrip.LINK
    try:
        return roundtrip.start(row, purpose, user_id=user.id)
    except upstreams.UpstreamUnavailable as exc:
        log.warning("upstream %s: %s", row.name, exc.reason)
        return _error_page(_("%(upstream)s does not answer", upstream=row.label),
                           _("We cannot reach %(upstream)s right now. Try again in a few minutes.",
                             upstream=row.label), 503, current_idp().url("account.details"))


def _same_account(result: roundtrip.Result):
    """The signed-in user when it is still the one who started the link, else None."""
    user, _sess = _signed_in()
    if user is None or user.id != result.extra.get("user_id"):
        audit.record("upstream_link_refused", outcome="failure", user_id=user.id if user else None,
                     details={"upstream": result.upstream.name, "reason": "signed out or another account"})
        db.session.commit()
        return None
    return user


def _account_changed_page():
    return _error_page(_("You are no longer signed in to the same account"),
                       _("Nothing was linked. Sign in again and start from My details."), 400,
                       current_idp().url("account.details"))


def _nothing_linked(user, row, event: str, reason: str, message: str):
    """The upstream's answer cannot be linked: audited as ``event``, told on My details."""
    audit.record(event, outcome="failure", user_id=user.id, details={"upstream": row.name, "reason": reason})
    db.session.commit()
    _say(message, error=True)
    return _to_linked()


def on_link(result: roundtrip.Result):
    user = _same_account(result)
    if user is None:
        return _account_changed_page()
    row = result.upstream
    try:
        ident = linking.identity(row, result.claims)
    except linking.IdentityRefused as exc:
        return _nothing_linked(user, row, "upstream_link_refused", exc.reason,
                               _("%(upstream)s did not tell us who you are, so nothing was linked.", upstream=row.label))
    entry = linking.link(user, row, ident)
    db.session.commit()
    if entry is None:
        _say(_("That %(upstream)s sign-in is linked to another account, so it was not linked to this one.",
               upstream=row.label), error=True)
    else:
        _say(_("Your %(upstream)s sign-in (%(label)s) is linked to this account.", upstream=row.label,
               label=entry.label))
    return _to_linked()


def on_national_link(result: roundtrip.Result):
    user = _same_account(result)
    if user is None:
        return _account_changed_page()
    row = result.upstream
    try:
        found = national_id.proof(row, result.claims)
    except national_id.NumberRefused as exc:
        return _nothing_linked(user, row, "national_id_link_refused", exc.reason, _(
            "%(upstream)s did not give us a national identity number we can use, so nothing was linked.",
            upstream=row.label))
    outcome = national_id.link(user, row, found)
    db.session.commit()
    if outcome.status == "other":
        return render_template("federation/national_id_taken.html", masked=outcome.masked,
                               other_email=outcome.other_email, upstream=row, user=user), 409
    if outcome.status == "has_other":
        _say(_("This account has another national identity number linked (%(number)s). Unlink it first.",
               number=outcome.masked), error=True)
    elif outcome.status == "already":
        _say(_("Your national identity number %(number)s was linked to this account already.",
               number=outcome.masked))
    else:
        _say(_("Your national identity number %(number)s is linked to this account. You can now sign in with "
               "%(upstream)s.", number=outcome.masked, upstream=row.label))
    return _to_linked()


@bp.route(LINKED_PATH + "/<int:identity_id>/unlink", methods=["GET", "POST"])
def unlink(identity_id: int):
    user, sess, back = gate(f"{LINKED_PATH}/{identity_id}/unlink")
    if sess is None:  # a sign-in that must set up a factor first may not unlink anything
        return redirect(current_idp().url("login.email"))
    if back is not None:
        return back
    entry = next((e for e in upstreams.identities_of(user.id) if e.id == identity_id), None)
    if entry is None:
        _say(_("That sign-in is not linked to your account."), error=True)
        return _to_linked()
    if request.method == "GET":
        return render_template("federation/unlink.html", what=entry.upstream.label, detail=entry.label,
                               action=current_idp().url("federation.unlink", identity_id=identity_id))
    label = entry.upstream.label
    linking.unlink(user, identity_id)
    db.session.commit()
    _say(_("Your %(upstream)s sign-in is no longer linked to this account.", upstream=label))
    return _to_linked()


@bp.route(LINKED_PATH + "/national-id/unlink", methods=["GET", "POST"])
def unlink_national():
    user, sess, back = gate(f"{LINKED_PATH}/national-id/unlink")
    if sess is None:  # a sign-in that must set up a factor first may not unlink anything
        return redirect(current_idp().url("login.email"))
    if back is not None:
        return back
    mine = national_id.of_user(user.id)
    if mine is None:
        _say(_("No national identity number is linked to your account."), error=True)
        return _to_linked()
    if request.method == "GET":
        return render_template("federation/unlink.html", what=_("your national identity number"),
                               detail=national_id.mask(mine.number),
                               action=current_idp().url("federation.unlink_national"))
    national_id.unlink(user)
    db.session.commit()
    _say(_("Your national identity number is no longer linked to this account."))
    return _to_linked()
