"""``active: false`` and deleting a User resource (``people.deactivate`` and
``people.forget``): the person leaves the agreement, their sessions working
in it end and its tokens are revoked; their sessions and tokens in another
agreement stay, and so does their account. A person left in no agreement has
their account disabled, and enabled again when the record is reactivated."""

from __future__ import annotations

import uuid

import pytest

from tests.provisioning.conftest import patch_body, user_body

PASSWORD = "correct horse battery staple"


def _sessions_and_tokens(app, user_id: int, agreements: dict[str, str]) -> dict[str, str]:
    """A live SSO session and a refresh token working in A, in B, and in no agreement; their ids."""
    from visma_idp.agreements import service
    from visma_idp.storage import SsoSession, Token, db

    out = {}
    with app.app_context():
        now = app.extensions["visma_idp"].clock.now()
        for label, public_id in (("a", agreements["a"]), ("b", agreements["b"]), ("none", None)):
            agreement_id = service.find(public_id).id if public_id else None
            session_id = uuid.uuid4().hex * 2
            db.session.add(SsoSession(id=session_id, user_id=user_id, created_at=now, auth_time=now,
                                      expires_at=now + 3600, last_seen_at=now, amr=["pwd"],
                                      agreement_id=agreement_id))
            token_digest = uuid.uuid4().hex * 2
            db.session.add(Token(kind="refresh", digest=token_digest, client_id="expense", user_id=user_id,
                                 scope="openid", family_id=str(uuid.uuid4()), issued_at=now, expires_at=now + 86400,
                                 agreement_id=agreement_id))
            out[f"session_{label}"], out[f"token_{label}"] = session_id, token_digest
        db.session.commit()
    return out


def _alive(app, made: dict[str, str]) -> dict[str, bool]:
    """Which of them still work: the session not ended, the token not revoked."""
    from visma_idp.storage import SsoSession, Token, db

    with app.app_context():
        out = {}
        for label, key in made.items():
            if label.startswith("session"):
                out[label] = db.session.get(SsoSession, key).ended_at is None
            else:
                row = db.session.scalar(db.select(Token).where(Token.digest == key))
                out[label] = row.revoked_at is None
        return out


def _account(app, user_id: int, agreements: dict[str, str]) -> tuple[bool, dict[str, set[str]]]:
    """(is_active, {"a"/"b": roles}) of the person."""
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    names = {v: k for k, v in agreements.items()}
    with app.app_context():
        user = db.session.get(User, user_id)
        return user.is_active, {names[m.agreement.public_id]: {r["role"] for r in m.roles or []}
                                for m in service.memberships_of(user_id)}


def _member(app, user_id: int, *where: tuple[str, list[str]]) -> None:
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.get(User, user_id)
        for public_id, roles in where:
            service.add_member(service.find(public_id), user, roles)
        db.session.commit()


def _off(scim, resource_id: str, how: str) -> None:
    """Take the record away as a payroll system does: PATCH active, a full PUT, or DELETE."""
    if how == "patch":
        resp = scim.patch(f"/Users/{resource_id}", patch_body({"op": "replace", "path": "active", "value": False}))
    elif how == "put":
        resp = scim.put(f"/Users/{resource_id}", user_body("kari", "kari@acme.no", active=False))
    else:
        resp = scim.delete(f"/Users/{resource_id}")
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)


def _on(scim, resource_id: str) -> None:
    resp = scim.patch(f"/Users/{resource_id}", patch_body({"op": "replace", "path": "active", "value": True}))
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)


def _drivers(scim, *member_ids: str) -> None:
    resp = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Drivers",
                                 "members": [{"value": m} for m in member_ids]})
    assert resp.status_code == 201


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_a_person_also_in_b_leaves_a_only(app, agreements, scim_a, make_user, how):
    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]), (agreements["b"], ["employee", "approver"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _drivers(scim_a, record)
    assert _account(app, kari, agreements) == (True, {"a": {"employee", "drivers"}, "b": {"employee", "approver"}})
    made = _sessions_and_tokens(app, kari, agreements)

    _off(scim_a, record, how)

    assert _alive(app, made) == {"session_a": False, "token_a": False, "session_b": True, "token_b": True,
                                 "session_none": True, "token_none": True}
    assert _account(app, kari, agreements) == (True, {"b": {"employee", "approver"}})


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_a_person_only_in_a_has_the_account_disabled(app, agreements, scim_a, make_user, how):
    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    made = _sessions_and_tokens(app, kari, agreements)
    assert all(_alive(app, made).values())

    _off(scim_a, record, how)

    assert _alive(app, made) == dict.fromkeys(made, False)  # every session and token, B's and none's too
    assert _account(app, kari, agreements) == (False, {})


def test_reactivation_gives_back_the_account_and_the_roles(app, agreements, scim_a, make_user):
    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _drivers(scim_a, record)
    made = _sessions_and_tokens(app, kari, agreements)

    _off(scim_a, record, "patch")
    assert _account(app, kari, agreements) == (False, {})
    _on(scim_a, record)

    assert _account(app, kari, agreements) == (True, {"a": {"employee", "drivers"}})
    assert not any(_alive(app, made).values())  # what ended stays ended: the person signs in again


def test_reactivation_of_a_person_also_in_b(app, agreements, scim_a, make_user):
    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]), (agreements["b"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _drivers(scim_a, record)

    _off(scim_a, record, "patch")
    _on(scim_a, record)

    assert _account(app, kari, agreements) == (True, {"a": {"employee", "drivers"}, "b": {"employee"}})


def test_a_pending_person_created_by_the_push(app, agreements, scim_a):
    """A person the push created (pending, only in A) is disabled and enabled the same way."""
    from visma_idp.storage import queries

    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    with app.app_context():
        kari = queries.user_by_email("kari@acme.no").id
    assert _account(app, kari, agreements) == (True, {"a": set()})

    _off(scim_a, record, "patch")
    assert _account(app, kari, agreements) == (False, {})
    _on(scim_a, record)
    assert _account(app, kari, agreements) == (True, {"a": set()})


def test_an_account_disabled_otherwise_stays_disabled(app, agreements, scim_a, make_user):
    """Reactivating enables only an account the deactivation disabled, not one an operator disabled."""
    from visma_idp.storage import User, db

    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]), (agreements["b"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _off(scim_a, record, "patch")
    with app.app_context():
        db.session.get(User, kari).is_active = False  # an operator's doing
        db.session.commit()
    _on(scim_a, record)
    assert _account(app, kari, agreements)[0] is False


def test_deactivation_is_audited_in_a(app, agreements, scim_a, make_user):
    from visma_idp.storage import AuditEvent, db

    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]), (agreements["b"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _sessions_and_tokens(app, kari, agreements)
    _off(scim_a, record, "patch")
    with app.app_context():
        row = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "provisioning_deactivated"))
        assert row.agreement == agreements["a"] and row.user_id == kari
        assert row.details["sessions"] == 1 and row.details["tokens"] == 1
        assert row.details["via"] == "provisioning:payroll-a"


def test_a_person_deleted_and_pushed_again_gets_the_account_back(app, agreements, scim_a, make_user):
    """A rehire: the payroll system deleted the record, then creates it again."""
    kari = make_user("kari@acme.no", PASSWORD)
    _member(app, kari, (agreements["a"], ["employee"]))
    record = scim_a.post("/Users", user_body("kari", "kari@acme.no")).get_json()["id"]
    _off(scim_a, record, "delete")
    assert _account(app, kari, agreements) == (False, {})

    assert scim_a.post("/Users", user_body("kari", "kari@acme.no")).status_code == 201
    assert _account(app, kari, agreements) == (True, {"a": set()})
