"""oidcc-id-token-hint (OIDCCIdTokenHint): after a first login, a second
request with ``prompt=none`` and the first ID token as ``id_token_hint``
succeeds without a page, for the same sub and auth_time."""

from tests.conformance.oidf import NO_PKCE, callback_params, check_error_response, finish_code_flow, run_code_flow


def test_id_token_hint_with_prompt_none(oidf, idp):
    first = run_code_flow(oidf, idp)
    idp.clock.advance(3)
    resp = oidf.start(prompt="none", id_token_hint=first.id_token.raw, **NO_PKCE)
    second = finish_code_flow(oidf, idp, callback_params(resp))
    assert second.claims["sub"] == first.claims["sub"]
    assert second.claims["auth_time"] == first.claims["auth_time"]


def test_expired_id_token_hint_is_still_a_hint(oidf, idp):
    """OIDC Core 3.1.2.1: the hint may be expired; it only names the user."""
    first = run_code_flow(oidf, idp)
    idp.clock.advance(2 * 3600)  # past the ID token's exp, inside the session
    resp = oidf.start(prompt="none", id_token_hint=first.id_token.raw, **NO_PKCE)
    second = finish_code_flow(oidf, idp, callback_params(resp))
    assert second.claims["sub"] == first.claims["sub"]


def test_forged_id_token_hint_is_invalid_request(oidf, idp):
    first = run_code_flow(oidf, idp)
    header, payload, signature = first.id_token.raw.split(".")
    resp = oidf.start(prompt="none", id_token_hint=f"{header}.{payload}.{signature[:-4]}AAAA", **NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])


def test_hint_for_another_user_with_prompt_none_is_login_required(oidf, idp, make_user, app):
    first = run_code_flow(oidf, idp)
    make_user(email="ola@example.no", password="another horse battery", name="Ola")
    oidf.email, oidf.password = "ola@example.no", "another horse battery"
    resp = oidf.start(prompt="login", **NO_PKCE)  # the browser now belongs to Ola
    finish_code_flow(oidf, idp, callback_params(oidf.until_callback(resp)))
    resp = oidf.start(prompt="none", id_token_hint=first.id_token.raw, **NO_PKCE)
    check_error_response(callback_params(resp), error="login_required", state=oidf.last["state"])


def test_access_token_is_not_an_id_token_hint(oidf, idp):
    """Our RFC 9068 access tokens are signed with our keys too, but are no ID token."""
    first = run_code_flow(oidf, idp)
    resp = oidf.start(prompt="none", id_token_hint=first.tokens["access_token"], **NO_PKCE)
    check_error_response(callback_params(resp), error="invalid_request", state=oidf.last["state"])
