"""Ways in: a company's upstream provider (ADFS, Entra ID), and national eID
(ID-porten, BankID).

Rules (the round trip, the ID token and linking are ``federation/``'s):
- home-realm discovery: an address on the email page whose domain an
  upstream serves goes straight to it (``steps/identify.py``); a button per
  upstream is on the email page as well (POST, with the CSRF token);
- an upstream identity linked to an account signs that account in: ``amr``
  ``fed`` (plus the upstream's own ``amr`` where the operator trusts it), the
  ``acr`` the operator set for that upstream (a level of two factors or more
  passes the second step too); national eID: the eID's own ``acr``
  (``idporten-loa-high`` ranks as phishing-resistant) and ``amr``;
- an identity linked to nothing: a just-in-time account where the upstream
  may create one (``federation/linking.py``); else the person is asked to
  sign in once with their email and password (and second step) to link it
  (``steps/link_identity.py``); never linked because an address matches;
- an account that is locked, disabled or not activated is refused (audited);
- every page names the upstream and says what to do; nothing is a 500.
"""

from __future__ import annotations

import logging

from flask import redirect, render_template, request
from flask_babel import gettext as _

from ... import audit
from ...assurance import ACR_MFA, ACR_PASSWORD, AMR_FEDERATED, rank
from ...context import current_idp
from ...federation import linking, national_id, roundtrip, upstreams
from ...storage import Upstream, User, db
from ..blueprints import bp
from ..pipeline import Flow, first_factor_passed, load

log = logging.getLogger("visma_idp.federation")


def unavailable_page(row: Upstream):
    return render_template("federation/error.html", title=_("%(upstream)s does not answer", upstream=row.label),
                           message=_("We cannot reach %(upstream)s right now. Try again in a few minutes, or sign "
                                     "in with your email address and password.", upstream=row.label),
                           back=current_idp().url("login.email")), 503


def go(flow: Flow, row: Upstream, purpose: str, *, login_hint: str | None = None):
    """Send the browser to ``row`` for this sign-in (or the page saying it does not answer)."""
    try:
        return roundtrip.start(row, purpose, login_hint=login_hint, tx=flow.tx)
    except upstreams.UpstreamUnavailable as exc:
        log.warning("upstream %s: %s", row.name, exc.reason)
        audit.record("upstream_unavailable", outcome="failure", details={"upstream": row.name, "reason": exc.reason})
        db.session.commit()
        return unavailable_page(row)


@bp.post("/login/upstream/<name>")
def upstream_start(name: str):
    flow = load(request.form.get("tx"))
    row = upstreams.by_name(name)
    if row is None or not row.enabled:
        return render_template("error.html", title=_("This way to sign in is not available"),
                               message=_("Go back and sign in with your email address.")), 404
    return go(flow, row, roundtrip.NATIONAL_LOGIN if row.national else roundtrip.LOGIN)


def _refused(user: User, row: Upstream, method: str):
    audit.record("upstream_login_refused", outcome="failure", user_id=user.id, subject=user.email,
                 details={"upstream": row.name, "status": user.status, "method": method})
    db.session.commit()
    if user.status == "locked":
        return render_template("login_locked.html", email=user.email), 403
    return render_template("error.html", title=_("You cannot sign in"),
                           message=_("This account cannot sign in. Ask your administrator for help.")), 403


def _cannot_sign_in(row: Upstream, event: str, reason: str, message: str):
    """The upstream's answer names nobody we can sign in (audited as ``event``)."""
    audit.record(event, outcome="failure", details={"upstream": row.name, "reason": reason})
    db.session.commit()
    return render_template("federation/error.html", title=_("You cannot sign in with %(upstream)s", upstream=row.label),
                           message=message, back=current_idp().url("login.email")), 400


def _ask_for_proof(flow: Flow, row: Upstream, pending: dict, email: str | None, reason: str):
    state = flow.signin
    if state.proved_first and not state.established:
        state.finished()
    state.pending_link = {**pending, "at": current_idp().clock.now(), "upstream_name": row.name}
    state.identified = False
    if email:
        state.email = email
    audit.record("upstream_link_pending", details={"upstream": row.name, "reason": reason})
    db.session.commit()
    return redirect(current_idp().url("login.link_account", tx=flow.tx))


def on_login(result: roundtrip.Result):
    """A company upstream vouched for someone: sign in the linked account, make one, or ask for proof."""
    flow = load(result.extra.get("tx"))
    row = result.upstream
    try:
        ident = linking.identity(row, result.claims)
    except linking.IdentityRefused as exc:
        return _cannot_sign_in(row, "upstream_login_failed", exc.reason, _(
            "%(upstream)s did not tell us who you are. Ask your administrator for help.", upstream=row.label))
    entry, user = linking.linked_user(ident)
    if entry is None and linking.may_create(row, ident):
        user = linking.create_account(row, ident)
        entry, user = linking.linked_user(ident)
    if entry is not None and user is not None:
        if user.status != "active":
            return _refused(user, row, "upstream")
        linking.used(entry)
        amr = [AMR_FEDERATED, *(linking.upstream_amr(result.claims.get("amr")) if row.trust_amr else [])]
        acr = row.acr or ACR_PASSWORD
        return first_factor_passed(flow, user, amr=list(dict.fromkeys(amr)), acr=acr,
                                   password_at=None, both_factors=rank(acr) >= rank(ACR_MFA),
                                   details={"method": "upstream", "upstream": row.name})
    if not row.link_by_proof:
        audit.record("upstream_login_failed", outcome="failure",
                     details={"upstream": row.name, "reason": "not linked, and linking is off"})
        db.session.commit()
        return render_template("federation/error.html", title=_("No account is linked to this sign-in"),
                               message=_("Your %(upstream)s sign-in is not linked to an account here. Ask your "
                                         "administrator for help.", upstream=row.label),
                               back=current_idp().url("login.email")), 403
    return _ask_for_proof(flow, row, {"kind": "upstream", **ident.as_dict()}, ident.email, "not linked")


def on_national_login(result: roundtrip.Result):
    """National eID vouched for a number: sign in its account, or ask for proof to link it."""
    flow = load(result.extra.get("tx"))
    row = result.upstream
    try:
        found = national_id.proof(row, result.claims)
    except national_id.NumberRefused as exc:
        return _cannot_sign_in(row, "national_id_login_failed", exc.reason, _(
            "%(upstream)s did not give us a national identity number we can use.", upstream=row.label))
    entry = national_id.owner(found.number)
    if entry is not None:
        user = entry.user
        if user.status != "active":
            return _refused(user, row, "national_id")
        national_id.used(entry)
        assert found.acr is not None
        return first_factor_passed(flow, user, amr=found.amr, acr=found.acr, password_at=None,
                                   both_factors=rank(found.acr) >= rank(ACR_MFA),
                                   details={"method": "national_id", "upstream": row.name})
    idp = current_idp()
    pending = {"kind": "national", "upstream_id": row.id, "number_enc": idp.secrets.encrypt(found.number.encode()),
               "acr": found.acr, "amr": found.amr, "label": found.masked}
    return _ask_for_proof(flow, row, pending, None, "number not linked")


@bp.get("/login/link-account")
def link_account():
    """The page of an upstream identity waiting for its account to be proved."""
    flow = load(request.args.get("tx"))
    pending = flow.signin.pending_link
    if not pending:
        return redirect(current_idp().url("login.email", tx=flow.tx))
    row = upstreams.by_id(int(pending.get("upstream_id") or 0))
    return render_template("federation/link_account.html", pending=pending, upstream=row, tx=flow.tx,
                           email=flow.signin.email or "")


@bp.post("/login/link-account/cancel")
def cancel_link():
    flow = load(request.form.get("tx"))
    if flow.signin.pending_link:
        audit.record("upstream_link_cancelled", details={"upstream": flow.signin.pending_link.get("upstream_name")})
        db.session.commit()
    flow.signin.pending_link = None
    return redirect(current_idp().url("login.email", tx=flow.tx))
