"""oidcc-server-client-secret-post (OIDCCServerTestClientSecretPost): the code
flow of oidcc-server with a client authenticating by ``client_secret_post``
(client_id and client_secret in the token request body), which discovery
lists in token_endpoint_auth_methods_supported
(EnsureServerConfigurationSupportsClientSecretPost)."""

from tests.conformance.oidf import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    check_token_error,
    run_code_flow,
)
from tests.helpers import Flow


def _post_flow(app, client, make_user, make_oidf_client) -> Flow:
    make_user()
    make_oidf_client(token_endpoint_auth_method="client_secret_post")
    # no Basic header: the secret goes in the body
    return Flow(app, client, client_id=CLIENT_ID, client_secret=None, redirect_uri=REDIRECT_URI)


def test_client_secret_post(app, client, idp, make_user, make_oidf_client):
    flow = _post_flow(app, client, make_user, make_oidf_client)
    assert "client_secret_post" in client.get("/.well-known/openid-configuration").get_json()[
        "token_endpoint_auth_methods_supported"]
    run_code_flow(flow, idp, token_extra={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


def test_wrong_secret_is_invalid_client(app, client, idp, make_user, make_oidf_client):
    flow = _post_flow(app, client, make_user, make_oidf_client)
    params = flow.authorize(code_challenge=None, code_challenge_method=None)
    resp = flow.token(params["code"], verifier=None, client_id=CLIENT_ID, client_secret="wrong")
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"


def test_registered_method_is_enforced(app, client, idp, make_user, make_oidf_client):
    """A client_secret_post client cannot switch to Basic (its registered method only)."""
    flow = _post_flow(app, client, make_user, make_oidf_client)
    params = flow.authorize(code_challenge=None, code_challenge_method=None)
    flow.client_secret = CLIENT_SECRET  # now Flow.token sends Basic
    resp = flow.token(params["code"], verifier=None)
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    # the code was not spent by the refused attempt
    flow.client_secret = None
    ok = flow.token(params["code"], verifier=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert ok.status_code == 200, ok.get_json()


def test_invalid_grant_is_not_reported_for_a_bad_client(app, client, idp, make_user, make_oidf_client):
    flow = _post_flow(app, client, make_user, make_oidf_client)
    resp = flow.token("no-such-code", verifier=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    check_token_error(resp, "invalid_grant")
