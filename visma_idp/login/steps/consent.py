"""Step: consent to the app's scopes.

Rules:
- shown when the protocol asks for it (``oidc/prompts.py``: the client is
  not first-party, and ``prompt=consent`` or the remembered consent lacks a
  scope), at the sign-in's own address (``/authorize/continue``), naming the
  app and what it will see;
- "Allow" remembers the scopes for this user and client (added to what was
  allowed before) and is audited ``consent_granted``; "Deny" is audited
  ``consent_denied`` and the app gets ``access_denied``;
- the answer counts for this request only (``Interaction.consent``): the
  protocol decides with it, and issues offline access (a refresh token) only
  when consent was given here or the client is first-party (OIDC Core §11).
"""

from __future__ import annotations

from flask import render_template

from ... import audit
from ...browser import interaction
from ...browser.interaction import CONSENT
from ...browser.sso import current_session
from ...context import current_idp
from ...storage import Consent, db, queries
from ..pipeline import DONE, Flow, Outcome, Show

DECISIONS = ("allow", "deny")


def run(flow: Flow) -> Outcome:
    ix = flow.interaction
    if ix is None or ix.prompt != CONSENT or ix.consent or current_session() is None:
        return DONE
    return Show(render=page)


def _client_and_scopes(flow: Flow):
    ix = flow.interaction
    assert ix is not None
    client = current_idp().clients.get(ix.client_id)
    scopes = (client.get_allowed_scope(ix.params.get("scope")) or "").split() if client is not None else []
    return client, scopes


def page(flow: Flow):
    client, scopes = _client_and_scopes(flow)
    sess = current_session()
    assert sess is not None
    return render_template("consent.html", client=client, scopes=scopes, user=sess.user, tx=flow.tx)


def answer(flow: Flow, decision: str) -> None:
    ix, sess = flow.interaction, current_session()
    if ix is None or sess is None or ix.prompt != CONSENT or decision not in DECISIONS:
        return
    client, scopes = _client_and_scopes(flow)
    if client is None:
        return
    user = sess.user
    if decision == "allow":
        now = current_idp().clock.now()
        row = queries.consent_for(user.id, client.client_id)
        if row is None:
            row = Consent(user_id=user.id, client_id=client.client_id, scopes=[], granted_at=now)
            db.session.add(row)
        row.scopes = sorted(set(row.scopes) | set(scopes))
        row.granted_at = now
        audit.record("consent_granted", user_id=user.id, client_id=client.client_id,
                     details={"scope": " ".join(scopes)})
    else:
        audit.record("consent_denied", user_id=user.id, client_id=client.client_id,
                     details={"scope": " ".join(scopes)})
    ix.consent = decision
    interaction.save(ix)
