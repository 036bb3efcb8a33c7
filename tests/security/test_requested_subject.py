"""A request that names its user gets a code for that user or none at all.

OIDC Core §5.5.1: a ``claims`` request for ``sub`` with a ``value`` (in the
ID token or UserInfo member) must never produce a code for someone else, even
one with an active session. ``id_token_hint`` (§3.1.2.1) names the user the
same way, and one rule covers both (``oidc/checks/subject.py``):

- a session of another user: sign in again (``prompt=none``: ``login_required``);
- the person who then signs in is still not the named user: ``login_required``
  to the client, never a code;
- a ``sub`` value that is not a string: ``invalid_request``.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import query

OLA = ("ola@example.no", "another long password")


@pytest.fixture
def subs(app, flow, make_user):
    """Kari (flow's user) and Ola; returns their subs."""
    from visma_idp.storage import queries

    make_user(email=OLA[0], password=OLA[1], name="Ola Nordmann")
    with app.app_context():
        return {"kari": queries.user_by_email("kari@example.no").sub, "ola": queries.user_by_email(OLA[0]).sub}


def as_ola(flow) -> None:
    flow.email, flow.password = OLA


def id_token_sub(app, flow, params) -> str:
    from tests.security.forge import jwt_parts

    assert "code" in params, params
    resp = flow.token(params["code"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return jwt_parts(resp.get_json()["id_token"])[1]["sub"]


def sub_claims(member: str, value) -> str:
    return json.dumps({member: {"sub": {"value": value}}})


def assert_error(flow, resp, error: str) -> None:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    location = resp.headers["Location"]
    assert location.startswith(flow.redirect_uri), location
    params = query(location)
    assert "code" not in params, params
    assert params["error"] == error, params
    assert params["state"] == flow.last["state"]


def signed_in_as_kari(flow) -> None:
    assert "code" in flow.authorize()


# -- a session of another user ----------------------------------------------------

@pytest.mark.parametrize("member", ["id_token", "userinfo"])
def test_sub_of_another_user_with_prompt_none_is_login_required(flow, subs, member):
    signed_in_as_kari(flow)
    resp = flow.start(prompt="none", claims=sub_claims(member, subs["ola"]))
    assert_error(flow, resp, "login_required")


@pytest.mark.parametrize("member", ["id_token", "userinfo"])
def test_sub_of_another_user_asks_for_a_new_login(app, flow, subs, member):
    signed_in_as_kari(flow)
    resp = flow.start(claims=sub_claims(member, subs["ola"]))
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"], resp.headers["Location"]
    as_ola(flow)
    params = query(flow.until_callback(resp).headers["Location"])
    assert id_token_sub(app, flow, params) == subs["ola"]


@pytest.mark.parametrize("member", ["id_token", "userinfo"])
def test_the_wrong_user_signing_in_gets_the_client_an_error(flow, subs, audit_rows, member):
    signed_in_as_kari(flow)
    resp = flow.start(claims=sub_claims(member, subs["ola"]))
    resp = flow.login(resp)  # Kari signs in again, not Ola
    assert_error(flow, resp, "login_required")
    refused = audit_rows("authorization_refused")
    assert [(r["outcome"], r["client_id"], r["details"]["error"]) for r in refused] == [
        ("failure", "expense", "login_required")]


def test_the_wrong_user_signing_in_with_prompt_login(flow, subs):
    signed_in_as_kari(flow)
    resp = flow.start(prompt="login", claims=sub_claims("id_token", subs["ola"]))
    assert_error(flow, flow.login(resp), "login_required")


def test_no_session_and_the_wrong_user_signs_in(flow, subs):
    resp = flow.start(claims=sub_claims("id_token", subs["ola"]))
    assert "/login" in resp.headers["Location"]
    assert_error(flow, flow.login(resp), "login_required")


def test_no_session_and_the_named_user_signs_in(app, flow, subs):
    resp = flow.start(claims=sub_claims("id_token", subs["ola"]))
    as_ola(flow)
    params = query(flow.until_callback(resp).headers["Location"])
    assert id_token_sub(app, flow, params) == subs["ola"]


def test_sub_of_the_signed_in_user_needs_no_new_login(app, flow, subs):
    signed_in_as_kari(flow)
    resp = flow.start(prompt="none", claims=sub_claims("id_token", subs["kari"]))
    assert id_token_sub(app, flow, query(resp.headers["Location"])) == subs["kari"]


def test_sub_member_without_a_value_is_no_requirement(app, flow, subs):
    signed_in_as_kari(flow)
    for claims in ({"id_token": {"sub": None}}, {"id_token": {"sub": {"essential": True}}}):
        resp = flow.start(prompt="none", claims=json.dumps(claims))
        assert id_token_sub(app, flow, query(resp.headers["Location"])) == subs["kari"]


# -- id_token_hint: the same rule --------------------------------------------------

def _kari_id_token(flow) -> str:
    return flow.tokens()["id_token"]


def test_hint_naming_someone_else_after_a_fresh_login_is_an_error(app, flow, subs):
    """Today's code ignored the hint once the login was fresh, and gave a code for the wrong user."""
    kari_hint = _kari_id_token(flow)
    flow.client = app.test_client()  # another browser, signed in as nobody
    as_ola(flow)
    resp = flow.start(id_token_hint=kari_hint)
    resp = flow.login(resp)  # Ola signs in, the hint names Kari
    assert_error(flow, resp, "login_required")


def test_hint_naming_someone_else_asks_for_a_new_login_then_works(app, flow, subs):
    kari_hint = _kari_id_token(flow)
    as_ola(flow)
    resp = flow.start(prompt="login")
    params = query(flow.until_callback(resp).headers["Location"])
    assert id_token_sub(app, flow, params) == subs["ola"]  # the browser now belongs to Ola
    flow.email, flow.password = "kari@example.no", "correct horse battery"
    resp = flow.start(id_token_hint=kari_hint)
    assert "/login" in resp.headers["Location"]
    params = query(flow.until_callback(resp).headers["Location"])
    assert id_token_sub(app, flow, params) == subs["kari"]


def test_hint_and_claims_naming_two_users_is_invalid_request(flow, subs):
    kari_hint = _kari_id_token(flow)
    resp = flow.start(id_token_hint=kari_hint, claims=sub_claims("id_token", subs["ola"]))
    assert_error(flow, resp, "invalid_request")


def test_hint_and_claims_naming_the_same_user(app, flow, subs):
    kari_hint = _kari_id_token(flow)
    resp = flow.start(prompt="none", id_token_hint=kari_hint, claims=sub_claims("userinfo", subs["kari"]))
    assert id_token_sub(app, flow, query(resp.headers["Location"])) == subs["kari"]


# -- malformed ----------------------------------------------------------------------

@pytest.mark.parametrize("sub", [{"value": 5}, {"value": None}, {"value": ["x"]}, {"value": {"a": 1}},
                                 {"value": True}, "a-string", 7, ["x"]])
@pytest.mark.parametrize("member", ["id_token", "userinfo"])
def test_sub_value_that_is_not_a_string_is_invalid_request(flow, subs, member, sub):
    signed_in_as_kari(flow)
    resp = flow.start(claims=json.dumps({member: {"sub": sub}}))
    assert_error(flow, resp, "invalid_request")
