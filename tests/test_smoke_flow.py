from visma_idp.oidc.tokens import verify


def test_code_flow_end_to_end(flow, idp, app):
    tokens = flow.tokens(scope="openid email profile")
    with app.app_context():
        header, claims = verify(idp.keys, tokens["id_token"], issuer=idp.issuer)
    assert header["alg"] == "RS256"
    assert claims["aud"] == "expense"
    assert claims["nonce"] == flow.last["nonce"]
    assert claims["amr"] == ["pwd"]
    resp = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["email"] == "kari@example.no"


def test_login_goes_straight_back_to_a_first_party_client(app, client, make_user, make_client):
    """No consent to ask: the password post itself redirects to the client
    with the code (one hop fewer than via /authorize/continue)."""
    from tests.helpers import Flow, query

    make_user()
    secret = make_client("payroll", skip_consent=True, redirect_uris=["https://payroll.example.com/cb"])
    flow = Flow(app, client, client_id="payroll", client_secret=secret, redirect_uri="https://payroll.example.com/cb")
    resp = flow.login(flow.start())
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("https://payroll.example.com/cb?")
    params = query(resp.headers["Location"])
    assert params["state"] == flow.last["state"] and params["iss"] == "http://127.0.0.1:5000" and params["code"]


def test_consent_after_login_is_shown_through_a_redirect(flow):
    """A page the user must answer is not the response to the password post,
    so reloading it cannot post the password again."""
    resp = flow.login(flow.start())
    assert resp.status_code == 302
    assert "/authorize/continue?tx=" in resp.headers["Location"]
    page = flow.follow(resp)
    assert page.status_code == 200 and 'name="decision"' in page.get_data(as_text=True)


def test_login_is_kept_when_its_sign_in_request_expired_meanwhile(flow, idp):
    """A pending request that grew too old while the user typed: the login
    still counts, and the browser lands on the account home page."""
    from tests.helpers import csrf, path_of, query

    resp = flow.start()
    email_page = path_of(resp.headers["Location"])
    tx = query(resp.headers["Location"])["tx"]
    page = flow.client.get(email_page).get_data(as_text=True)
    resp = flow.client.post(email_page, data={"email": flow.email, "tx": tx, "csrf_token": csrf(page)})
    password_page = path_of(resp.headers["Location"])
    page = flow.client.get(password_page).get_data(as_text=True)
    idp.clock.advance(3601)  # older than a login transaction may be
    resp = flow.client.post(password_page, data={"password": flow.password, "tx": tx, "csrf_token": csrf(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "http://127.0.0.1:5000/"

    resp = flow.start(prompt="none")  # signed in: the only thing missing is consent
    assert resp.status_code == 302
    assert query(resp.headers["Location"])["error"] == "consent_required"
