"""Step: the account chooser (``prompt=select_account``).

Rules:
- shown when the protocol asks for it (``oidc/prompts.py``: the app sent
  ``prompt=select_account`` and nobody signed in since its request started),
  at the sign-in's own address (``/authorize/continue``);
- "continue" goes on as the signed-in person; "use another account" (here
  or on the agreement chooser) sends them through the sign-in again (the protocol asks for a login until
  someone signs in).
"""

from __future__ import annotations

from flask import render_template

from ...browser import interaction
from ...browser.interaction import AGREEMENT, SELECT_ACCOUNT
from ...browser.sso import current_session
from ...context import current_idp
from ..pipeline import DONE, Flow, Outcome, Show

CHOICES = ("continue", "other")


def run(flow: Flow) -> Outcome:
    ix = flow.interaction
    if ix is None or ix.prompt != SELECT_ACCOUNT or ix.account or current_session() is None:
        return DONE
    return Show(render=page)


def page(flow: Flow):
    ix, sess = flow.interaction, current_session()
    assert ix is not None and sess is not None
    client = current_idp().clients.get(ix.client_id)
    return render_template("select_account.html", user=sess.user, client=client, tx=ix.id)


def answer(flow: Flow, choice: str) -> None:
    ix = flow.interaction
    if ix is None or choice not in CHOICES:
        return
    if ix.prompt == SELECT_ACCOUNT or (ix.prompt == AGREEMENT and choice == "other"):  # the agreement chooser's too
        ix.account = choice
        interaction.save(ix)
