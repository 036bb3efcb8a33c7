"""Removing a factor (``factors/removal.py``): a user who must have a second
factor keeps the last one, whichever kind it is; everyone else may remove it."""

from __future__ import annotations

import pytest

from tests.account.test_details import audit_events, page, signed_in_browser
from tests.helpers import csrf

KEEP_ONE = "Your account must have a way to confirm your sign-in. Add another one before you remove this one."
REMOVE_URL = {"totp": "/account/security/totp/{}/remove", "sms": "/account/security/sms/{}/remove",
              "webauthn": "/account/security/webauthn/{}/remove"}


def add_factor(app, uid: int, kind: str, *, confirmed: bool = True) -> int:
    from visma_idp.storage import Factor, db

    with app.app_context():
        now = app.extensions["visma_idp"].clock.now()
        row = Factor(user_id=uid, kind=kind, name=f"My {kind}", created_at=now, confirmed_at=now if confirmed else None,
                     phone="+4791234567" if kind == "sms" else None,
                     credential_id=f"cred-{uid}-{now}" if kind == "webauthn" else None)
        db.session.add(row)
        db.session.commit()
        return row.id


def set_user(app, uid: int, **values) -> None:
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.get(User, uid)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


def removable(app, uid: int, factor_id: int):
    """None when the factor may go, else the refusal (status, message)."""
    from visma_idp.factors.removal import RemovalRefused, ensure_removable
    from visma_idp.storage import Factor, User, db

    with app.test_request_context("/"):
        try:
            ensure_removable(user=db.session.get(User, uid), factor=db.session.get(Factor, factor_id))
        except RemovalRefused as exc:
            return exc.status, exc.message
    return None


@pytest.mark.parametrize("reason", ["MFA_REQUIRED", "mfa_required", "must_enrol_factor"])
def test_the_last_factor_of_a_user_who_must_have_one_stays(app, idp, make_user, reason):
    uid = make_user()
    only = add_factor(app, uid, "totp")
    assert removable(app, uid, only) is None  # nobody requires it yet
    if reason == "MFA_REQUIRED":
        idp.settings["MFA_REQUIRED"] = True
    else:
        set_user(app, uid, **{reason: True})
    assert removable(app, uid, only) == (409, KEEP_ONE)
    pending = add_factor(app, uid, "sms", confirmed=False)  # not confirmed: does not count
    assert removable(app, uid, only) == (409, KEEP_ONE)
    other = add_factor(app, uid, "webauthn")
    assert removable(app, uid, only) is None and removable(app, uid, other) is None
    assert removable(app, uid, pending) is None


@pytest.mark.parametrize("kind", ["totp", "sms", "webauthn"])
def test_every_remove_view_keeps_the_last_factor_with_409(app, make_user, kind):
    uid = make_user()
    client = signed_in_browser(app)  # no factor yet: signed in with the password, which is recent
    factor_id = add_factor(app, uid, kind)
    set_user(app, uid, mfa_required=True)
    url = REMOVE_URL[kind].format(factor_id)
    resp = client.post(url, data={"csrf_token": csrf(page(client))})
    assert resp.status_code == 409 and KEEP_ONE in resp.text
    assert audit_events(app, "factor_removed", uid) == []
    set_user(app, uid, mfa_required=False)  # no longer required: it may go
    resp = client.post(url, data={"csrf_token": csrf(page(client))})
    assert resp.status_code in (302, 303)
    assert [e.details["factor_id"] for e in audit_events(app, "factor_removed", uid)] == [factor_id]
