"""The whole journey over real HTTP: the provider and Expense each on a
loopback port, one ``requests.Session`` as the browser.

Kari (employee) signs in and lands in Expense with her company, makes an
outlay with a PNG receipt and submits it; Ola (approver in the expense app)
signs in with his password only, so approving sends him to the provider for
a step-up (``acr_values=urn:visma_idp:acr:mfa``: the second step, no
password) and the approval is finished when he comes back; both sign out
(RP-initiated logout, back to Expense). Then: an approver without a second
factor is told so, a forged ``iss`` is refused, and switching company
(``prompt=select_account``, no password) shows that company's claims.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
import pytest
import requests

from tests.browser.conftest import serving
from tests.examples.conftest import EXPENSE_SECRET, serve
from tests.helpers import csrf, query
from tests.mailbox import free_port

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32


@pytest.fixture
def world(app, make_app, make_user, make_client, make_expense):
    """The provider and Expense served; Kari and Ola in Nordlys Regnskap AS."""
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    make_client("expense", secret=EXPENSE_SECRET, redirect_uris=[base + "/callback"],
                post_logout_redirect_uris=[base + "/logged-out"], scope="openid profile email agreements",
                skip_consent=True, requires_agreement=True)
    kari_id = make_user("kari@example.no", PASSWORD, "Kari Nordmann")
    ola_id = make_user("ola@example.no", PASSWORD, "Ola Nordmann")
    with app.test_request_context():
        nordlys = service.create("Nordlys Regnskap AS", "974760673")
        kari, ola = (db.session.get(User, i) for i in (kari_id, ola_id))
        service.add_member(nordlys, kari, ["employee"])
        service.add_member(nordlys, ola, ["employee"])
        service.add_member(nordlys, ola, ["approver"], client_id="expense")
        db.session.commit()
    with serving(make_app, "127.0.0.1") as provider:
        expense = make_expense(provider.url, base_url=base)
        with serve(expense, port):
            yield {"provider": provider.url, "expense": base, "app": app, "ola_id": ola_id}


def sign_in(browser: requests.Session, world, email: str, *, back_in_expense: bool = True) -> requests.Response:
    """Expense's "Sign in", then the provider's email and password pages; returns Expense's page
    (or, with ``back_in_expense=False``, whatever page the provider showed next)."""
    page = browser.get(world["expense"] + "/login")
    assert page.url.startswith(world["provider"] + "/login"), page.url
    tx = query(page.url).get("tx")
    page = browser.post(page.url, data={"email": email, "csrf_token": csrf(page.text), **({"tx": tx} if tx else {})})
    assert 'name="password"' in page.text, page.text[:500]
    page = browser.post(page.url, data={"password": PASSWORD, "csrf_token": csrf(page.text),
                                        **({"tx": tx} if tx else {})})
    if back_in_expense:
        assert page.url.startswith(world["expense"]), page.url
    return page


def choose(browser: requests.Session, chooser: requests.Response, org_number: str) -> requests.Response:
    """Pick a company on the provider's chooser; returns the page it leads to."""
    assert "Choose a company" in chooser.text, chooser.text[:500]
    agreements = dict(re.findall(r'name="agreement" value="([^"]+)"[^>]*>.*?(\d{9})', chooser.text, re.S))
    by_org = {org: public_id for public_id, org in agreements.items()}
    tx = re.search(r'name="tx" value="([^"]+)"', chooser.text).group(1)
    return browser.post(urlsplit(chooser.url)._replace(path="/authorize/continue", query="").geturl(),
                        data={"tx": tx, "agreement": by_org[org_number], "csrf_token": csrf(chooser.text)})


def sign_out(browser: requests.Session, world, page: requests.Response) -> None:
    page = browser.post(world["expense"] + "/logout", data={"csrf_token": csrf(page.text)})
    assert page.status_code == 200 and page.url.startswith(world["expense"] + "/logged-out"), page.url
    assert "You are signed out of Expense." in page.text
    assert "Sign in" in browser.get(world["expense"] + "/").text
    # the provider's session ended too: signing in asks for the email again
    assert browser.get(world["expense"] + "/login").url.startswith(world["provider"] + "/login")


def test_a_person_without_a_company_gets_the_providers_clear_page(world, make_user):
    """Expense is registered with requires_agreement: the provider explains, Expense never shows an empty app."""
    make_user("nils@example.no", PASSWORD, "Nils Uten")
    nils = requests.Session()
    page = sign_in(nils, world, "nils@example.no", back_in_expense=False)
    assert page.status_code == 403 and page.url.startswith(world["provider"])
    assert "Your account is not connected to a company" in page.text and "nils@example.no" in page.text
    assert "Sign in" in nils.get(world["expense"] + "/").text  # nothing of Expense was opened


def test_sign_in_claim_approve_with_step_up_and_sign_out(world):
    from tests.factors.test_totp import add_totp

    kari = requests.Session()
    home = sign_in(kari, world, "kari@example.no")
    assert "Kari Nordmann" in home.text and "kari@example.no" in home.text
    assert "Nordlys Regnskap AS" in home.text and "974760673" in home.text
    assert re.search(r'id="roles">employee<', home.text)
    assert "Claims to approve" not in home.text

    page = kari.post(world["expense"] + "/claims", data={
        "csrf_token": csrf(home.text), "kind": "outlay", "amount": "249.90", "currency": "NOK",
        "spent_on": "2026-03-14", "purpose": "Taxi to Nordlys"}, files={"receipt": ("taxi.png", PNG, "image/png")})
    assert "Draft" in page.text and "249.90 NOK" in page.text, page.text[:800]
    claim_url = page.url
    page = kari.post(claim_url + "/submit", data={"csrf_token": csrf(page.text)})
    assert 'id="status">Submitted' in page.text
    assert kari.get(claim_url + "/receipt").content == PNG
    sign_out(kari, world, page)

    ola = requests.Session()
    home = sign_in(ola, world, "ola@example.no")
    assert re.search(r'id="roles">approver, employee<', home.text)
    page = ola.get(world["expense"] + "/approvals")
    assert "Taxi to Nordlys" in page.text and "Kari Nordmann" in page.text
    page = ola.get(claim_url)
    assert 'value="approve"' in page.text

    # approving needs two factors; Ola signed in with the password only and sets up an app now
    secret = add_totp(world["app"], world["ola_id"])
    step_up = ola.post(claim_url + "/decide", data={"csrf_token": csrf(page.text), "decision": "approve"},
                       allow_redirects=False)
    assert step_up.status_code == 302
    assert step_up.headers["Location"].startswith(world["provider"] + "/authorize")
    assert query(step_up.headers["Location"])["acr_values"] == "urn:visma_idp:acr:mfa"
    page = ola.get(step_up.headers["Location"])
    assert urlsplit(page.url).path == "/login/verify" and 'name="password"' not in page.text
    page = ola.post(page.url, data={"method": "totp", "code": pyotp.TOTP(secret).now(), "tx": query(page.url)["tx"],
                                    "csrf_token": csrf(page.text)})
    assert page.url == world["expense"] + "/approvals", page.url
    assert "The claim is approved." in page.text and "Taxi to Nordlys" not in page.text
    assert 'id="status">Approved' in ola.get(claim_url).text
    sign_out(ola, world, page)


def test_an_approver_without_a_second_factor_cannot_approve(world):
    kari = requests.Session()
    home = sign_in(kari, world, "kari@example.no")
    page = kari.post(world["expense"] + "/claims", data={
        "csrf_token": csrf(home.text), "kind": "mileage", "km": "42", "route": "Oslo - Drammen",
        "spent_on": "2026-03-14", "purpose": "Client visit"})
    claim_url = page.url
    kari.post(claim_url + "/submit", data={"csrf_token": csrf(page.text)})

    ola = requests.Session()
    sign_in(ola, world, "ola@example.no")
    page = ola.get(claim_url)
    # acr_values are voluntary: with no factor to step up with, the provider answers at the password level
    page = ola.post(claim_url + "/decide", data={"csrf_token": csrf(page.text), "decision": "approve"})
    assert page.url == world["expense"] + "/approvals"
    assert "Approving needs two-step verification" in page.text
    assert 'id="status">Submitted' in ola.get(claim_url).text


def test_a_forged_iss_in_the_answer_is_refused(world):
    browser = requests.Session()
    page = browser.get(world["expense"] + "/login", allow_redirects=False)
    state = query(page.headers["Location"])["state"]
    page = browser.get(world["expense"] + "/callback", params={"code": "x", "state": state,
                                                                "iss": "https://evil.example"})
    assert page.status_code == 400 and "wrong iss" in page.text


def test_switching_company_shows_that_companys_claims(world):
    from tests.agreements import any_org_number
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    app = world["app"]
    with app.test_request_context():
        fjord = service.create("Fjord Transport AS", any_org_number("91234567"))
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        service.add_member(fjord, kari, ["employee"])
        db.session.commit()
        fjord_org = fjord.org_number

    browser = requests.Session()
    home = choose(browser, sign_in(browser, world, "kari@example.no", back_in_expense=False), "974760673")
    assert 'id="agreement">Nordlys Regnskap AS<' in home.text
    page = browser.post(world["expense"] + "/claims", data={
        "csrf_token": csrf(home.text), "kind": "travel", "start_date": "2026-03-12", "end_date": "2026-03-14",
        "destination": "Bergen", "purpose": "Nordlys conference"})
    assert "Bergen" in page.text

    chooser = browser.get(world["expense"] + "/switch")  # no password: straight to the chooser
    assert 'name="password"' not in chooser.text
    home = choose(browser, chooser, fjord_org)
    assert home.url.startswith(world["expense"])
    assert 'id="agreement">Fjord Transport AS<' in home.text and "Nordlys conference" not in home.text

    home = choose(browser, browser.get(world["expense"] + "/switch"), "974760673")
    assert "Nordlys conference" in home.text
