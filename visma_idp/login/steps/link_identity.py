"""Step: link an upstream identity (or a national identity number) to the
account this sign-in proved.

Rules:
- it has work only when an upstream vouched for someone linked to nothing
  here and the person chose to prove their account (``ways/upstream.py``
  set ``pending_link``);
- the proof is this sign-in's password or passkey, and the second step when
  the account has one (``steps/second_factor.py`` does not let "remember
  this browser" skip it while a link waits); an upstream, national eID or a
  one-time login link is no proof: then nothing is linked;
- a link waits ``UPSTREAM_ROUNDTRIP_SECONDS`` at most;
- the outcome is told once, after the session started (``establish``'s
  notice): linked, already linked, or linked to another account (whose
  address is shown masked; its owner is emailed).
"""

from __future__ import annotations

from flask_babel import gettext as _

from ... import audit
from ...assurance import AMR_HARDWARE_KEY, AMR_PASSWORD, AMR_SOFTWARE_KEY
from ...context import current_idp
from ...federation import linking, national_id, upstreams
from ..pipeline import DONE, Flow, Outcome

PROOF_AMR = {AMR_PASSWORD, AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY}


def run(flow: Flow) -> Outcome:
    state = flow.signin
    pending = state.pending_link
    if not pending or not flow.authenticating or not state.proved_first or state.step_up:
        return DONE
    user = flow.user
    if user is None:
        return DONE
    state.pending_link = None
    state.notice_about = "linked"
    idp = current_idp()
    row = upstreams.by_id(int(pending.get("upstream_id") or 0))
    expired = idp.clock.now() - int(pending.get("at") or 0) > idp.settings["UPSTREAM_ROUNDTRIP_SECONDS"]
    proved = bool(PROOF_AMR & set(state.amr)) and "fed" not in state.amr
    if row is None or expired or not proved:
        audit.record("upstream_link_dropped", outcome="failure", user_id=user.id,
                     details={"upstream": pending.get("upstream_name"),
                              "reason": "expired" if expired else "no proof" if not proved else "upstream gone"})
        return DONE
    if pending.get("kind") == "national":
        number = idp.secrets.decrypt(str(pending["number_enc"])).decode()
        outcome = national_id.link(user, row, national_id.Proof(number, pending.get("acr"), pending.get("amr") or []))
        if outcome.status == "other":
            state.notice = _("The national identity number %(number)s is linked to another account "
                             "(%(email)s), so it was not linked to this one. To move it, sign in to that account, "
                             "unlink it on My details, then link it here.", number=outcome.masked,
                             email=outcome.other_email)
        elif outcome.status == "has_other":
            state.notice = _("This account has another national identity number linked (%(number)s). Unlink it on "
                             "My details first.", number=outcome.masked)
        else:
            state.notice = _("Your national identity number %(number)s is now linked to this account. Next time "
                             "you can sign in with %(upstream)s.", number=outcome.masked, upstream=row.label)
        return DONE
    entry = linking.link(user, row, linking.Identity.from_dict(pending))
    if entry is None:
        state.notice = _("Your %(upstream)s sign-in is linked to another account, so it was not linked to this one.",
                         upstream=row.label)
    else:
        state.notice = _("Your %(upstream)s sign-in (%(label)s) is now linked to this account. Next time you can "
                         "sign in with %(upstream)s.", upstream=row.label, label=entry.label)
    return DONE
