"""Agreements in the protocol: the active agreement in tokens and UserInfo,
choosing it at sign-in, switching without signing in again (a new
authorization, or the refresh token), leaving an agreement, the page for a
person without one, and an agreement that requires a second factor."""

from __future__ import annotations

import base64
import json
import re

import pyotp
import pytest

from tests.agreements import any_org_number
from tests.helpers import csrf, path_of, query

SCOPE = "openid agreements offline_access"


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def agreements_scope(app, flow):
    """The expense app may ask for the scope ``agreements``."""
    from visma_idp.storage import Client, db

    with app.app_context():
        expense = db.session.scalar(db.select(Client).where(Client.client_id == "expense"))
        expense.scope += " agreements"
        db.session.commit()
        app.extensions["visma_idp"].clients.invalidate("expense")


@pytest.fixture
def companies(app, flow, agreements_scope):
    """Kari is a member of Nordlys (approver in the expense app, employee everywhere)
    and of Fjord (employee); Tind has nobody."""
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    with app.test_request_context():
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        nordlys = service.create("Nordlys Regnskap AS", "974760673")
        fjord = service.create("Fjord Transport AS", "912345675" if _valid("912345675") else any_org_number("91234567"))
        tind = service.create("Tind AS", any_org_number("98765432"))
        service.add_member(nordlys, kari, ["employee"])
        service.add_member(nordlys, kari, ["approver"], client_id="expense")
        service.add_member(fjord, kari, ["employee"])
        db.session.commit()
        return {"nordlys": nordlys.public_id, "fjord": fjord.public_id, "tind": tind.public_id,
                "fjord_org": fjord.org_number}


def _valid(number: str) -> bool:
    from visma_idp.agreements.orgnr import InvalidOrgNumber, parse

    try:
        parse(number)
        return True
    except InvalidOrgNumber:
        return False


def _chooser(flow, resp):
    """Follow to the agreement chooser; (its page, the ids it offers)."""
    while resp.status_code == 302 and "/authorize/continue" in resp.headers["Location"]:
        resp = flow.client.get(path_of(resp.headers["Location"]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Choose a company" in html, (resp.status_code, html[:500])
    return resp, re.findall(r'name="agreement" value="([^"]+)"', html)


def _choose(flow, page, agreement_id):
    html = page.get_data(as_text=True)
    tx = re.search(r'name="tx" value="([^"]+)"', html).group(1)
    return flow.client.post("/authorize/continue", data={"tx": tx, "agreement": agreement_id, "csrf_token": csrf(html)})


def _code(flow, resp) -> str:
    resp = flow.until_callback(resp)
    params = query(resp.headers["Location"])
    assert "code" in params, params
    return params["code"]


def _tokens(flow, code) -> dict:
    resp = flow.token(code)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def _sign_in_choosing(flow, companies, which="nordlys", **params) -> dict:
    resp = flow.login(flow.start(scope=SCOPE, **params))
    page, offered = _chooser(flow, resp)
    assert set(offered) == {companies["nordlys"], companies["fjord"]}  # never Tind: Kari is not in it
    return _tokens(flow, _code(flow, _choose(flow, page, companies[which])))


def test_a_member_of_two_chooses_and_the_tokens_carry_it(flow, companies, make_client):
    tokens = _sign_in_choosing(flow, companies, "nordlys")
    id_token, access = _payload(tokens["id_token"]), _payload(tokens["access_token"])
    expected = {"id": companies["nordlys"], "name": "Nordlys Regnskap AS", "org_number": "974760673"}
    assert id_token["agreement"] == expected and access["agreement"] == expected
    assert id_token["roles"] == ["approver", "employee"]  # the expense app's own role and the agreement-wide one
    assert "agreements" not in id_token and "agreements" not in access  # tokens stay small
    info = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert info["agreement"] == expected
    assert sorted(a["name"] for a in info["agreements"]) == ["Fjord Transport AS", "Nordlys Regnskap AS"]


def test_roles_of_another_app_stay_out(flow, companies, make_client, app):
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    make_client("payroll", skip_consent=True)
    with app.test_request_context():
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        service.add_member(service.find(companies["nordlys"]), kari, ["payroll_admin"], client_id="payroll")
        db.session.commit()
    tokens = _sign_in_choosing(flow, companies, "nordlys")
    assert "payroll_admin" not in _payload(tokens["id_token"])["roles"]


def test_switching_keeps_the_sign_in_and_changes_the_agreement(flow, companies):
    first = _payload(_sign_in_choosing(flow, companies, "nordlys")["id_token"])
    resp = flow.start(scope=SCOPE, prompt="select_account")
    assert "/login" not in resp.headers.get("Location", "")  # no password asked
    page, offered = _chooser(flow, resp)
    assert offered[0] == companies["nordlys"]  # the last used first
    second = _payload(_tokens(flow, _code(flow, _choose(flow, page, companies["fjord"])))["id_token"])
    assert second["agreement"]["id"] == companies["fjord"]
    assert (second["auth_time"], second["sid"]) == (first["auth_time"], first["sid"])
    # the session works in Fjord now: a plain request gets it without a page
    third = _payload(_tokens(flow, _code(flow, flow.start(scope=SCOPE)))["id_token"])
    assert third["agreement"]["id"] == companies["fjord"]


def test_agreement_hint_switches_without_a_page(flow, companies):
    _sign_in_choosing(flow, companies, "nordlys")
    resp = flow.start(scope=SCOPE, agreement_hint=companies["fjord_org"])  # an organisation number will do
    claims = _payload(_tokens(flow, _code(flow, resp))["id_token"])
    assert claims["agreement"]["id"] == companies["fjord"]
    # a hint naming an agreement Kari is not in changes nothing
    resp = flow.start(scope=SCOPE, agreement_hint=companies["tind"])
    claims = _payload(_tokens(flow, _code(flow, resp))["id_token"])
    assert claims["agreement"]["id"] == companies["fjord"]


def test_prompt_none_when_a_choice_is_needed(flow, companies):
    flow.authorize()  # signed in, no agreement chosen yet
    resp = flow.start(scope=SCOPE, prompt="none")
    assert query(resp.headers["Location"])["error"] == "interaction_required"


def test_a_forged_choice_is_not_taken(flow, companies):
    resp = flow.login(flow.start(scope=SCOPE))
    page, _offered = _chooser(flow, resp)
    resp = _choose(flow, page, companies["tind"])  # not one of Kari's
    _page, offered = _chooser(flow, resp)
    assert companies["tind"] not in offered


def _refresh(flow, refresh_token, **extra):
    return flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
                            headers=flow.basic())


def test_refresh_token_switches_in_the_background(flow, companies):
    tokens = _sign_in_choosing(flow, companies, "nordlys")
    resp = _refresh(flow, tokens["refresh_token"], agreement=companies["fjord"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    switched = resp.get_json()
    assert _payload(switched["access_token"])["agreement"]["id"] == companies["fjord"]
    assert _payload(switched["id_token"])["agreement"]["id"] == companies["fjord"]
    # the next refresh stays in Fjord
    again = _refresh(flow, switched["refresh_token"]).get_json()
    assert _payload(again["access_token"])["agreement"]["id"] == companies["fjord"]
    # not a member of Tind: invalid_grant, and the refresh token is not spent
    refused = _refresh(flow, again["refresh_token"], agreement=companies["tind"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert _refresh(flow, again["refresh_token"]).status_code == 200


def test_leaving_the_agreement_ends_its_refresh_tokens(flow, companies, app):
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    tokens = _sign_in_choosing(flow, companies, "fjord")
    with app.test_request_context():
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        service.remove_member(service.find(companies["fjord"]), kari)
        db.session.commit()
    resp = _refresh(flow, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert _refresh(flow, tokens["refresh_token"], agreement=companies["fjord"]).get_json()["error"] == "invalid_grant"
    ok = _refresh(flow, tokens["refresh_token"], agreement=companies["nordlys"])
    assert ok.status_code == 200  # switching to one she still belongs to works


def test_the_agreement_parameter_needs_the_scope(flow, companies):
    tokens = flow.tokens(scope="openid offline_access")
    resp = _refresh(flow, tokens["refresh_token"], agreement=companies["fjord"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_without_any_agreement_an_app_that_requires_one_says_so(app, client, make_user, make_client):
    from tests.helpers import Flow

    make_user("ola@example.no", name="Ola")
    secret = make_client("ledger", requires_agreement=True)
    flow = Flow(app, client, client_id="ledger", client_secret=secret, redirect_uri="https://rp.example.com/callback",
                email="ola@example.no")
    resp = flow.login(flow.start())
    while resp.status_code == 302 and "/authorize/continue" in resp.headers["Location"]:
        resp = client.get(path_of(resp.headers["Location"]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "not connected to a company" in html
    assert "ola@example.no" in html and "administrator" in html


def test_an_agreement_that_requires_a_second_factor_steps_up_at_the_switch(flow, companies, app):
    from tests.factors.test_totp import add_totp
    from visma_idp.agreements import service
    from visma_idp.storage import db

    _sign_in_choosing(flow, companies, "nordlys")  # the password alone: Nordlys asks nothing more
    with app.test_request_context():
        service.find(companies["fjord"]).require_acr = "urn:visma_idp:acr:mfa"
        db.session.commit()
    secret = add_totp(app, 1)
    resp = flow.start(scope=SCOPE, agreement_hint=companies["fjord"])
    assert "/login/verify" in resp.headers["Location"]  # a step-up: the second step, no password
    page = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    assert 'name="password"' not in page
    resp = flow.client.post("/login/verify", data={"method": "totp", "code": pyotp.TOTP(secret).now(),
                                                   "tx": query(resp.headers["Location"])["tx"], "csrf_token": csrf(page)})
    claims = _payload(_tokens(flow, _code(flow, resp))["id_token"])
    assert claims["agreement"]["id"] == companies["fjord"] and claims["acr"] == "urn:visma_idp:acr:mfa"


def test_an_agreement_requiring_a_factor_the_person_lacks_gets_a_page(flow, companies, app):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.test_request_context():
        service.find(companies["fjord"]).require_acr = "urn:visma_idp:acr:mfa"
        db.session.commit()
    resp = flow.login(flow.start(scope=SCOPE, agreement_hint=companies["fjord"]))
    while resp.status_code == 302 and "/authorize/continue" in resp.headers["Location"]:
        resp = flow.client.get(path_of(resp.headers["Location"]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "Fjord Transport AS requires everyone" in html
    # Nordlys asks nothing more: choosing it works
    resp = flow.start(scope=SCOPE, agreement_hint=companies["nordlys"])
    assert _payload(_tokens(flow, _code(flow, resp))["id_token"])["agreement"]["id"] == companies["nordlys"]


def test_the_chooser_with_300_agreements_searches(flow, app, agreements_scope):
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    with app.test_request_context():
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        made = 0
        base = 91000000
        while made < 300:
            number = any_org_number(str(base))
            base = int(number[:8]) + 1
            service.add_member(service.create(f"Klient {made:03d} AS", number), kari, ["accountant"])
            made += 1
        db.session.commit()
    resp = flow.login(flow.start(scope=SCOPE))
    page, offered = _chooser(flow, resp)
    assert len(offered) == 300
    tx = re.search(r'name="tx" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    found = flow.client.get(f"/authorize/continue?tx={tx}&q=Klient 123")
    assert re.findall(r'name="agreement" value="([^"]+)"', found.get_data(as_text=True)).__len__() == 1
    assert "Klient 123 AS" in found.get_data(as_text=True)


def test_a_refresh_switch_to_an_agreement_asking_more_is_refused(flow, companies, app):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    tokens = _sign_in_choosing(flow, companies, "nordlys")  # the password alone
    with app.test_request_context():
        service.find(companies["fjord"]).require_acr = "urn:visma_idp:acr:mfa"
        db.session.commit()
    resp = _refresh(flow, tokens["refresh_token"], agreement=companies["fjord"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert "agreement_hint" in resp.get_json()["error_description"]
