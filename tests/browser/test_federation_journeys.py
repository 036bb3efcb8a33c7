"""Company login and national eID in a real browser (chromium): from a
relying app listening on loopback, through our pages and a real upstream
provider (npm oidc-provider on its own loopback port), back into the app,
which redeems its code.

Chromium applies CSP ``form-action`` to the redirect after a form post, so
the email page (home-realm discovery, the upstream buttons) and My details
(the link buttons) must name the upstream's origin; each journey checks
that the browser reported no CSP violation.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_signin_journeys import Violations, assert_signed_in, relying_party
from tests.federation.conftest import (
    COMPANY_ACCOUNTS,
    ENTRA_ACCOUNTS,
    IDPORTEN_ACCOUNTS,
    KARI_NUMBER,
    SECRET,
    TENANT_A,
)
from tests.federation.upstream import Upstream, node_available

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.interop


@pytest.fixture
def node():
    from tests.federation.conftest import missing

    reason = node_available()
    if reason:
        missing(reason)


@contextmanager
def upstream_for(live, accounts, **config):
    """A real upstream that knows our client with this live server's callback
    (``visma-idp`` with a secret, ``visma-idp-jwt`` with private_key_jwt and
    our /upstreams/jwks.json)."""
    callback = live.url + "/upstreams/callback"
    clients = [
        {"client_id": "visma-idp", "client_secret": SECRET, "redirect_uris": [callback],
         "grant_types": ["authorization_code"], "response_types": ["code"]},
        {"client_id": "visma-idp-jwt", "token_endpoint_auth_method": "private_key_jwt",
         "jwks_uri": live.url + "/upstreams/jwks.json", "redirect_uris": [callback],
         "grant_types": ["authorization_code"], "response_types": ["code"]},
    ]
    with Upstream.start({"accounts": accounts, "clients": clients, **config}) as running:
        yield running


def add(live, name, running, **kwargs):
    from visma_idp.federation.upstreams import UpstreamSpec
    from visma_idp.federation.upstreams import add as add_upstream
    from visma_idp.storage import db

    kwargs.setdefault("issuer", running.issuer)
    kwargs.setdefault("client_id", "visma-idp")
    if not kwargs.get("private_key_jwt"):
        kwargs.setdefault("client_secret", SECRET)
    with live.app.app_context():
        add_upstream(UpstreamSpec(name=name, **kwargs))
        db.session.commit()


def sign_in_at_upstream(page, login: str) -> None:
    page.wait_for_selector("#upstream-login")
    page.fill("input[name=login]", login)
    with page.expect_navigation():
        page.click("#upstream-login")


def press(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def links(live):
    from visma_idp.storage import UpstreamIdentity, db

    with live.app.app_context():
        return db.session.scalars(db.select(UpstreamIdentity)).all()


def test_home_realm_discovery_first_link_with_the_password_then_the_upstream_alone(
        live, browser, node, make_user, make_client):
    make_user(email="kari@acme.no", password=PASSWORD)
    accounts = {"kari": {**COMPANY_ACCOUNTS["kari"], "email": "kari@acme.no"}}
    with upstream_for(live, accounts) as running:
        # private_key_jwt: the upstream fetches our key from /upstreams/jwks.json when we redeem the code
        add(live, "acme", running, display_name="Acme ID", client_id="visma-idp-jwt", private_key_jwt=True,
            domains=("acme.no",))
        rp = relying_party(live, make_client, skip_consent=True)
        with rp.serving():
            for round_ in ("link", "linked"):
                context = browser.new_context(locale="en-GB")
                page = context.new_page()
                violations = Violations(page)
                page.goto(rp.url + "/start")
                page.fill("#email", "kari@acme.no")
                with page.expect_navigation():
                    page.press("#email", "Enter")
                assert page.url.startswith(running.issuer), page.url  # home-realm discovery
                sign_in_at_upstream(page, "kari")
                if round_ == "link":
                    assert "/login/link-account" in page.url, page.content()[:1500]
                    assert "not linked to an account here yet" in page.content()
                    screenshot(page, "federation-link-account")
                    assert page.input_value("#email") == "kari@acme.no"
                    press(page, "button.primary")
                    page.fill("#password", PASSWORD)
                    with page.expect_navigation():
                        page.press("#password", "Enter")
                    assert "is now linked to this account" in page.content()
                    press(page, "#onward")
                    claims = assert_signed_in(page, rp, violations)
                    assert claims["amr"] == ["pwd"]
                else:
                    assert page.url.startswith(rp.redirect_uri), (page.url, violations.messages)
                    assert violations.messages == []
                    assert rp.signed_in[-1]["claims"]["amr"] == ["fed"]
                context.close()
    [entry] = links(live)
    assert entry.subject == "acme-0001"


@pytest.mark.parametrize("login", ["kari-unverified", "kari-noflag"])
def test_a_matching_address_is_not_linked_by_itself(live, page, node, make_user, make_client, login):
    make_user(email="kari@example.no", password=PASSWORD)
    with upstream_for(live, COMPANY_ACCOUNTS) as running:
        add(live, "acme", running, display_name="Acme ID")
        rp = relying_party(live, make_client, skip_consent=True)
        violations = Violations(page)
        with rp.serving():
            page.goto(rp.url + "/start")
            press(page, "button[data-upstream=acme]")
            sign_in_at_upstream(page, login)
            assert "/login/link-account" in page.url
            assert violations.messages == []
            press(page, "form[action*=cancel] button")
            assert page.url.startswith(live.url + "/login")
    assert links(live) == [] and rp.results == []


def test_an_entra_token_of_another_tenant_is_refused(live, page, node, make_client):
    with upstream_for(live, ENTRA_ACCOUNTS, issuer_path=f"/{TENANT_A}/v2.0",
                      template_discovery="/organizations/v2.0") as running:
        origin = running.origin
        add(live, "contoso", running, display_name="Contoso", issuer=f"{origin}/{{tenantid}}/v2.0",
            discovery_url=f"{origin}/organizations/v2.0/.well-known/openid-configuration", tenants=(TENANT_A,))
        rp = relying_party(live, make_client, skip_consent=True)
        with rp.serving():
            page.goto(rp.url + "/start")
            press(page, "button[data-upstream=contoso]")
            sign_in_at_upstream(page, "mallory")  # tid says tenant B under tenant A's issuer
            assert page.url.startswith(live.url + "/upstreams/callback")
            assert "We could not confirm who you are at Contoso" in page.content()
            screenshot(page, "federation-refused")
    assert rp.results == []


def _password_sign_in(page, rp, email="kari@example.no", password=PASSWORD):
    page.goto(rp.url + "/start")
    page.fill("#email", email)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", password)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.url.startswith(rp.redirect_uri), page.url


def test_national_id_link_unlink_and_sign_in_at_the_high_level(live, browser, node, make_user, make_client):
    make_user(email="kari@example.no", password=PASSWORD)
    masked = KARI_NUMBER[:6] + "*****"
    with upstream_for(live, IDPORTEN_ACCOUNTS, acr_values=["idporten-loa-substantial", "idporten-loa-high"]) as up:
        add(live, "idporten", up, display_name="ID-porten", national_id_claim="pid", scopes=("openid", "profile"))
        rp = relying_party(live, make_client, skip_consent=True)
        with rp.serving():
            context = browser.new_context(locale="en-GB")
            page = context.new_page()
            violations = Violations(page)
            _password_sign_in(page, rp)
            page.goto(live.url + "/account#linked")
            press(page, "form[action$='/account/linked/idporten/start'] button")
            sign_in_at_upstream(page, "kari-high")
            assert page.url.startswith(live.url + "/account"), page.url
            assert masked in page.text_content("#linked") and KARI_NUMBER not in page.content()
            screenshot(page, "federation-national-linked")
            assert violations.messages == []
            context.close()

            # a new browser signs in with ID-porten, for an app that asks for the high level
            context = browser.new_context(locale="en-GB")
            page = context.new_page()
            violations = Violations(page)
            page.goto(rp.url + "/start?acr_values=idporten-loa-high")
            press(page, "button[data-upstream=idporten]")
            sign_in_at_upstream(page, "kari-high")
            assert page.url.startswith(rp.redirect_uri) and violations.messages == [], page.url
            claims = rp.signed_in[-1]["claims"]
            assert claims["acr"] == "idporten-loa-high" and "fed" in claims["amr"]

            # unlinking asks for the password again
            live.idp.clock.advance(live.idp.settings["RECENT_PASSWORD_SECONDS"] + 1)
            page.goto(live.url + "/account#linked")
            press(page, "#linked a[href$='/national-id/unlink']")
            assert "/account/confirm-password" in page.url
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.press("#password", "Enter")
            press(page, "button.primary")
            assert "no longer linked" in page.text_content("#linked")
            context.close()


def test_a_number_linked_to_another_account_shows_whose_it_is(live, page, node, make_user, make_client):
    from visma_idp.federation import national_id, upstreams
    from visma_idp.storage import User, db

    make_user(email="kari@example.no", password=PASSWORD)
    make_user(email="hanne.private@gmail.com", password="another good passphrase 42", name="Hanne")
    with upstream_for(live, IDPORTEN_ACCOUNTS, acr_values=["idporten-loa-high"]) as up:
        add(live, "idporten", up, display_name="ID-porten", national_id_claim="pid")
        with live.app.test_request_context():
            kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
            national_id.link(kari, upstreams.by_name("idporten"),
                             national_id.Proof(KARI_NUMBER, "idporten-loa-high", ["fed"]))
            db.session.commit()
        rp = relying_party(live, make_client, skip_consent=True)
        with rp.serving():
            _password_sign_in(page, rp, "hanne.private@gmail.com", "another good passphrase 42")
            page.goto(live.url + "/account#linked")
            press(page, "form[action$='/account/linked/idporten/start'] button")
            sign_in_at_upstream(page, "kari-high")
            content = page.content()
            assert "This national identity number is linked to another account" in content
            assert "k***@e***.no" in content and "kari@example.no" not in content
            screenshot(page, "federation-national-taken")
