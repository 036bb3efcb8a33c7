"""HTTP endpoints of the provider: discovery, JWKS, authorize (+ continue),
token, userinfo, introspection, revocation and RP-initiated logout."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError
from flask import Blueprint, Response, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf

from .. import audit
from ..context import current_idp
from ..login.session import (
    current_session,
    drop_transaction,
    end_current_session,
    get_transaction,
    new_transaction,
    update_transaction,
)
from ..security import allow_form_action
from ..storage import Consent, db, queries
from .checks.acr import ACR_PASSWORD, LADDER, check_acr, requested_acrs, wants_more
from .checks.max_age import auth_too_old, parse_max_age
from .checks.prompt import parse_prompt
from .checks.subject import needs_other_user, requested_subject
from .claims import CLAIMS_SUPPORTED, parse_claims_param, release_claims
from .discovery import metadata
from .issuance import AuthContext
from .server import StoredRequest, find_token
from .tokens import TokenError, verify_id_token_hint

bp = Blueprint("oidc", __name__)

RESPONSE_MODES = {"query", "form_post"}
DISPLAYS = {"page", "popup", "touch", "wap"}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}



# -- discovery ---------------------------------------------------------------

@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    resp = jsonify(metadata(current_idp(), CLAIMS_SUPPORTED, sorted(LADDER)))
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/jwks")
def jwks():
    resp = jsonify(current_idp().keys.jwks())
    resp.headers["Cache-Control"] = "public, max-age=60"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# -- authorization endpoint ----------------------------------------------------

def error_page(title: str, message: str, status: int = 400):
    return render_template("error.html", title=title, message=message), status


def _response_mode(data) -> str:
    return data.get("response_mode") or "query"


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


def authorization_error(error: OAuth2Error, oauth_req):
    """Send an error to the client only when its redirect URI was validated;
    otherwise show an error page (never redirect to an unchecked URI)."""
    data = oauth_req.payload.data
    if not error.redirect_uri:
        audit.record("authorization_refused", outcome="failure", client_id=_str(data.get("client_id")),
                     details={"error": error.error})
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
    mode = _response_mode(data)
    if mode == "form_post":
        return _form_post(error.redirect_uri, params)
    from authlib.common.urls import add_params_to_uri

    return redirect(add_params_to_uri(error.redirect_uri, params), 302)


def _str(value):
    return value if isinstance(value, str) else None


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    server = current_idp().server
    oauth_req = server.create_oauth2_request(None)
    params = {k: v for k, v in oauth_req.payload.data.items() if isinstance(v, str)}
    return _authorize(oauth_req, params, tx_id=None, started=None)


@bp.route("/authorize/continue", methods=["GET", "POST"])
def authorize_continue():
    choice = None
    if request.method == "POST":
        choice = request.form.get("decision") or request.form.get("account")
    return resume_authorization(request.values.get("tx"), choice)


def resume_authorization(tx_id: str | None, choice: str | None = None, *, after_login: bool = False):
    """Carry on with the authorization request a login transaction holds: a
    consent or account page, another login, or the redirect to the client.
    The password page calls this right after a login, so a sign-in that needs
    nothing more goes straight back to the client (no extra redirect hop);
    ``after_login`` sends a page the user must answer (consent, account
    choice) through a redirect instead, so that reloading it does not post
    the password again."""
    tx = get_transaction(tx_id)
    if tx is None:
        return error_page(_("This sign-in has expired"),
                          _("Go back to the application and start the sign-in again."))
    oauth_req = StoredRequest(current_idp().url("oidc.authorize"), tx["params"])
    return _authorize(oauth_req, tx["params"], tx_id=tx_id, started=tx["created"], choice=choice, tx=tx,
                      pages_by_redirect=after_login)


def _authorize(oauth_req, params, *, tx_id, started, choice=None, tx=None, pages_by_redirect=False):
    idp = current_idp()
    server = idp.server
    now = idp.clock.now()
    sess = current_session()
    user = sess.user if sess else None
    data = oauth_req.payload.data
    if len(request.full_path) > 8192:
        return error_page(_("This sign-in request is not valid"), _("The request is too long."), 414)
    try:
        grant = server.get_consent_grant(oauth_req, end_user=user)
    except OAuth2Error as error:
        return authorization_error(error, oauth_req)
    redirect_uri = grant.redirect_uri
    client = grant.request.client
    try:
        mode = _response_mode(data)
        if mode not in RESPONSE_MODES:
            raise InvalidRequestError("Unsupported response_mode.", redirect_uri=redirect_uri)
        if data.get("display") and data["display"] not in DISPLAYS:
            raise InvalidRequestError("Unsupported display value.", redirect_uri=redirect_uri)
        prompts = parse_prompt(data.get("prompt"), redirect_uri)
        max_age = parse_max_age(data.get("max_age"), redirect_uri)
        claims = parse_claims_param(data.get("claims"), redirect_uri)
        acr_values, essential = requested_acrs(data.get("acr_values"), claims)
        hint_sub = None
        if data.get("id_token_hint"):
            try:
                hint_claims = verify_id_token_hint(idp.keys, data["id_token_hint"], issuer=idp.issuer)
            except TokenError:
                raise InvalidRequestError("Invalid id_token_hint.", redirect_uri=redirect_uri) from None
            hint_sub = hint_claims.get("sub")
        named_sub = requested_subject(claims, hint_sub, redirect_uri)

        fresh = sess is not None and started is not None and sess.auth_time >= started
        try:
            other_user = needs_other_user(named_sub, user.sub if user else None, fresh=fresh,
                                          redirect_uri=redirect_uri)
        except LoginRequiredError:
            audit.record("authorization_refused", outcome="failure", user_id=user.id, client_id=client.client_id,
                         details={"error": "login_required", "reason": "not the user the request names"})
            db.session.commit()
            raise
        force_login = bool(tx and tx.get("force_login")) and not fresh
        needs_login = (
            user is None
            or force_login
            or (not fresh and ("login" in prompts or auth_too_old(sess.auth_time, max_age, now)))
            or other_user
        )
        if not needs_login:
            from ..login import second_step

            # the user may reach more than the session has (a step-up with a second factor);
            # what they could reach is only looked up when an app asks for more
            achievable = second_step.achievable_acr(user) if wants_more(sess.acr, acr_values) else ACR_PASSWORD
            wanted_acr = check_acr(sess.acr, acr_values, essential, achievable, redirect_uri)
            if wanted_acr is not None:
                if "none" in prompts:
                    raise InteractionRequiredError(redirect_uri=redirect_uri)
                tx_id = tx_id or new_transaction(params)
                db.session.commit()
                return second_step.begin_step_up(user, sess, tx_id=tx_id, wanted=wanted_acr)
        if needs_login:
            if "none" in prompts:
                raise LoginRequiredError(redirect_uri=redirect_uri)
            tx_id = tx_id or new_transaction(params)
            db.session.commit()
            return redirect(idp.url("login.email", tx=tx_id))

        if "select_account" in prompts and not (tx and tx.get("account_chosen")) and not fresh:
            if choice == "continue":
                update_transaction(tx_id, account_chosen=True)
            elif choice == "other":
                update_transaction(tx_id, force_login=True)
                return redirect(idp.url("login.email", tx=tx_id))
            else:
                tx_id = tx_id or new_transaction(params)
                if pages_by_redirect:
                    return redirect(idp.url("oidc.authorize_continue", tx=tx_id))
                return render_template("select_account.html", user=user, client=client, tx=tx_id)

        scopes = grant.request.scope.split()
        # first-party clients (skip_consent) never ask, so they need no look-up
        consent_row = None if client.skip_consent else queries.consent_for(user.id, client.client_id)
        remembered = consent_row is not None and set(scopes) <= set(consent_row.scopes)
        consent_needed = not client.skip_consent and ("consent" in prompts or not remembered)
        consent_shown = False
        if consent_needed:
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=redirect_uri)
            if choice not in ("allow", "deny") or tx_id is None:
                tx_id = tx_id or new_transaction(params)
                if pages_by_redirect:
                    return redirect(idp.url("oidc.authorize_continue", tx=tx_id))
                return render_template("consent.html", client=client, scopes=scopes, user=user, tx=tx_id)
            drop_transaction(tx_id)
            if choice == "deny":
                audit.record("consent_denied", user_id=user.id, client_id=client.client_id,
                             details={"scope": " ".join(scopes)})
                db.session.commit()
                raise AccessDeniedError(redirect_uri=redirect_uri)
            if consent_row is None:
                consent_row = Consent(user_id=user.id, client_id=client.client_id, scopes=[], granted_at=now)
                db.session.add(consent_row)
            consent_row.scopes = sorted(set(consent_row.scopes) | set(scopes))
            consent_row.granted_at = now
            consent_shown = True
            audit.record("consent_granted", user_id=user.id, client_id=client.client_id,
                         details={"scope": " ".join(scopes)})
    except OAuth2Error as error:
        return authorization_error(error, oauth_req)

    # OIDC Core §11: offline access needs explicit consent (or a first-party client)
    grant.request.drop_offline_access = not (consent_shown or client.skip_consent)
    grant.request.auth_context = AuthContext(
        auth_time=sess.auth_time, acr=sess.acr, amr=sess.amr, sid=sess.public_id, claims=claims,
    )
    if tx_id:
        drop_transaction(tx_id)
    resp = server.create_authorization_response(oauth_req, grant_user=user, grant=grant)
    db.session.commit()
    return _to_response_mode(resp, redirect_uri, mode)


# -- token, userinfo, introspection, revocation ---------------------------------

@bp.post("/token")
def token():
    try:
        resp = current_idp().server.create_token_response()
    except Exception:
        db.session.rollback()
        raise
    _commit_if_needed()
    return resp


def _commit_if_needed() -> None:
    """Commit what the request wrote (tokens, revocations, audit rows); a
    client_credentials request served from the client cache opened no
    transaction and needs no round trip."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()


@bp.post("/introspect")
def introspect():
    resp = current_idp().server.create_endpoint_response("introspection")
    _commit_if_needed()
    return resp


@bp.post("/revoke")
def revoke():
    resp = current_idp().server.create_endpoint_response("revocation")
    _commit_if_needed()
    return resp


def _bearer_error(error: str | None, description: str | None = None, status: int = 401):
    value = 'Bearer realm="userinfo"'
    body = {}
    if error:
        value += f', error="{error}"'
        body["error"] = error
        if description:
            value += f', error_description="{description}"'
            body["error_description"] = description
    resp = jsonify(body) if body else Response(status=status)
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = value
    resp.headers.update(NO_STORE)
    return resp


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    idp = current_idp()
    header = request.headers.get("Authorization", "")
    from_header = header[7:].strip() if header[:7].lower() == "bearer " else None
    from_body = None
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        from_body = request.form.get("access_token")
    if from_header and from_body:
        return _bearer_error("invalid_request", "Use one way to send the access token.", 400)
    token_string = from_header or from_body
    if not token_string:
        return _bearer_error(None)
    info = find_token(idp, token_string, "access_token")
    row = info.get("_row") if info else None
    if row is None or row.kind != "access" or row.user is None or not row.user.is_active:
        return _bearer_error("invalid_token", "The access token is invalid or expired.")
    if "openid" not in row.scope.split():
        return _bearer_error("insufficient_scope", "The access token lacks the openid scope.", 403)
    claims = release_claims(row.user, row.scope, (row.claims or {}).get("userinfo"), by_scope=True)
    resp = jsonify(claims)
    resp.headers.update(NO_STORE)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# -- RP-initiated logout ----------------------------------------------------------

@bp.route("/logout", methods=["GET", "POST"])
def end_session():
    idp = current_idp()
    server = idp.server
    confirming = request.method == "POST" and request.form.get("confirm") == "yes"
    if confirming:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except Exception:  # noqa: BLE001 - any CSRF failure is a 400
            raise CSRFError("The CSRF token is missing or invalid.") from None
    try:
        end_req = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        audit.record("logout_refused", outcome="failure", details={"error": error.error})
        db.session.commit()
        return error_page(_("We could not sign you out from the application"),
                          _("The sign-out request is not valid (%(reason)s). You are still signed in here; "
                            "you can sign out below.", reason=error.description or error.error))
    sess = current_session()
    hint_claims = end_req.id_token_claims
    hint_matches = bool(hint_claims and sess and hint_claims.get("sub") == sess.user.sub)
    if sess is not None and not hint_matches and not confirming:
        params = {k: v for k, v in request.values.items() if k != "csrf_token"}
        if end_req.redirect_uri:  # checked against the client's registered post-logout URIs
            allow_form_action(end_req.redirect_uri)
        return render_template("logout_confirm.html", user=sess.user, client=end_req.client, params=params)
    if sess is not None:
        end_current_session()
        audit.record("logout", user_id=sess.user_id,
                     client_id=end_req.client.client_id if end_req.client else None)
    db.session.commit()
    resp = server.create_endpoint_response("end_session", end_req)
    if resp is not None:
        return resp
    return render_template("logged_out.html", client=end_req.client)


@bp.errorhandler(CSRFError)
def csrf_error(error):
    return error_page(_("This page has expired"), _("Reload the page and try again."), 400)
