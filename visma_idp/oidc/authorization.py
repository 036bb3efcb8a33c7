"""The authorization endpoint, its hand-over to the sign-in, and its resume.

- ``/authorize`` validates the request once (``request.py``) and decides what
  it still needs (``prompts.py``). Nothing: the code is issued at once.
  Something: the request is saved as an interaction (``browser/interaction.py``)
  with the prompt, and the sign-in takes over (``idp.handoff.sign_in``,
  registered by ``login/``; this package imports nothing from the sign-in).
- When the sign-in has done its part it hands back (``idp.handoff.resume``,
  which is :func:`resume`; the same runs at ``/authorize/resume?tx=``): the
  request is restored from its interaction, decided again (a person who just
  signed in may still have to consent), and the code issued or the next
  prompt handed over.
- Errors before the redirect URI is checked show a page and never redirect;
  after, they go to the client with ``state`` and ``iss`` in its response mode.
- A page the person must answer comes in place when the browser asked for it
  (a GET), and by a redirect when it answers a form post, so that reloading it
  never posts a password again (``in_place``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Response, redirect, render_template, request
from flask_babel import gettext as _

from .. import audit
from ..browser import interaction
from ..browser.interaction import Interaction
from ..browser.sso import current_session
from ..context import current_idp
from ..security import allow_form_action
from ..storage import Membership, SsoSession, db
from .issuance import AuthContext
from .prompts import Situation, decide
from .request import MAX_REQUEST, Authorization, restore, validate

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_page(title: str, message: str, status: int = 400):
    return render_template("error.html", title=title, message=message), status


def expired_page():
    return error_page(_("This sign-in has expired"), _("Go back to the application and start the sign-in again."))


def authorize():
    """``GET|POST /authorize``."""
    if len(request.full_path) > MAX_REQUEST:
        return error_page(_("This sign-in request is not valid"), _("The request is too long."), 414)
    oauth_req = current_idp().server.create_oauth2_request(None)
    sess = current_session()
    try:
        authz = validate(oauth_req, sess.user if sess else None)
    except OAuth2Error as error:
        return authorization_error(error, oauth_req.payload.data)
    return _carry_on(authz, None, sess, in_place=True)


def resume(tx_id: str | None, *, in_place: bool):
    """The sign-in is done with its part of interaction ``tx_id``: decide again,
    issue the code or hand over the next prompt."""
    ix = interaction.get(tx_id)
    if ix is None:
        return expired_page()
    try:
        authz = restore(ix)
    except OAuth2Error as error:
        interaction.drop(ix.id)
        return authorization_error(error, ix.params)
    return _carry_on(authz, ix, current_session(), in_place=in_place)


def _carry_on(authz: Authorization, ix: Interaction | None, sess: SsoSession | None, *, in_place: bool):
    situation = Situation(authz, ix, sess, current_idp().clock.now())
    try:
        prompt = decide(situation)
    except OAuth2Error as error:
        if ix is not None:
            interaction.drop(ix.id)
        db.session.commit()  # what the sign-in recorded on its way here (a denied consent, a refusal)
        return authorization_error(error, authz.data)
    if prompt is None:
        assert sess is not None
        return _issue(authz, sess, ix, situation.membership)
    if ix is None:
        ix = interaction.new(authz.params)
    ix.prompt, ix.acr = prompt.name, prompt.acr
    interaction.save(ix)
    db.session.commit()
    return current_idp().handoff.sign_in(ix, in_place=in_place)


def _issue(authz: Authorization, sess: SsoSession, ix: Interaction | None, membership: Membership | None):
    grant = authz.grant
    if membership is not None:
        _work_in(sess, membership)
    consent_given = ix is not None and ix.consent == "allow"
    # OIDC Core §11: offline access needs explicit consent (or a first-party client)
    grant.request.drop_offline_access = not (consent_given or authz.client.skip_consent)
    grant.request.auth_context = AuthContext(
        auth_time=sess.auth_time, acr=sess.acr, amr=sess.amr, sid=sess.public_id, claims=authz.claims,
        agreement_id=membership.agreement_id if membership is not None else None,
    )
    if ix is not None:
        interaction.drop(ix.id)
    resp = current_idp().server.create_authorization_response(authz.oauth_req, grant_user=sess.user, grant=grant)
    db.session.commit()
    return _to_response_mode(resp, authz.redirect_uri, authz.response_mode)


def _work_in(sess: SsoSession, membership: Membership) -> None:
    """The session works in ``membership``'s agreement from now on (switching
    changes only this: the sign-in, its ``auth_time`` and ``sid`` stay)."""
    now = current_idp().clock.now()
    if sess.agreement_id != membership.agreement_id:
        if sess.agreement_id is not None:
            audit.record("agreement_switched", user_id=sess.user_id,
                         details={"agreement": membership.agreement.public_id, "via": "authorization"})
        sess.agreement_id = membership.agreement_id
    membership.last_used_at = now


# -- answers to the client ------------------------------------------------------------------


def _form_post(redirect_uri: str, params: list[tuple[str, str]]):
    allow_form_action(redirect_uri)
    resp = Response(render_template("form_post.html", action=redirect_uri, params=params))
    resp.headers.update(NO_STORE)
    return resp


def _to_response_mode(resp: Response, redirect_uri: str, mode: str) -> Response:
    """Turn Authlib's 302 into a form_post page when the client asked for it."""
    if mode != "form_post" or resp.status_code != 302:
        return resp
    location = resp.headers["Location"]
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    params = parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own):]
    return _form_post(redirect_uri, params)


def authorization_error(error: OAuth2Error, data):
    """Send an error to the client only when its redirect URI was validated;
    otherwise show an error page (never redirect to an unchecked URI)."""
    if not error.redirect_uri:
        client_id = data.get("client_id")
        audit.record("authorization_refused", outcome="failure",
                     client_id=client_id if isinstance(client_id, str) else None, details={"error": error.error})
        db.session.commit()
        return error_page(_("This sign-in request is not valid"),
                          _("The application sent a request we cannot accept (%(error)s). "
                            "Go back to the application and try again.", error=error.error))
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if data.get("state"):
        params.append(("state", data["state"]))
    params.append(("iss", current_idp().issuer))
    if (data.get("response_mode") or "query") == "form_post":
        return _form_post(error.redirect_uri, params)
    return redirect(add_params_to_uri(error.redirect_uri, params), 302)

