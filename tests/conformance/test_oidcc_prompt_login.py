"""oidcc-prompt-login (OIDCCPromptLogin): after a first login, a second
request with ``prompt=login`` shows the login page again although the session
is live, and the second ID token's auth_time is later than the first's
(CheckSecondIdTokenAuthTimeIsLaterIfPresent). The suite waits a second
between the two; here the clock moves."""

from tests.conformance.oidf import NO_PKCE, callback_params, finish_code_flow, run_code_flow
from tests.helpers import query


def test_prompt_login_forces_a_new_login(oidf, idp):
    first = run_code_flow(oidf, idp)
    idp.clock.advance(1)

    resp = oidf.start(prompt="login", **NO_PKCE)
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"], "prompt=login must show the login page"
    resp = oidf.until_callback(resp)
    second = finish_code_flow(oidf, idp, callback_params(resp))

    assert second.claims["sub"] == first.claims["sub"]
    assert second.claims["auth_time"] > first.claims["auth_time"]


def test_prompt_login_cannot_be_satisfied_by_the_old_session(oidf, idp):
    oidf.authorize(**NO_PKCE)
    idp.clock.advance(1)
    resp = oidf.start(prompt="login", **NO_PKCE)
    # skipping the login page and going straight on does not issue a code
    tx = query(resp.headers["Location"])["tx"]
    resp = oidf.client.get(f"/authorize/continue?tx={tx}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]

