"""HTTP endpoints of the provider: discovery, JWKS, authorize (and its resume:
``authorization.py``), token, userinfo, introspection, revocation and
RP-initiated logout (with front-channel logout's iframes; back-channel
logout is ``backchannel.py``)."""

from __future__ import annotations

from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf

from .. import audit
from ..assurance import LADDER, NATIONAL_LEVELS
from ..browser.sso import current_session, end_current_session
from ..context import current_idp
from ..security import allow_form_action, allow_frames
from ..storage import db, queries
from . import authorization, backchannel
from .authorization import NO_STORE, error_page
from .claims import AGREEMENT_SCOPE, CLAIMS_SUPPORTED, agreement_claims, memberships_claim, release_claims
from .discovery import metadata
from .server import find_token

bp = Blueprint("oidc", __name__)



# -- discovery ---------------------------------------------------------------

@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    resp = jsonify(metadata(current_idp(), CLAIMS_SUPPORTED, acr_values_supported()))
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def acr_values_supported() -> list[str]:
    """Our ladder, and the levels of the national eID upstreams people may sign in with
    (those an upstream is asked for, else every level we know: ``assurance.NATIONAL_LEVELS``)."""
    levels = set(LADDER)
    for asked in queries.national_upstream_acr_values():
        levels.update(v for v in (asked or NATIONAL_LEVELS) if v in NATIONAL_LEVELS)
    return sorted(levels)


@bp.get("/jwks")
def jwks():
    resp = jsonify(current_idp().keys.jwks())
    resp.headers["Cache-Control"] = "public, max-age=60"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# -- authorization endpoint (authorization.py) ----------------------------------------

@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    return authorization.authorize()


@bp.get("/authorize/resume")
def resume():
    """Where a sign-in hands back to the protocol by a redirect (``login/``
    usually calls :func:`authorization.resume` in the same request instead)."""
    return authorization.resume(request.args.get("tx"), in_place=True)


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
    if AGREEMENT_SCOPE in row.scope.split():  # the active agreement, and (here only) every membership
        claims.update(agreement_claims(queries.membership_of(row.user_id, row.agreement_id), row.client_id))
        claims["agreements"] = memberships_claim(queries.memberships_of(row.user_id), row.client_id)
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
    frames: list[str] = []
    if sess is not None:
        end_current_session()
        audit.record("logout", user_id=sess.user_id,
                     client_id=end_req.client.client_id if end_req.client else None)
        db.session.flush()
        # the apps of this session are told now, once each and briefly; the worker retries the rest
        backchannel.tell_now(idp, backchannel.queue_session(idp, sess, reason="rp_logout"))
        frames = frontchannel_uris(idp, sess.public_id)
    db.session.commit()
    resp = server.create_endpoint_response("end_session", end_req)
    if resp is not None and not frames:
        return resp
    # front-channel logout: the page loads each app's logout page, then goes on
    next_url = resp.headers.get("Location") if resp is not None else None
    for uri in frames:
        allow_frames(uri)
    return render_template("logged_out.html", client=end_req.client, frames=frames, next_url=next_url,
                           wait=FRONTCHANNEL_WAIT_SECONDS)


FRONTCHANNEL_WAIT_SECONDS = 2  # how long the logout page lets the apps' iframes load before it goes on


def frontchannel_uris(idp, sid: str) -> list[str]:
    """OIDC Front-Channel Logout 1.0 §2-3: the front-channel logout URI of
    each app that took part in the session ``sid``, with ``iss`` and ``sid``
    added to its query (always: every session has a sid)."""
    out = []
    for client_id in sorted(queries.clients_of_session(sid)):
        client = idp.clients.get(client_id)
        if client is not None and client.frontchannel_logout_uri:
            uri = client.frontchannel_logout_uri
            out.append(uri + ("&" if "?" in uri else "?") + urlencode({"iss": idp.issuer, "sid": sid}))
    return out


@bp.errorhandler(CSRFError)
def csrf_error(error):
    return error_page(_("This page has expired"), _("Reload the page and try again."), 400)
