"""The steps of a sign-in, in order (``login/pipeline.py`` runs them).

Each module opens with the rule it enforces and has one function,
``run(flow) -> Outcome`` (done, show this page, or refused). Adding a step is
one module and one line here.
"""

from __future__ import annotations

from . import (
    choose_agreement,
    consent,
    enrolment,
    establish,
    first_factor,
    identify,
    link_identity,
    second_factor,
    select_account,
)

STEPS = (
    identify,  # who: the email address (a domain an upstream serves goes to it)
    first_factor,  # password, passkey, one-time link, an upstream provider or national eID
    second_factor,  # the second step, or a step-up of a signed-in person
    enrolment,  # a required second factor is set up
    link_identity,  # an upstream identity waiting for this account's proof is linked
    establish,  # the SSO session starts (a notice, if any, is shown once)
    choose_agreement,  # the agreement (company) to work in, when the protocol asks
    select_account,  # prompt=select_account: continue as the signed-in person, or another
    consent,  # the app's scopes
)
