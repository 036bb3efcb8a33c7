"""Expense: a small relying app that signs in through visma_idp.

Read it top to bottom: settings, ``create_app``, then the routes (sign-in,
claims, approvals, back-channel logout). The OIDC client is Authlib's Flask
client: discovery, code flow with PKCE S256, state and nonce (Authlib), plus
the RFC 9207 ``iss`` check of the authorization response (added here:
Authlib 1.9 does not do it).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect
from joserfc.jwk import KeySet

from . import db
from .backchannel import LogoutTokenError, verify_logout_token
from .i18n import language, translate
from .receipts import MAX_BYTES, ReceiptRejected, check_receipt, read_upload
from .sessions import ServerSideSessions

log = logging.getLogger("expense")

MFA = "urn:visma_idp:acr:mfa"
LEVELS = {"urn:visma_idp:acr:pwd": 1, MFA: 2, "urn:visma_idp:acr:phr": 3}
SCOPE = "openid profile email agreements"
CURRENCIES = ("NOK", "SEK", "DKK", "EUR", "USD")
PER_DIEM_NOK = {"domestic": 800, "abroad": 1200}  # per day of a trip, from and to inclusive; example rates
MAX_TRIP_DAYS = 90
ENV = {  # setting -> environment variable
    "ISSUER": "EXPENSE_ISSUER",
    "CLIENT_ID": "EXPENSE_CLIENT_ID",
    "CLIENT_SECRET": "EXPENSE_CLIENT_SECRET",
    "SECRET_KEY": "EXPENSE_SECRET_KEY",
    "DATABASE": "EXPENSE_DATABASE",
    "BASE_URL": "EXPENSE_BASE_URL",
}
DEFAULTS = {
    "ISSUER": "http://127.0.0.1:5000",
    "CLIENT_ID": "expense",
    "DATABASE": "expense.db",
    "BASE_URL": "http://127.0.0.1:5001",
}

bp = Blueprint("expense", __name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment (``EXPENSE_*``), overridden by ``config``."""
    app = Flask(__name__)
    settings = dict(DEFAULTS)
    settings.update({name: os.environ[var] for name, var in ENV.items() if os.environ.get(var)})
    settings.update(config or {})
    missing = [ENV[name] for name in ("CLIENT_SECRET", "SECRET_KEY") if not settings.get(name)]
    if missing:
        raise RuntimeError(f"Expense needs the setting(s) {', '.join(missing)} (see README.md)")
    settings["ISSUER"] = settings["ISSUER"].rstrip("/")
    settings["BASE_URL"] = settings["BASE_URL"].rstrip("/")
    app.config.update(
        settings,
        SESSION_COOKIE_NAME="expense_session",
        SESSION_COOKIE_SECURE=settings["BASE_URL"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=MAX_BYTES + 256 * 1024,  # the receipt and the form around it
    )
    db.init_app(app)
    app.session_interface = ServerSideSessions()
    csrf = CSRFProtect(app)
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=app.config["CLIENT_ID"],
        client_secret=app.config["CLIENT_SECRET"],
        server_metadata_url=app.config["ISSUER"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
    )
    csrf.exempt(backchannel_logout)
    app.register_blueprint(bp)
    app.context_processor(lambda: {"t": translate, "lang": language(), "user": session.get("user"),
                                   "is_approver": is_approver()})
    app.after_request(_security_headers)
    return app


def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    return resp


def idp():
    return current_app.extensions["authlib.integrations.flask_client"].idp


def redirect_uri() -> str:
    return current_app.config["BASE_URL"] + "/callback"


def is_approver() -> bool:
    return "approver" in (session.get("user") or {}).get("roles", [])


def agreement_id() -> str:
    """The agreement the person works in (from the ID token); claims are kept per agreement."""
    user = session.get("user")
    if not user:
        abort(401)
    agreement = user.get("agreement")
    if not agreement:
        abort(403)
    return agreement["id"]


# -- signing in and out -------------------------------------------------------------

@bp.get("/")
def home():
    if not session.get("user"):
        return render_template("welcome.html")
    user = session["user"]
    mine = db.claims_of(user["agreement"]["id"], user["sub"]) if user.get("agreement") else []
    return render_template("home.html", claims=mine, today=date.today().isoformat(), currencies=CURRENCIES)


@bp.get("/login")
def login():
    return idp().authorize_redirect(redirect_uri(), ui_locales=language())


@bp.get("/switch")
def switch_agreement():
    """A new authorization with the chooser: no password, the same provider session, another agreement."""
    return idp().authorize_redirect(redirect_uri(), prompt="select_account", ui_locales=language())


@bp.get("/callback")
def callback():
    client = idp()
    metadata = client.load_server_metadata()
    # RFC 9207: the answer must come from our provider (mix-up attacks); Authlib does not check this.
    iss = request.args.get("iss")
    if iss != metadata["issuer"] and (iss is not None or metadata.get("authorization_response_iss_parameter_supported")):
        return _sign_in_failed("wrong iss")
    try:
        token = client.authorize_access_token()  # state, code + PKCE verifier, ID token signature, iss, aud, nonce
    except OAuthError as exc:
        return _sign_in_failed(exc.error)
    claims = token["userinfo"]  # the verified ID token's claims
    info = client.userinfo(token=token)  # name and email (some providers keep them out of the ID token)
    previous = session.get("user")
    pending = session.pop("pending_decision", None)
    stepping_up = bool(pending and previous and previous["sub"] == claims["sub"])
    session.clear()
    session.rotate = True  # a new session key at every sign-in
    session["user"] = {
        "sub": claims["sub"],
        "name": info.get("name") or claims.get("name") or claims["sub"],
        "email": info.get("email") or claims.get("email"),
        "agreement": claims.get("agreement"),
        "roles": sorted(claims.get("roles") or []),
        "acr": claims.get("acr"),
    }
    session["sid"] = claims.get("sid")
    session["id_token"] = token["id_token"]  # only for id_token_hint at sign-out; never logged
    log.info("signed in sub=%s agreement=%s acr=%s", claims["sub"],
             (claims.get("agreement") or {}).get("id"), claims.get("acr"))
    if stepping_up:
        return _finish_decision(pending)
    return redirect(url_for("expense.home"))


def _sign_in_failed(reason: str):
    log.warning("sign-in failed: %s", reason)
    return render_template("error.html", title=translate("sign_in_failed"), reason=reason), 400


@bp.post("/logout")
def logout():
    """RP-initiated logout: end our session, then the provider's (with id_token_hint)."""
    id_token = session.get("id_token")
    session.clear()
    session.rotate = True
    if not id_token:
        return redirect(url_for("expense.logged_out"))
    return idp().logout_redirect(post_logout_redirect_uri=current_app.config["BASE_URL"] + "/logged-out",
                                 id_token_hint=id_token)


@bp.get("/logged-out")
def logged_out():
    if request.args.get("state"):
        try:  # the state Authlib sent with the logout request; only a page to show, so nothing hangs on it
            idp().validate_logout_response()
        except OAuthError:
            pass
    return render_template("logged_out.html")


# -- claims ---------------------------------------------------------------------------

@bp.post("/claims")
def create_claim():
    agreement = agreement_id()
    user = session["user"]
    kind = request.form.get("kind", "outlay")
    form = request.form
    purpose = form.get("purpose", "").strip()[:500]
    fields: dict = {}
    problem = None
    if not purpose:
        problem = "required"
    elif kind == "outlay":
        problem = _amount_fields(form, fields) or _receipt_fields(fields)
    elif kind == "mileage":
        problem = _mileage_fields(form, fields)
    elif kind == "travel":
        problem = _travel_fields(form, fields)
    else:
        abort(400)
    if problem:
        flash(translate(problem), "error")
        return home(), 400  # the page again, with what is wrong
    claim_id = db.create_claim(agreement_id=agreement, kind=kind, owner_sub=user["sub"], owner_name=user["name"],
                               purpose=purpose, **fields)
    flash(translate("saved"))
    return redirect(url_for("expense.show_claim", claim_id=claim_id)), 303


def _parse_date(value: str) -> str | None:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def _amount_fields(form, fields: dict) -> str | None:
    try:
        amount = Decimal(form.get("amount", "").replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return "bad_amount"
    if not amount.is_finite() or amount <= 0 or amount > Decimal("10000000") or amount != amount.quantize(Decimal("0.01")):
        return "bad_amount"
    spent_on = _parse_date(form.get("spent_on", ""))
    if spent_on is None:
        return "bad_date"
    currency = form.get("currency", "NOK")
    if currency not in CURRENCIES:
        return "required"
    fields.update(amount_minor=int(amount * 100), currency=currency, spent_on=spent_on)
    return None


def _receipt_fields(fields: dict) -> str | None:
    upload = request.files.get("receipt")
    try:
        data = read_upload(upload) if upload else b""
        fields["receipt_type"] = check_receipt(data)
    except ReceiptRejected as exc:
        return exc.reason
    fields["receipt"] = data
    return None


def _mileage_fields(form, fields: dict) -> str | None:
    try:
        km = float(form.get("km", "").replace(",", "."))
    except ValueError:
        return "bad_km"
    if not 0 < km < 100000:
        return "bad_km"
    route = form.get("route", "").strip()[:300]
    spent_on = _parse_date(form.get("spent_on", ""))
    if not route:
        return "required"
    if spent_on is None:
        return "bad_date"
    fields.update(km=km, route=route, spent_on=spent_on)
    return None


def _travel_fields(form, fields: dict) -> str | None:
    start, end = _parse_date(form.get("start_date", "")), _parse_date(form.get("end_date", ""))
    destination = form.get("destination", "").strip()[:200]
    if not destination:
        return "required"
    if start is None or end is None:
        return "bad_date"
    if end < start:
        return "trip_ends_before_start"
    days = trip_days(start, end)
    if days > MAX_TRIP_DAYS:
        return "trip_too_long"
    abroad = form.get("abroad") == "yes"
    fields.update(start_date=start, end_date=end, destination=destination, abroad=abroad,
                  per_diem_minor=per_diem_nok(days, abroad=abroad) * 100)
    return None


def trip_days(start: str, end: str) -> int:
    """The days of a trip, the first and the last included: 12 to 14 March is 3 days."""
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def per_diem_nok(days: int, *, abroad: bool) -> int:
    """The per diem in whole kroner: days × the daily rate (``PER_DIEM_NOK``)."""
    return days * PER_DIEM_NOK["abroad" if abroad else "domestic"]


def _visible_claim(claim_id: int):
    """A claim of this agreement that the person may see: their own, or any submitted one for an approver."""
    row = db.claim(agreement_id(), claim_id)
    if row is None or (row["owner_sub"] != session["user"]["sub"] and not is_approver()):
        abort(404)
    return row


@bp.get("/claims/<int:claim_id>")
def show_claim(claim_id: int):
    claim = _visible_claim(claim_id)
    passengers = db.passengers(claim_id) if claim["kind"] == "mileage" else []
    days = trip_days(claim["start_date"], claim["end_date"]) if claim["kind"] == "travel" else None
    return render_template("claim.html", claim=claim, passengers=passengers, days=days)


@bp.post("/claims/<int:claim_id>/passengers")
def add_passenger(claim_id: int):
    """One passenger at a time, while the mileage claim is the owner's draft."""
    _visible_claim(claim_id)
    name = request.form.get("name", "").strip()[:200]
    if not name:
        flash(translate("required"), "error")
    elif not db.add_passenger(agreement_id(), claim_id, session["user"]["sub"], name):
        flash(translate("passengers_locked"), "error")
    return redirect(url_for("expense.show_claim", claim_id=claim_id)), 303


@bp.post("/claims/<int:claim_id>/passengers/<int:passenger_id>/remove")
def remove_passenger(claim_id: int, passenger_id: int):
    _visible_claim(claim_id)
    if not db.remove_passenger(agreement_id(), claim_id, session["user"]["sub"], passenger_id):
        flash(translate("passengers_locked"), "error")
    return redirect(url_for("expense.show_claim", claim_id=claim_id)), 303


@bp.get("/claims/<int:claim_id>/receipt")
def receipt(claim_id: int):
    row = _visible_claim(claim_id)
    if not row["receipt"]:
        abort(404)
    resp = Response(row["receipt"], mimetype=row["receipt_type"])
    resp.headers["Content-Disposition"] = f'inline; filename="receipt-{claim_id}"'
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return resp


@bp.post("/claims/<int:claim_id>/submit")
def submit_claim(claim_id: int):
    if db.submit(agreement_id(), claim_id, session["user"]["sub"]):
        flash(translate("was_submitted"))
    return redirect(url_for("expense.show_claim", claim_id=claim_id)), 303


# -- approving ------------------------------------------------------------------------

@bp.get("/approvals")
def approvals():
    if not is_approver():
        abort(403)
    return render_template("approvals.html", claims=db.submitted_claims(agreement_id()))


@bp.post("/claims/<int:claim_id>/decide")
def decide(claim_id: int):
    """Approve or reject. Needs the approver role and a sign-in with two factors:
    below that, a step-up at the provider (``acr_values``), then the decision is finished."""
    if not is_approver():
        abort(403)
    decision = {"approve": "approved", "reject": "rejected"}.get(request.form.get("decision", ""))
    if decision is None:
        abort(400)
    pending = {"claim_id": claim_id, "decision": decision, "agreement": agreement_id()}
    if LEVELS.get(session["user"].get("acr") or "", 0) < LEVELS[MFA]:
        session["pending_decision"] = pending
        return idp().authorize_redirect(redirect_uri(), acr_values=MFA, ui_locales=language())
    return _finish_decision(pending)


def _finish_decision(pending: dict):
    user = session["user"]
    if LEVELS.get(user.get("acr") or "", 0) < LEVELS[MFA]:
        flash(translate("need_two_step"), "error")
    elif (not is_approver() or not user.get("agreement") or user["agreement"]["id"] != pending["agreement"]
          or not db.decide(pending["agreement"], pending["claim_id"], pending["decision"], user["sub"])):
        flash(translate("cannot_decide"), "error")
    else:
        flash(translate("was_approved" if pending["decision"] == "approved" else "was_rejected"))
    return redirect(url_for("expense.approvals")), 303


# -- back-channel logout --------------------------------------------------------------

@bp.post("/backchannel-logout")
def backchannel_logout():
    """The provider tells us a session ended: end our sessions of that ``sid`` (or of that ``sub``)."""
    token = request.form.get("logout_token", "")
    client = idp()
    metadata = client.load_server_metadata()
    settings = current_app.config
    algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    try:
        logout = verify_logout_token(token, keys=_provider_keys(token), issuer=metadata["issuer"],
                                     client_id=settings["CLIENT_ID"], algorithms=algorithms)
    except LogoutTokenError as exc:
        log.warning("back-channel logout refused: %s", exc)
        return _no_store({"error": "invalid_request", "error_description": "invalid logout token"}, 400)
    if not db.remember_jti(logout.jti, logout.exp):
        log.warning("back-channel logout refused: jti seen before")
        return _no_store({"error": "invalid_request", "error_description": "logout token replayed"}, 400)
    ended = db.end_sessions(sid=logout.sid, sub=logout.sub)
    log.info("back-channel logout: %d session(s) ended", ended)
    return _no_store({}, 200)


def _provider_keys(token: str) -> KeySet:
    """The provider's keys (``jwks_uri`` from discovery), fetched again once for a key id we do not know."""
    client = idp()
    keys = KeySet.import_key_set(client.fetch_jwk_set())
    try:
        header = token.split(".")[0]
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError):
        return keys
    if kid and all(key.kid != kid for key in keys.keys):
        keys = KeySet.import_key_set(client.fetch_jwk_set(force=True))
    return keys


def _no_store(body: dict, status: int) -> Response:
    resp = current_app.json.response(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    create_app().run(host="127.0.0.1", port=5001)


if __name__ == "__main__":
    main()
