"""Step-up (an app asks for more than the session has) and "Remember this
browser", with a real authenticator-app factor."""

from __future__ import annotations

import base64
import json

from tests.factors.test_totp import add_totp, code_at, mid_step
from tests.helpers import csrf, path_of, query

MFA = "urn:visma_idp:acr:mfa"
PHR = "urn:visma_idp:acr:phr"


def id_claims(flow, params) -> dict:
    resp = flow.token(params["code"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    payload = resp.get_json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def answer_second_step(flow, resp, secret, idp, remember=False):
    assert resp.status_code == 302 and "/login/verify" in resp.headers["Location"], resp.headers.get("Location")
    page = flow.client.get(path_of(resp.headers["Location"]))
    data = {"csrf_token": csrf(page.get_data(as_text=True)), "method": "totp", "code": code_at(secret, idp)}
    if remember:
        data["remember"] = "on"
    return flow.client.post(path_of(resp.headers["Location"]).replace("/login/verify", "/login/verify", 1), data=data)


def test_an_app_asking_for_two_factors_gets_a_step_up(flow, app, idp):
    first = id_claims(flow, flow.authorize())  # password only: the user has no factor yet
    assert first["acr"] == "urn:visma_idp:acr:pwd"
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.start(acr_values=MFA)
    assert "/login/verify" in resp.headers["Location"]  # no password asked again
    resp = flow.until_callback(answer_second_step(flow, resp, secret, idp))
    claims = id_claims(flow, query(resp.headers["Location"]))
    assert claims["acr"] == MFA
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["auth_time"] >= first["auth_time"]


def test_the_essential_acr_claim_triggers_it_too(flow, app, idp):
    flow.authorize()
    secret = add_totp(app, 1)
    mid_step(idp)
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}}})
    resp = flow.start(claims=claims_param)
    resp = flow.until_callback(answer_second_step(flow, resp, secret, idp))
    assert id_claims(flow, query(resp.headers["Location"]))["acr"] == MFA


def test_step_up_with_prompt_none_is_refused_with_interaction_required(flow, app):
    flow.authorize()
    add_totp(app, 1)
    resp = flow.start(acr_values=MFA, prompt="none")
    assert query(resp.headers["Location"])["error"] == "interaction_required"


def test_a_level_the_user_cannot_reach_is_voluntary_unless_essential(flow, app):
    flow.authorize()
    add_totp(app, 1)  # an app reaches mfa, never phr
    params = flow.authorize(acr_values=PHR)
    assert id_claims(flow, params)["acr"] == "urn:visma_idp:acr:pwd"  # the session's own, as acr_values are voluntary
    resp = flow.start(claims=json.dumps({"id_token": {"acr": {"essential": True, "values": [PHR]}}}))
    assert query(resp.headers["Location"])["error"] == "unmet_authentication_requirements"


def sign_out(client):
    page = client.get("/signout")
    client.post("/signout", data={"csrf_token": csrf(page.get_data(as_text=True))})


def test_remember_this_browser_skips_the_second_step_until_a_factor_changes(flow, app, idp):
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.login(flow.start())
    resp = flow.until_callback(answer_second_step(flow, resp, secret, idp, remember=True))
    assert id_claims(flow, query(resp.headers["Location"]))["acr"] == MFA
    sign_out(flow.client)

    resp = flow.login(flow.start())  # password only, remembered browser
    assert "/login/verify" not in resp.headers["Location"]
    claims = id_claims(flow, query(flow.until_callback(resp).headers["Location"]))
    assert claims["acr"] == "urn:visma_idp:acr:pwd" and claims["amr"] == ["pwd"]
    sign_out(flow.client)

    idp.clock.advance(31)
    add_totp(app, 1, name="Second phone")  # the factor set changed: the browser is no longer remembered
    from visma_idp.factors import factor_touched
    from visma_idp.storage import User, db

    with app.app_context():
        factor_touched(db.session.get(User, 1))
        db.session.commit()
    resp = flow.login(flow.start())
    assert "/login/verify" in resp.headers["Location"]


def test_a_remembered_browser_is_bound_to_the_user(flow, app, idp, make_user):
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.login(flow.start())
    flow.until_callback(answer_second_step(flow, resp, secret, idp, remember=True))
    sign_out(flow.client)
    other = make_user(email="ola@example.no", password="another horse battery")
    add_totp(app, other)
    resp = flow.login(flow.start(), email="ola@example.no", password="another horse battery")
    assert "/login/verify" in resp.headers["Location"]


def test_remember_expires(flow, app, idp):
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.login(flow.start())
    flow.until_callback(answer_second_step(flow, resp, secret, idp, remember=True))
    sign_out(flow.client)
    idp.clock.advance(31 * 86400)
    resp = flow.login(flow.start())
    assert "/login/verify" in resp.headers["Location"]
