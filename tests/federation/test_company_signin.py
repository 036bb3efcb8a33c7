"""Signing in through a company's upstream provider, end to end over HTTP:
our provider (Flask test client) and a real oidc-provider upstream (node).

Home-realm discovery, the first link with the password as proof, the refused
automatic link on a matching address (email_verified true, false, absent),
just-in-time accounts, Entra ID's tenants, and what a linked sign-in gives the
app (``amr`` ``fed``, the upstream's ``acr``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.federation.conftest import TENANT_A, TENANT_B, at_upstream, back_home, button, tx_of
from tests.helpers import csrf, path_of, query

pytestmark = pytest.mark.interop


def _links(app):
    from visma_idp.storage import UpstreamIdentity, db

    with app.app_context():
        return [(r.user_id, r.issuer, r.subject) for r in db.session.scalars(db.select(UpstreamIdentity))]


def _audit(app, event):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        return [e.details or {} for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event))]


def _id_token_claims(flow, location) -> dict:
    import base64
    import json

    params = query(location)
    resp = flow.token(params["code"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    payload = resp.get_json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _prove_with_password(flow, resp, email="kari@example.no", password="correct horse battery"):
    """From the "link your sign-in" page: the email and password of the local account."""
    assert resp.status_code == 302 and "/login/link-account" in resp.headers["Location"], resp.status_code
    page = flow.client.get(path_of(resp.headers["Location"]))
    html = page.get_data(as_text=True)
    assert "not linked to an account here yet" in html
    assert "never link accounts just because the email addresses match" in html
    tx = tx_of(resp)
    data = {"email": email, "csrf_token": csrf(html), **({"tx": tx} if tx else {})}
    resp = flow.client.post("/login" + (f"?tx={tx}" if tx else ""), data=data)
    assert resp.status_code == 302 and "/login/password" in resp.headers["Location"], resp.headers.get("Location")
    page = flow.client.get(path_of(resp.headers["Location"]))
    data = {"password": password, "csrf_token": csrf(page.get_data(as_text=True)), **({"tx": tx} if tx else {})}
    return flow.client.post(path_of(resp.headers["Location"]), data=data)


def _finish(flow, resp):
    """Follow the notice page (if any) and consent until the app gets its code."""
    for _ in range(5):
        if resp.status_code == 302 and resp.headers["Location"].startswith(flow.redirect_uri):
            return resp
        if resp.status_code == 302:
            resp = flow.client.get(path_of(resp.headers["Location"]))
            continue
        html = resp.get_data(as_text=True)
        if 'name="decision"' in html:
            resp = flow.consent(resp)
            continue
        if "authorize/continue" in html:  # the notice page: its button goes on
            onward = html.split('id="onward" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            resp = flow.client.get(path_of(onward))
            continue
        raise AssertionError(f"{resp.status_code}: {html[:600]}")
    raise AssertionError("too many steps")


def test_home_realm_discovery_sends_the_company_domain_to_its_upstream(flow, company, company_idp):
    resp = flow.start()
    page = flow.client.get(path_of(resp.headers["Location"]))
    assert "Sign in with Acme ID" in page.get_data(as_text=True)  # the button is there as well
    tx = tx_of(resp)
    resp = flow.client.post(f"/login?tx={tx}", data={"email": "Nina@ACME.no", "tx": tx,
                                                     "csrf_token": csrf(page.get_data(as_text=True))})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(company_idp.issuer + "/auth?")
    params = query(location)
    assert params["client_id"] == "visma-idp"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and params["state"] != params["nonce"]
    assert params["login_hint"] == "nina@acme.no"
    assert params["redirect_uri"] == "http://127.0.0.1:5000/upstreams/callback"
    # an address of another domain goes to the password page as before
    page = flow.client.get(f"/login?tx={tx}")
    resp = flow.client.post(f"/login?tx={tx}", data={"email": "kari@example.no", "tx": tx,
                                                     "csrf_token": csrf(page.get_data(as_text=True))})
    assert "/login/password" in resp.headers["Location"]


@pytest.mark.parametrize("login", ["kari", "kari-unverified", "kari-noflag"])
def test_a_matching_address_never_links_by_itself(flow, company, login, app):
    """The upstream says kari@example.no (verified, unverified, or without
    email_verified): the local kari@example.no is not signed in or linked."""
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())), login))
    assert resp.status_code == 302 and "/login/link-account" in resp.headers["Location"]
    assert _links(app) == []
    assert flow.client.get("/account").status_code == 302  # nobody is signed in
    assert _audit(app, "upstream_link_pending")[-1]["reason"] == "not linked"


def test_first_link_needs_the_password_then_the_upstream_signs_in(flow, company, app):
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari"))
    resp = _finish(flow, _prove_with_password(flow, resp))
    claims = _id_token_claims(flow, resp.headers["Location"])
    assert "pwd" in claims["amr"]
    [(user_id, issuer, subject)] = _links(app)
    assert subject == "acme-0001"
    assert _audit(app, "upstream_linked")[0]["upstream"] == "acme"

    # a new browser: the upstream alone signs in now
    client = app.test_client()
    flow.client = client
    resp = back_home(client, at_upstream(button(client, "acme", tx_of(flow.start())), "kari"))
    resp = _finish(flow, resp)
    claims = _id_token_claims(flow, resp.headers["Location"])
    assert claims["amr"] == ["fed"]
    assert claims["acr"] == "urn:visma_idp:acr:pwd"


def test_a_wrong_password_links_nothing(flow, company, app):
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari"))
    resp = _prove_with_password(flow, resp, password="not the password at all")
    assert resp.status_code == 401
    assert _links(app) == []


def test_just_in_time_account_only_for_a_verified_address_of_its_domain(flow, add_upstream, company_idp, app):
    from visma_idp.storage import User, db

    add_upstream("acme", company_idp, domains=("acme.no",), create_accounts=True)
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())), "newbie"))
    resp = _finish(flow, resp)
    assert resp.headers["Location"].startswith(flow.redirect_uri)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "nina@acme.no"))
        assert user is not None and user.status == "active" and user.password_hash is None and user.email_verified
    # unverified: no account, the link page instead
    client = app.test_client()
    flow.client = client
    resp = back_home(client, at_upstream(button(client, "acme", tx_of(flow.start())), "newbie-unverified"))
    assert "/login/link-account" in resp.headers["Location"]
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "nils@acme.no")) is None
    # an existing account of a matching address is never taken over, even with create_accounts
    client = app.test_client()
    flow.client = client
    resp = back_home(client, at_upstream(button(client, "acme", tx_of(flow.start())), "kari"))
    assert "/login/link-account" in resp.headers["Location"]


def test_entra_tenants_and_object_ids(flow, add_upstream, entra_idp, app):
    origin = f"{urlsplit(entra_idp.issuer).scheme}://{urlsplit(entra_idp.issuer).netloc}"
    add_upstream("contoso", entra_idp, issuer=f"{origin}/{{tenantid}}/v2.0",
                 discovery_url=f"{origin}/organizations/v2.0/.well-known/openid-configuration",
                 tenants=(TENANT_A,), create_accounts=False)
    resp = back_home(flow.client, at_upstream(button(flow.client, "contoso", tx_of(flow.start())), "anna"))
    resp = _finish(flow, _prove_with_password(flow, resp))
    [(_user, issuer, subject)] = _links(app)
    assert issuer == entra_idp.issuer  # the template filled with the token's own tid
    assert subject == f"{TENANT_A}/00000000-0000-0000-0000-00000000a001"  # tid + oid, never the email

    # iss says tenant A, tid says tenant B: refused
    client = app.test_client()
    flow.client = client
    resp = back_home(client, at_upstream(button(client, "contoso", tx_of(flow.start())), "mallory"))
    assert resp.status_code == 400
    assert _audit(app, "upstream_failed")[-1]["reason"].startswith("ID token: tenant")


def test_a_tenant_not_on_the_allow_list_is_refused(flow, add_upstream, entra_idp, app):
    origin = f"{urlsplit(entra_idp.issuer).scheme}://{urlsplit(entra_idp.issuer).netloc}"
    add_upstream("contoso", entra_idp, issuer=f"{origin}/{{tenantid}}/v2.0",
                 discovery_url=f"{origin}/organizations/v2.0/.well-known/openid-configuration", tenants=(TENANT_B,))
    resp = back_home(flow.client, at_upstream(button(flow.client, "contoso", tx_of(flow.start())), "anna"))
    assert resp.status_code == 400
    assert _audit(app, "upstream_failed")[-1]["reason"] == f"ID token: tenant '{TENANT_A}' is not allowed"
    assert _links(app) == []


def _link_directly(app, name, subject):
    from visma_idp.federation import linking, upstreams
    from visma_idp.storage import User, db

    with app.test_request_context():
        row = upstreams.by_name(name)
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        linking.link(kari, row, linking.Identity(row.id, row.issuer, subject, None, False, "", subject), notify=False)
        db.session.commit()


def test_the_upstreams_acr_and_trusted_amr(flow, add_upstream, company_idp, app):
    add_upstream("acme", company_idp, acr="urn:visma_idp:acr:mfa", trust_amr=True)
    _link_directly(app, "acme", "acme-0001")
    resp = _finish(flow, back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())),
                                                            "kari-mfa")))
    claims = _id_token_claims(flow, resp.headers["Location"])
    assert claims["acr"] == "urn:visma_idp:acr:mfa"
    assert claims["amr"] == ["fed", "pwd", "otp", "mfa"]


def test_untrusted_amr_stays_out_and_our_second_step_still_applies(flow, add_upstream, company_idp, app):
    import pyotp

    from tests.factors.test_totp import add_totp

    add_upstream("acme", company_idp)  # one factor (the default acr), its amr not trusted
    _link_directly(app, "acme", "acme-0001")
    secret = add_totp(app, 1)
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari-mfa"))
    assert resp.status_code == 302 and "/login/verify" in resp.headers["Location"]
    page = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    tx = tx_of(resp)
    resp = flow.client.post("/login/verify", data={"method": "totp", "code": pyotp.TOTP(secret).now(), "tx": tx,
                                                   "csrf_token": csrf(page)})
    claims = _id_token_claims(flow, _finish(flow, resp).headers["Location"])
    assert claims["amr"] == ["fed", "otp", "mfa"] and claims["acr"] == "urn:visma_idp:acr:mfa"


def test_my_details_lists_a_linked_sign_in_and_unlinks_it_after_the_password(flow, company, app, idp, mailbox):
    _link_directly(app, "acme", "acme-0001")
    flow.authorize()
    page = flow.client.get("/account").get_data(as_text=True)
    assert "Linked sign-ins" in page and "Acme ID" in page and "acme-0001" in page
    [link] = re.findall(r'href="http://127.0.0.1:5000(/account/linked/\d+/unlink)"', page)
    idp.clock.advance(idp.settings["RECENT_PASSWORD_SECONDS"] + 1)
    resp = flow.client.get(link)
    assert "/account/confirm-password" in resp.headers["Location"]  # the password again
    confirm = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    wrong = flow.client.post("/account/confirm-password", data={"password": "not it at all", "next": link,
                                                                "csrf_token": csrf(confirm)})
    assert wrong.status_code == 401 and _links(app)
    flow.client.post("/account/confirm-password", data={"password": "correct horse battery", "next": link,
                                                        "csrf_token": csrf(confirm)})
    page = flow.client.get(link).get_data(as_text=True)
    assert flow.client.post(link, data={"csrf_token": csrf(page)}).status_code == 302
    assert _links(app) == []
    assert "is no longer linked" in flow.client.get("/account").get_data(as_text=True)
    assert mailbox.last("kari@example.no")["Subject"] == "A sign-in was unlinked from your account"


def test_someone_elses_linked_sign_in_cannot_be_unlinked(flow, company, app, make_user):
    _link_directly(app, "acme", "acme-0001")
    make_user("ola@example.no", "another good passphrase 42", name="Ola")
    flow.authorize(login_hint=None)
    other = app.test_client()
    flow.client = other
    resp = flow.login(flow.start(), email="ola@example.no", password="another good passphrase 42")
    assert resp.status_code == 302
    page = other.get("/account/linked/1/unlink")
    assert page.status_code == 302 and page.headers["Location"].endswith("/account#linked"), page.headers
    assert "not linked to your account" in other.get("/account").get_data(as_text=True)
    assert len(_links(app)) == 1


def test_without_a_button_its_domain_still_goes_to_it(flow, add_upstream, company_idp):
    add_upstream("acme", company_idp, display_name="Acme ID", domains=("acme.no",), button=False)
    resp = flow.start()
    page = flow.client.get(path_of(resp.headers["Location"])).get_data(as_text=True)
    assert "Sign in with Acme ID" not in page
    tx = tx_of(resp)
    resp = flow.client.post(f"/login?tx={tx}", data={"email": "nina@acme.no", "tx": tx, "csrf_token": csrf(page)})
    assert resp.headers["Location"].startswith(company_idp.issuer)


def test_a_domain_belongs_to_one_upstream(add_upstream, company_idp, entra_idp):
    from visma_idp.errors import InvalidInput

    add_upstream("acme", company_idp, domains=("acme.no",))
    with pytest.raises(InvalidInput, match="served by the upstream 'acme' already"):
        add_upstream("acme-two", company_idp, domains=("ACME.no",))


def test_another_node_sees_a_new_upstream_after_its_cache_time(app, make_app, company_idp, add_upstream):
    """The email page's list of upstreams is kept per process for UPSTREAM_CACHE_SECONDS."""
    keeps, reads = make_app(keys=True), make_app(keys=True, UPSTREAM_CACHE_SECONDS=0)
    for node in (keeps, reads):
        assert "Sign in with Acme ID" not in node.test_client().get("/login").get_data(as_text=True)
    add_upstream("acme", company_idp, display_name="Acme ID")  # through the first app: a third "node"
    assert "Sign in with Acme ID" not in keeps.test_client().get("/login").get_data(as_text=True)
    assert "Sign in with Acme ID" in reads.test_client().get("/login").get_data(as_text=True)
    assert "Sign in with Acme ID" in app.test_client().get("/login").get_data(as_text=True)  # its own node at once
