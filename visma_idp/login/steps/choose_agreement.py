"""Step: the agreement (company) to work in, chosen on the agreement chooser.

Rules (the protocol decides when: ``oidc/prompts.py``, prompt ``agreement``):
- the chooser lists the person's agreements, the last used first, with a
  search box (filtered in the page as they type, and by ``q`` on the server
  for a browser without script); choosing one goes on with it, "Use another
  account" signs in again; only an agreement the person belongs to is taken;
- a person without any agreement, for an app that requires one, gets a page
  that says so and whom to ask (not an empty app);
- an agreement that requires a level the person cannot reach (no second
  factor) gets a page saying what to set up.
"""

from __future__ import annotations

from flask import render_template, request

from ...browser import interaction
from ...browser.interaction import AGREEMENT
from ...browser.sso import current_session
from ...context import current_idp
from ...storage import queries
from ..pipeline import DONE, Flow, Outcome, Show

MAX_QUERY = 100


def run(flow: Flow) -> Outcome:
    ix, sess = flow.interaction, current_session()
    if ix is None or ix.prompt != AGREEMENT or sess is None:
        return DONE
    if ix.acr is None and ix.agreement and any(
            m.agreement.public_id == ix.agreement for m in queries.memberships_of(sess.user_id)):
        return DONE  # chosen: the protocol takes it from here
    return Show(render=page)


def page(flow: Flow):
    ix, sess = flow.interaction, current_session()
    assert ix is not None and sess is not None
    client = current_idp().clients.get(ix.client_id)
    members = queries.memberships_of(sess.user_id)
    if ix.acr is not None:  # the chosen agreement requires a factor this person does not have
        chosen = next((m for m in members if m.agreement.public_id == ix.agreement), None) or (
            members[0] if members else None)
        return render_template("login/agreement_needs_factor.html", user=sess.user, client=client, tx=ix.id,
                               agreement=chosen.agreement if chosen else None), 403
    if not members:
        return render_template("login/no_agreement.html", user=sess.user, client=client, tx=ix.id), 403
    q = " ".join((request.args.get("q") or "").split())[:MAX_QUERY]
    shown = [m for m in members if not q or q.lower() in m.agreement.name.lower() or q in m.agreement.org_number]
    return render_template("login/choose_agreement.html", user=sess.user, client=client, tx=ix.id, q=q,
                           memberships=shown, total=len(members), current=sess.agreement_id)


def answer(flow: Flow, choice: str) -> None:
    """Record the agreement chosen on the chooser (one of the person's only)."""
    ix, sess = flow.interaction, current_session()
    if ix is None or ix.prompt != AGREEMENT or sess is None:
        return
    if any(m.agreement.public_id == choice for m in queries.memberships_of(sess.user_id)):
        ix.agreement, ix.account = choice, "continue"
        interaction.save(ix)
