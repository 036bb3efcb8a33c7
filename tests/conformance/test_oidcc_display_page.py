"""oidcc-display-page (OIDCCDisplayPage): ``display=page`` must not result in
an error; the login goes through the normal pages."""

from tests.conformance.oidf import run_code_flow


def test_display_page(oidf, idp):
    resp = oidf.start(display="page", code_challenge=None, code_challenge_method=None)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]  # the login page, not an error
    result = run_code_flow(oidf, idp, display="page")
    assert result.claims["aud"] == "oidf-client"
