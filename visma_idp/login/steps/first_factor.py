"""Step: the first factor (who the person is, proved).

Rules:
- a way in proves it: the password (``ways/password.py``, the page this step
  shows), a passkey from the email page (``ways/passkey.py``: it proves the
  second factor too), or a one-time login link from the mailbox
  (``ways/link.py``), or an upstream provider or national eID
  (``ways/upstream.py``); each ends in :func:`login.pipeline.first_factor_passed`,
  so none of them can skip a later step;
- a step-up, an account choice or consent alone skips it.

Adding a way in is one module in ``ways/`` and one line in :data:`WAYS_IN`.
"""

from __future__ import annotations

from ..pipeline import DONE, Flow, Outcome, Show
from ..ways import link, passkey, password, upstream

WAYS_IN = (
    password,  # the email page, then the password page
    passkey,  # a discoverable credential from the email page (both factors at once)
    link,  # a one-time login link sent by "forgot password"
    upstream,  # a company's upstream provider, or national eID (federation/)
)


def run(flow: Flow) -> Outcome:
    if not flow.authenticating or flow.signin.proved_first:
        return DONE
    return Show("login.password")
