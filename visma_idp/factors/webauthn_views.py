"""Security keys and passkeys: register, name, remove.

Rules:
- the pages under ``/account/security/webauthn`` need a signed-in user (or a
  pending sign-in that must enrol a factor) and, to add, rename or remove a
  key, the password entered within ``RECENT_PASSWORD_SECONDS``; the
  registration's second half is accepted when its challenge was issued
  while the password was recent (the challenge itself lives 5 minutes);
- registering is two pages: choose *security key* or *passkey* and a name,
  then the browser's dialog (``static/webauthn.js``), whose answer is posted
  to ``/account/security/webauthn/finish``;
- signing in with a passkey is a way in of the sign-in (``login/ways/passkey.py``);
- every failure is audited and answered with a translated message.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _

from .. import audit
from ..context import current_idp
from ..storage import db
from . import Verified
from . import webauthn as wa
from .enrolment import after_enrolment, after_removal
from .removal import RemovalRefused, ensure_removable
from .views import actor, password_is_recent, require_recent_password, say_done, to_sign_in

bp = Blueprint("webauthn", __name__)



def _overview(done: str | None = None):
    if done:
        say_done(done)
    return redirect(current_idp().url("factors.overview"))


@bp.app_template_global("webauthn_keys")
def webauthn_keys(user) -> list[dict]:
    """The user's keys for the overview page, with times for people."""
    from ..account.activity import format_time, iso_time, user_zone

    zone = user_zone(user)
    return [{
        "id": f.id, "name": f.name, "passkey": f.discoverable,
        "added": format_time(f.confirmed_at, zone), "added_iso": iso_time(f.confirmed_at),
        "used": format_time(f.last_used_at, zone), "used_iso": iso_time(f.last_used_at),
    } for f in wa.keys_of(user)]


# -- registration ----------------------------------------------------------------------


def _add_page(user, *, error: str | None = None, status: int = 200, kind: str = wa.SECURITY_KEY, name: str = ""):
    return render_template("webauthn_add.html", user=user, error=error, kind=kind, name=name,
                           full=wa.count_of(user) >= wa.MAX_CREDENTIALS, most=wa.MAX_CREDENTIALS), status


def _register_page(user, kind: str, name: str, *, error: str | None = None, status: int = 200):
    options = wa.registration_options(user, kind, name)
    db.session.commit()
    return render_template("webauthn_register.html", user=user, kind=kind, name=name, options=options,
                           error=error), status


@bp.get("/account/security/webauthn")
def add():
    user, sess = actor()
    if user is None:
        return to_sign_in()
    if (confirm := require_recent_password(sess, "/account/security/webauthn")) is not None:
        return confirm
    return _add_page(user)


@bp.post("/account/security/webauthn")
def start():
    user, sess = actor()
    if user is None:
        return to_sign_in()
    if (confirm := require_recent_password(sess, "/account/security/webauthn")) is not None:
        return confirm
    kind = request.form.get("kind")
    if kind not in (wa.SECURITY_KEY, wa.PASSKEY):
        return _add_page(user, error=_("Choose a security key or a passkey."), status=400)
    try:
        name = wa.clean_name(request.form.get("name"), kind)
    except wa.Refused as exc:
        return _add_page(user, error=exc.message, status=400, kind=kind, name=(request.form.get("name") or "")[:200])
    if wa.count_of(user) >= wa.MAX_CREDENTIALS:
        return _add_page(user, status=409, kind=kind, name=name, error=_(
            "You have %(count)d security keys and passkeys, the most we keep. Remove one first.",
            count=wa.MAX_CREDENTIALS))
    return _register_page(user, kind, name)


@bp.post("/account/security/webauthn/finish")
def finish():
    user, sess = actor()
    if user is None:
        return to_sign_in()
    try:
        registered = wa.finish_registration(user, request.form.get("credential"))
    except wa.Refused as exc:
        audit.record("webauthn_registration_failed", outcome="failure", user_id=user.id,
                     details={"reason": exc.reason})
        db.session.commit()
        if not password_is_recent(sess):
            return require_recent_password(sess, "/account/security/webauthn")
        kind = wa.PASSKEY if request.form.get("kind") == wa.PASSKEY else wa.SECURITY_KEY
        try:
            name = wa.clean_name(request.form.get("name"), kind)
        except wa.Refused:
            name = wa.kind_label(kind)
        if exc.reason == "too_many":
            return _add_page(user, error=exc.message, status=exc.status, kind=kind, name=name)
        return _register_page(user, kind, name, error=exc.message, status=exc.status)
    factor = registered.factor
    audit.record("webauthn_registered", user_id=user.id,
                 details={"factor_id": factor.id, "passkey": factor.discoverable, "aaguid": factor.aaguid,
                          "transports": factor.transports})
    return after_enrolment(user, factor, Verified(amr=registered.amr, phishing_resistant=True, factor_id=factor.id))


# -- rename and remove -------------------------------------------------------------------


def _own_key(factor_id: int, action: str):
    """(user, sess, factor, early response)."""
    user, sess = actor()
    if user is None:
        return None, None, None, to_sign_in()
    back = f"/account/security/webauthn/{factor_id}/{action}"
    if (confirm := require_recent_password(sess, back)) is not None:
        return None, None, None, confirm
    factor = wa.key_of(user, factor_id)
    if factor is None:
        page = render_template("error.html", title=_("Not found"),
                               message=_("There is no such security key or passkey on your account."))
        return None, None, None, (page, 404)
    return user, sess, factor, None


@bp.route("/account/security/webauthn/<int:factor_id>/rename", methods=["GET", "POST"])
def rename(factor_id: int):
    user, _sess, factor, early = _own_key(factor_id, "rename")
    if early is not None:
        return early
    if request.method == "GET":
        return render_template("webauthn_rename.html", user=user, factor=factor, name=factor.name, error=None)
    old = factor.name
    try:
        name = wa.rename(factor, request.form.get("name"))
    except wa.Refused as exc:
        return render_template("webauthn_rename.html", user=user, factor=factor,
                               name=(request.form.get("name") or "")[:200], error=exc.message), 400
    audit.record("webauthn_renamed", user_id=user.id, details={"factor_id": factor.id, "from": old, "to": name})
    db.session.commit()
    return _overview(_("The name is now “%(name)s”.", name=name))


@bp.route("/account/security/webauthn/<int:factor_id>/remove", methods=["GET", "POST"])
def remove(factor_id: int):
    user, _sess, factor, early = _own_key(factor_id, "remove")
    if early is not None:
        return early
    if request.method == "GET":
        return render_template("webauthn_remove.html", user=user, factor=factor)
    name = factor.name
    try:
        ensure_removable(user=user, factor=factor)
    except RemovalRefused as exc:
        return render_template("error.html", title=_("You cannot remove this key"), message=exc.message), exc.status
    after_removal(user, factor)
    db.session.delete(factor)
    db.session.commit()
    return _overview(_("“%(name)s” is removed.", name=name))
