"""Step: who is signing in (the email page, ``/login``).

Rules:
- the page asks for the email address and never says whether it has an
  account; an address that does not parse (``addresses.py``) gets
  a translated error (400) and nothing else happens;
- a new sign-in always shows the page, prefilled with the app's
  ``login_hint`` or the address this browser typed last;
- answering it with another address than the one a first factor was proved
  for starts the sign-in over;
- home-realm discovery: an address in a domain an upstream provider serves
  goes straight to that provider (``ways/upstream.py``), with the address as
  its ``login_hint``; except while an upstream identity waits for the
  password that links it (``steps/link_identity.py``);
- the page offers a button per upstream provider and national eID;
- a step-up (the person is signed in) or an account choice or consent alone
  skips it.
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from ... import addresses
from ...federation import roundtrip, upstreams
from ..blueprints import bp
from ..pipeline import DONE, Flow, Outcome, Show, advance, load
from ..ways.upstream import go

MAX_EMAIL = addresses.MAX_TYPED


def run(flow: Flow) -> Outcome:
    if not flow.authenticating or flow.signin.step_up:
        return DONE
    if flow.signin.identified or flow.signin.proved_first:
        return DONE
    return Show("login.email")


def page(flow: Flow, *, email: str, error: str | None = None, status: int = 200, passkey_error: str | None = None):
    found = upstreams.directory()
    upstreams.allow_forms_to(list(found.endpoints))  # a button, or home-realm discovery, ends there
    return render_template("login_email.html", email=email, tx=flow.tx, error=error, passkey_error=passkey_error,
                           company_upstreams=found.companies, national_upstreams=found.national,
                           linking=bool(flow.signin.pending_link)), status


@bp.route("/login", methods=["GET", "POST"])
def email():
    flow = load(request.values.get("tx"))
    if request.method == "GET":
        hint = (flow.interaction.params.get("login_hint") or "") if flow.interaction else ""
        return page(flow, email=hint[:MAX_EMAIL] or flow.signin.email or "")
    value = (request.form.get("email") or "").strip()[:MAX_EMAIL]
    try:
        # one address, in its stored spelling: no control characters reach the logs or the throttle keys
        address = addresses.parse(request.form.get("email"))
    except addresses.AddressError as exc:
        return page(flow, email=value, error=addresses.explain(exc, _("Enter your email address, like name@example.com.")),
                    status=400)
    state = flow.signin
    if state.proved_first and state.email != address.email:
        state.finished()  # another person: what was proved belongs to someone else
    state.email, state.identified = address.email, True
    served_by = None if state.pending_link else upstreams.directory().domains.get(address.domain)
    row = upstreams.by_name(served_by) if served_by else None
    if row is not None and row.enabled:  # home-realm discovery
        return go(flow, row, roundtrip.LOGIN, login_hint=address.email)
    return advance(flow, in_place=False)
