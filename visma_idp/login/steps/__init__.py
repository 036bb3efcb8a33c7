"""The steps of a sign-in, in order (``login/pipeline.py`` runs them).

Each module opens with the rule it enforces and has one function,
``run(flow) -> Outcome`` (done, show this page, or refused). Adding a step is
one module and one line here.
"""

from __future__ import annotations

from . import consent, enrolment, establish, first_factor, identify, second_factor, select_account

STEPS = (
    identify,  # who: the email address (home-realm discovery to come)
    first_factor,  # password, passkey or one-time link (upstream providers and national eID to come)
    second_factor,  # the second step, or a step-up of a signed-in person
    enrolment,  # a required second factor is set up
    establish,  # the SSO session starts (a notice, if any, is shown once)
    # agreement choice (to come)
    select_account,  # prompt=select_account: continue as the signed-in person, or another
    consent,  # the app's scopes
)
