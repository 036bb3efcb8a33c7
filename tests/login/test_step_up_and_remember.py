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


def remember_cookie_set(resp) -> bool:
    return any("visma_idp_rb=" in value for value in resp.headers.getlist("Set-Cookie"))


def test_remember_is_refused_for_a_recovery_code_even_when_posted(app, idp, make_user):
    """The page hides the box for recovery codes; a hand-made post with
    remember=on must not set the cookie either."""
    from tests.factors.test_recovery_codes import first_codes
    from tests.factors.test_totp import to_second_step

    _uid, codes, _browser = first_codes(app, idp, make_user)
    client, page = to_second_step(app, method="recovery")
    assert 'name="remember"' not in page
    resp = client.post("/login/verify", data={"csrf_token": csrf(page), "method": "recovery", "code": codes[0],
                                              "remember": "on"})
    assert resp.status_code == 200 and "You used a recovery code" in resp.text
    assert not remember_cookie_set(resp)


def test_remember_is_refused_for_an_admin_issued_code_even_when_posted(app, idp, make_user):
    from tests.factors.test_totp import to_second_step
    from visma_idp.admin import one_time_codes
    from visma_idp.storage import User, db

    uid = make_user()
    add_totp(app, uid)
    with app.app_context():
        issued = one_time_codes.issue(None, db.session.get(User, uid), via="cli")
        db.session.commit()
    client, page = to_second_step(app, method="admin_code")
    assert 'name="remember"' not in page
    resp = client.post("/login/verify", data={"csrf_token": csrf(page), "method": "admin_code",
                                              "code": issued.code, "remember": "on"})
    assert resp.status_code == 302, resp.text
    assert not remember_cookie_set(resp)


def test_remember_is_refused_during_a_step_up_even_when_posted(flow, app, idp):
    flow.authorize()  # signed in with the password only
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.start(acr_values=MFA)
    page = flow.client.get(path_of(resp.headers["Location"])).text
    assert 'name="remember"' not in page and "The app asks for a stronger sign-in" in page
    resp = answer_second_step(flow, resp, secret, idp, remember=True)
    assert not remember_cookie_set(resp)
    flow.until_callback(resp)
    sign_out(flow.client)
    resp = flow.login(flow.start())
    assert "/login/verify" in resp.headers["Location"]  # not remembered


def test_remember_is_honoured_for_an_authenticator_app(flow, app, idp):
    """The control: the same post with a code from an app sets the cookie."""
    secret = add_totp(app, 1)
    mid_step(idp)
    resp = flow.login(flow.start())
    page = flow.client.get(path_of(resp.headers["Location"])).text
    assert 'name="remember"' in page
    assert remember_cookie_set(answer_second_step(flow, resp, secret, idp, remember=True))
