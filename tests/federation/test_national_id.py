"""National eID over HTTP against a real ID-porten-like upstream (npm
oidc-provider with ``pid``, ``acr`` and ``amr``): linking from My details, the
number already linked to another account, unlinking with the password, and
signing in with national eID to an app that asks for ``idporten-loa-high``."""

from __future__ import annotations

import base64
import json

import pytest

from tests.federation.conftest import KARI_NUMBER, at_upstream, back_home, button, tx_of
from tests.helpers import csrf, path_of, query

pytestmark = pytest.mark.interop


def _signed_in(flow):
    """Kari signs in with her password (and the app gets its code)."""
    flow.authorize()
    return flow.client


def _link_from_my_details(client, login):
    page = client.get("/account").get_data(as_text=True)
    assert "Link with ID-porten" in page
    resp = client.post("/account/linked/idporten/start", data={"csrf_token": csrf(page)})
    return back_home(client, at_upstream(resp, login))


def _rows(app):
    from visma_idp.storage import NationalIdentity, db

    with app.app_context():
        return [(r.user_id, r.digest, r.number_enc) for r in db.session.scalars(db.select(NationalIdentity))]


def _events(app, event):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event)))


def _id_token(flow, location):
    resp = flow.token(query(location)["code"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    payload = resp.get_json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_link_from_my_details_stores_only_a_digest_and_ciphertext(flow, national, app, mailbox):
    client = _signed_in(flow)
    resp = _link_from_my_details(client, "kari-high")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account#linked")
    page = client.get("/account").get_data(as_text=True)
    masked = KARI_NUMBER[:6] + "*****"
    assert masked in page and KARI_NUMBER not in page
    [(user_id, digest, number_enc)] = _rows(app)
    assert KARI_NUMBER not in digest and KARI_NUMBER not in number_enc
    assert _events(app, "national_id_linked")
    mail = mailbox.last("kari@example.no")
    assert mail["Subject"] == "A sign-in was linked to your account"
    assert masked in mailbox.text(mail) and KARI_NUMBER not in mailbox.text(mail)


def test_a_number_linked_to_another_account_gets_a_clear_page(flow, national, app, make_user, mailbox):
    client = _signed_in(flow)
    _link_from_my_details(client, "kari-high")
    # Kari signs in to her private account and tries to link the same number there
    make_user("hanne.private@gmail.com", "another good passphrase 42", name="Hanne")
    other = app.test_client()
    flow.client = other
    resp = flow.start()
    resp = flow.login(resp, email="hanne.private@gmail.com", password="another good passphrase 42")
    resp = _link_from_my_details(other, "kari-high")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409, html[:500]
    assert "linked to another account" in html
    assert "k***@e***.no" in html  # the owner's address, masked
    assert "kari@example.no" not in html and KARI_NUMBER not in html
    assert "Unlink" in html  # how to move it
    [(owner_id, _d, _e)] = _rows(app)
    refused = _events(app, "national_id_link_refused")
    assert refused and refused[-1].details["reason"] == "linked to another account"
    warning = mailbox.last("kari@example.no")
    assert "tried to link your national identity number" in warning["Subject"]
    assert KARI_NUMBER[:6] + "*****" in mailbox.text(warning) and KARI_NUMBER not in mailbox.text(warning)
    assert not mailbox.to("hanne.private@gmail.com") or all(
        "linked" not in m["Subject"] for m in mailbox.to("hanne.private@gmail.com"))


def test_unlink_asks_for_the_password_again(flow, national, app, idp):
    client = _signed_in(flow)
    _link_from_my_details(client, "kari-high")
    idp.clock.advance(idp.settings["RECENT_PASSWORD_SECONDS"] + 1)
    resp = client.get("/account/linked/national-id/unlink")
    assert resp.status_code == 302 and "/account/confirm-password" in resp.headers["Location"]
    page = client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    resp = client.post("/account/confirm-password", data={
        "password": "correct horse battery", "csrf_token": csrf(page),
        "next": "/account/linked/national-id/unlink"})
    assert resp.status_code == 302
    page = client.get("/account/linked/national-id/unlink").get_data(as_text=True)
    assert KARI_NUMBER[:6] + "*****" in page
    resp = client.post("/account/linked/national-id/unlink", data={"csrf_token": csrf(page)})
    assert resp.status_code == 302
    assert _rows(app) == []
    assert _events(app, "national_id_unlinked")


def test_sign_in_with_national_eid_at_the_high_level(flow, national, app):
    client = _signed_in(flow)
    _link_from_my_details(client, "kari-high")
    fresh = app.test_client()
    flow.client = fresh
    resp = flow.start(acr_values="idporten-loa-high")
    resp = back_home(fresh, at_upstream(button(fresh, "idporten", tx_of(resp)), "kari-high"))
    for _ in range(4):
        if resp.headers["Location"].startswith(flow.redirect_uri):
            break
        resp = fresh.get(path_of(resp.headers["Location"]))
        if resp.status_code == 200:
            resp = flow.consent(resp)
    claims = _id_token(flow, resp.headers["Location"])
    assert claims["acr"] == "idporten-loa-high"
    assert "fed" in claims["amr"] and "BankID" in claims["amr"]


def test_a_substantial_session_does_not_meet_an_essential_high_request(flow, national, app):
    client = _signed_in(flow)
    _link_from_my_details(client, "kari-high")
    fresh = app.test_client()
    flow.client = fresh
    resp = flow.start()
    resp = back_home(fresh, at_upstream(button(fresh, "idporten", tx_of(resp)), "kari-substantial"))
    assert resp.status_code == 302
    # the session is at substantial (two factors); an app now wants the high level, essential
    claims_param = json.dumps({"id_token": {"acr": {"essential": True, "values": ["idporten-loa-high"]}}})
    resp = flow.start(claims=claims_param)
    # Kari has no phishing-resistant factor to step up with: the app is told, no code is issued
    assert resp.status_code == 302
    params = query(resp.headers["Location"])
    assert params.get("error") == "unmet_authentication_requirements" and "code" not in params
    # without "essential" the session's own level comes back, as it is
    resp = flow.start(acr_values="idporten-loa-high")
    claims = _id_token(flow, flow.until_callback(resp).headers["Location"])
    assert claims["acr"] == "idporten-loa-substantial"


def test_an_unlinked_number_offers_the_password_then_links(flow, national, app):
    resp = flow.start()
    resp = back_home(flow.client, at_upstream(button(flow.client, "idporten", tx_of(resp)), "kari-high"))
    assert "/login/link-account" in resp.headers["Location"]
    page = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    assert KARI_NUMBER[:6] + "*****" in page and KARI_NUMBER not in page
    tx = tx_of(resp)
    resp = flow.client.post(f"/login?tx={tx}", data={"email": "kari@example.no", "tx": tx, "csrf_token": csrf(page)})
    page = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    resp = flow.client.post(path_of(resp.headers["Location"]), data={
        "password": "correct horse battery", "tx": tx, "csrf_token": csrf(page)})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "is now linked to this account" in page, page[:400]
    assert len(_rows(app)) == 1


def test_an_invalid_number_is_refused_with_a_page(flow, national, app):
    resp = flow.start()
    resp = back_home(flow.client, at_upstream(button(flow.client, "idporten", tx_of(resp)), "bad-number"))
    assert resp.status_code == 400
    assert "national identity number we can use" in resp.get_data(as_text=True)
    assert _events(app, "national_id_login_failed")[-1].details["reason"].startswith("invalid number")


def test_discovery_names_the_national_levels_only_with_a_national_upstream(client, add_upstream, idporten):
    assert "idporten-loa-high" not in client.get("/.well-known/openid-configuration").get_json()["acr_values_supported"]
    add_upstream("idporten", idporten, national_id_claim="pid", acr_values=("idporten-loa-high",))
    supported = client.get("/.well-known/openid-configuration").get_json()["acr_values_supported"]
    assert "idporten-loa-high" in supported and "urn:visma_idp:acr:phr" in supported
    assert "urn:bankid:bid;LOA=4" not in supported


def test_two_links_of_one_number_racing_leave_one(app, make_user, national):
    """The check-then-insert of two requests interleaved: the database's key decides, no 500."""
    from visma_idp.federation import national_id, upstreams
    from visma_idp.storage import NationalIdentity, User, db

    make_user("kari@example.no")
    make_user("ola@example.no", name="Ola")
    with app.test_request_context():
        row = upstreams.by_name("idporten")
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        ola = db.session.scalar(db.select(User).where(User.email == "ola@example.no"))
        proof = national_id.Proof(KARI_NUMBER, "idporten-loa-high", ["fed"])
        real_owner = national_id.owner
        calls = []

        def stale_owner(number):  # both requests looked before either wrote; later looks are real
            calls.append(number)
            return None if len(calls) <= 2 else real_owner(number)

        national_id.owner = stale_owner
        try:
            assert national_id.link(kari, row, proof).status == "linked"
            lost = national_id.link(ola, row, proof)
        finally:
            national_id.owner = real_owner
        assert (lost.status, lost.other_email) == ("other", "k***@e***.no")
        assert len(calls) == 3  # the loser looked again after the key refused it
        db.session.commit()
        assert [r.user_id for r in db.session.scalars(db.select(NationalIdentity))] == [kari.id]
