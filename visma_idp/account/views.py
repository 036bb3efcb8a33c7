"""My details (the account console): profile, notification settings, and
Security: change password, change email, sessions, recent activity.

Every page needs a signed-in SSO session (otherwise: the sign-in page);
every form posts to its own URL with the CSRF token; a failed post
re-renders the page with 400 and the message next to its field; a
successful one redirects back (303) with a confirmation kept in the
session cookie for the next page view. The email-change confirmation and
"this wasn't me" links work without a session (the link is the proof).
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _

from .. import addresses, audit
from ..browser import signin
from ..browser.sso import current_session, end_current_session
from ..context import current_idp
from ..notify.messages import queue
from ..password.confirm import Events, check_current_password, wait_message
from ..password.policy import MAX_LENGTH
from ..password.service import set_new_password
from ..storage import SsoSession, db
from . import activity, email_change, tokens
from .profile import ProfileForm, managed_fields, update_profile, validate
from .sessions import revoke_everything

bp = Blueprint("account", __name__)

DONE_KEY = "account_done"
CANCELLED_KEY = "email_change_cancelled"  # for the next page: a pending email change the password change cancelled



def _to_sign_in():
    return redirect(current_idp().url("login.email"), 303 if request.method == "POST" else 302)


def _back(section: str, done: str, **values: Any):
    """PRG: remember the confirmation for the next view of the page, go back to it."""
    session[DONE_KEY] = {"key": done, "section": section, **values}
    anchor = "email-title" if section == "email" else section
    return redirect(current_idp().url("account.details") + "#" + anchor, 303)


def _done_message(done: dict[str, Any] | None) -> dict[str, str] | None:
    if not isinstance(done, dict):
        return None
    key = done.get("key")
    if key == "profile":
        text = _("Your details are saved.")
    elif key == "profile_same":
        text = _("Nothing to save: your details are as they were.")
    elif key == "notifications":
        text = _("Your notification settings are saved.")
    elif key == "email_sent":
        text = _("We sent a link to %(email)s. Open it within %(hours)d hours to confirm the new address. "
                 "Until then, sign in with your current address.",
                 email=str(done.get("email", "")), hours=int(done.get("hours", 24)))
    elif key == "signed_out_others":
        text = _("You are now signed out everywhere except on this device.")
        if done.get("cancelled"):
            text += " " + _("A pending change of your email address to %(email)s was cancelled.",
                            email=str(done["cancelled"]))
    elif key == "session_ended":
        text = _("The session is ended.")
    else:
        return None
    return {"section": str(done.get("section", "")), "text": text}


def _page(sess: SsoSession, *, status: int = 200, profile: ProfileForm | None = None,
          errors: dict[str, Any] | None = None, values: dict[str, str] | None = None,
          headers: dict[str, str] | None = None):
    user = sess.user
    zone = activity.user_zone(user)
    done = _done_message(session.pop(DONE_KEY, None)) if status == 200 else None
    sessions = [
        {
            "id": row.public_id,
            "current": row.id == sess.id,
            "device": activity.device_label(row.user_agent),
            "ip": row.ip,
            "started": activity.format_time(row.created_at, zone),
            "started_iso": activity.iso_time(row.created_at),
            "seen": activity.format_time(row.last_seen_at, zone),
            "seen_iso": activity.iso_time(row.last_seen_at),
        }
        for row in activity.live_sessions(user.id)
    ]
    sessions.sort(key=lambda s: not s["current"])  # this device first
    events = [
        {"label": item.label, "when": activity.format_time(item.at, zone), "iso": activity.iso_time(item.at),
         "ip": item.ip, "device": item.device, "failed": item.failed}
        for item in activity.recent_activity(user.id)
    ]
    body = render_template(
        "account.html", user=user, sess=sess,
        profile=profile or ProfileForm.of_user(user, _current_locale()), managed=managed_fields(user),
        errors=errors or {}, values=values or {}, done=done, sessions=sessions, events=events,
        zone=activity.zone_name(zone), email_hours=max(1, current_idp().settings["EMAIL_CHANGE_LIFETIME"] // 3600),
    )
    return body, status, headers or {}


def _current_locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or current_idp().settings["DEFAULT_LOCALE"])


def _signed_in() -> SsoSession | None:
    return current_session()


# -- the page ----------------------------------------------------------------------

@bp.get("/account")
def details():
    sess = _signed_in()
    if sess is None:
        return _to_sign_in()
    return _page(sess)


def _form_url_get():
    """A form URL opened with GET (the language switcher on an error page): go to the page."""
    lang = request.args.get("lang")
    if lang:
        return redirect(current_idp().url("account.details", lang=lang))
    return redirect(current_idp().url("account.details"))


def _form_post(view):
    """A form's own URL: opened with GET it goes back to the page; a post needs
    the signed-in session, which the view gets as its first argument."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method == "GET":
            return _form_url_get()
        sess = _signed_in()
        if sess is None:
            return _to_sign_in()
        return view(sess, *args, **kwargs)

    return wrapper


# -- My details --------------------------------------------------------------------

@bp.route("/account/profile", methods=["GET", "POST"])
@_form_post
def profile(sess: SsoSession):
    user = sess.user
    managed = managed_fields(user)  # kept by the employer's system: what was posted for them is ignored
    form = ProfileForm.of_form(request.form, user=user, managed=managed)
    values = validate(form, managed=managed)
    if form.errors:
        return _page(sess, status=400, profile=form, errors={f"profile.{k}": v for k, v in form.errors.items()})
    changed = update_profile(user, values)
    # the saved language wins over a switcher choice made in this browser
    session.pop("lang", None)
    db.session.commit()
    return _back("details", "profile" if changed else "profile_same")


@bp.route("/account/notifications", methods=["GET", "POST"])
@_form_post
def notification_settings(sess: SsoSession):
    user = sess.user
    wanted = request.form.get("notify_profile_changes") == "on"
    if user.notify_profile_changes != wanted:
        user.notify_profile_changes = wanted
        user.updated_at = current_idp().clock.now()
        audit.record("notification_settings_changed", user_id=user.id, subject=user.email,
                     details={"notify_profile_changes": wanted})
    db.session.commit()
    return _back("notifications", "notifications")


# -- Security: the current password --------------------------------------------------

def _current_password_refused(sess: SsoSession, secret: str, *, failed_event: str, field: str,
                              values: dict[str, str] | None = None):
    """None when ``secret`` is the current password (``password/confirm.py``:
    throttled with the sign-in's budget); else the answer: the page with the
    message next to ``field`` (400, or 429 with ``Retry-After``), or the
    locked page (403) as the sign-in shows it."""
    user = sess.user
    check = check_current_password(user=user, email=user.email, password=secret, ip=request.remote_addr,
                                   events=Events(failed=failed_event))
    if check.ok:
        return None
    if check.locked:
        return render_template("login_locked.html", email=user.email), 403
    if check.throttled:
        return _page(sess, status=429, errors={field: wait_message(check)}, values=values, headers=check.headers)
    return _page(sess, status=400, errors={field: _("The current password is not right.")}, values=values)


# -- Security: change password -------------------------------------------------------

@bp.route("/account/password", methods=["GET", "POST"])
@_form_post
def change_password(sess: SsoSession):
    user = sess.user
    current = request.form.get("current_password") or ""
    new = request.form.get("password") or ""
    again = request.form.get("password2") or ""
    errors: dict[str, Any] = {}
    if not current:
        errors["password.current"] = _("Enter your current password.")
    if not new:
        errors["password.new"] = [_("Enter a new password.")]
    elif len(new) > MAX_LENGTH:
        errors["password.new"] = [_("The new password is too long.")]
    if errors:
        return _page(sess, status=400, errors=errors)
    refused = _current_password_refused(sess, current, failed_event="password_change_failed",
                                        field="password.current")
    if refused is not None:
        return refused
    wrong = set_new_password(user, new, again)
    if wrong is not None:  # both problems at once: the policy and the repeat
        errors = {"password.new": wrong.messages} if wrong.messages else {}
        if wrong.mismatch:
            errors["password.again"] = _("The two passwords are not the same.")
        return _page(sess, status=400, errors=errors)
    user.updated_at = current_idp().clock.now()
    # everyone else is signed out, every app must sign in again, and so must this browser
    # (and every pending link that would change the account dies: sessions.py)
    revoked = revoke_everything(user.id, keep_session_id=sess.id, tokens=True, reason="password_changed")
    end_current_session()
    queue("password_changed", to=user.email, user=user, via="change", email_change_cancelled=revoked.email_change)
    audit.record("password_changed", user_id=user.id, subject=user.email, details={"via": "change"})
    db.session.commit()
    signin.current().email = user.email  # the sign-in page starts with the address filled in
    if revoked.email_change:
        session[CANCELLED_KEY] = revoked.email_change
    return redirect(current_idp().url("account.password_changed"), 303)


@bp.get("/account/password/changed")
def password_changed():
    return render_template("account_password_changed.html", email_change_cancelled=session.pop(CANCELLED_KEY, None))


# -- Security: change email ----------------------------------------------------------

@bp.route("/account/email", methods=["GET", "POST"])
@_form_post
def change_email(sess: SsoSession):
    user = sess.user
    typed = (request.form.get("email") or "").strip()[:email_change.MAX_EMAIL]
    current = request.form.get("current_password") or ""
    values = {"email": typed}
    errors: dict[str, Any] = {}
    new: str | None = None
    try:
        new = addresses.parse(request.form.get("email")).email
    except addresses.AddressError as exc:
        errors["email.new"] = addresses.explain(exc, _("Enter the new email address, like name@example.com."))
    if new is not None and new == user.email:
        errors["email.new"] = _("This is already your email address.")
    if not current:
        errors["email.current"] = _("Enter your current password.")
    if errors:
        return _page(sess, status=400, errors=errors, values=values)
    if email_change.requests_last_hour(user.id) >= current_idp().settings["EMAIL_CHANGES_PER_HOUR"]:
        return _page(sess, status=429, values=values, headers={"Retry-After": "3600"},
                     errors={"email.new": _("You asked to change your address too many times. "
                                            "Try again in an hour.")})
    refused = _current_password_refused(sess, current, failed_event="email_change_failed", field="email.current",
                                        values=values)
    if refused is not None:
        return refused
    assert new is not None
    email_change.request_change(user, new)
    db.session.commit()
    hours = max(1, current_idp().settings["EMAIL_CHANGE_LIFETIME"] // 3600)
    return _back("email", "email_sent", email=new, hours=hours)


def _link_problem(exc: tokens.LinkInvalid):
    if exc.reason == "expired":
        message = _("This link has expired. Ask for the change again on My details.")
    elif exc.reason == "used":
        message = _("This link was already used.")
    elif exc.reason == "voided":
        message = _("This link no longer works: a newer request replaced it, or it was cancelled to protect the "
                    "account (a new password, ended sessions, an administrator's help or a reported problem).")
    else:
        message = _("This link is not valid. Check that you opened the whole address from the email.")
    status = 404 if exc.reason == "unknown" else 410
    return render_template("error.html", title=_("The link does not work"), message=message), status


def _token_arg() -> str | None:
    raw = request.values.get("token")
    return raw if isinstance(raw, str) else None


@bp.route("/account/email/confirm", methods=["GET", "POST"])
def email_confirm():
    raw = _token_arg()
    if request.method == "GET":
        try:
            row = tokens.peek(raw, (tokens.EMAIL_CHANGE,))
        except tokens.LinkInvalid as exc:
            return _link_problem(exc)
        new = str((row.data or {}).get("email") or "")
        if email_change.taken_by_other(new, row.user_id):
            return render_template("account_email_confirm.html", state="taken", new_email=new), 409
        return render_template("account_email_confirm.html", state="ask", new_email=new, token=raw)
    try:
        changed = email_change.confirm_change(raw)
    except tokens.LinkInvalid as exc:
        return _link_problem(exc)
    except email_change.EmailChangeError as exc:
        if exc.code == "taken":
            return render_template("account_email_confirm.html", state="taken", new_email=exc.email), 409
        return render_template("login_locked.html"), 403
    return render_template("account_email_confirm.html", state="done", new_email=changed.new)


@bp.route("/account/email/cancel", methods=["GET", "POST"])
def email_cancel():
    raw = _token_arg()
    if request.method == "GET":
        try:
            row = tokens.peek(raw, (tokens.EMAIL_CANCEL,))
        except tokens.LinkInvalid as exc:
            return _link_problem(exc)
        return render_template("account_email_cancel.html", state="ask", token=raw,
                               new_email=str((row.data or {}).get("email") or ""))
    try:
        result = email_change.cancel_change(raw)
    except tokens.LinkInvalid as exc:
        return _link_problem(exc)
    return render_template("account_email_cancel.html", state="done", restored=result.restored,
                           kept_other=result.kept_other, email=result.user.email)


# -- Security: sessions --------------------------------------------------------------

@bp.route("/account/sessions/others/end", methods=["GET", "POST"])
@_form_post
def sessions_end_others(sess: SsoSession):
    done = activity.end_all_other_sessions(sess.user_id, current=sess)
    db.session.commit()
    return _back("sessions", "signed_out_others", cancelled=done.email_change or "")


@bp.route("/account/sessions/<public_id>/end", methods=["GET", "POST"])
@_form_post
def session_end(sess: SsoSession, public_id: str):
    if not activity.end_other_session(sess.user_id, public_id, current_id=sess.id):
        return render_template("error.html", title=_("Session not found"),
                               message=_("There is no such session among yours. It may have ended already.")), 404
    db.session.commit()
    return _back("sessions", "session_ended")
