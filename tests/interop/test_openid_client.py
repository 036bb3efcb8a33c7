"""Interop: panva's openid-client (npm, v6) as the relying party.

The provider runs as a real HTTP server on a free 127.0.0.1 port; ``rp.mjs``
discovers it, logs in through the HTML pages, redeems the code with PKCE,
validates the ID token signature (non-repudiation checks), calls userinfo,
rotates the refresh token and runs client_credentials for a second client.

Needs ``npm ci --prefix tests/interop`` first: without
``tests/interop/node_modules/openid-client`` (or without ``node``) the test
is skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

HERE = Path(__file__).resolve().parent
RP_SCRIPT = HERE / "rp.mjs"
OPENID_CLIENT = HERE / "node_modules" / "openid-client"
HOST = "127.0.0.1"
RP_TIMEOUT = 90

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"
RP_ID = "interop-rp"
RP_SECRET = "interop-rp-secret-0123456789abcdef"
SERVICE_ID = "interop-service"
SERVICE_SECRET = "interop-service-secret-0123456789"

pytestmark = pytest.mark.interop


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


@pytest.fixture
def node() -> str:
    path = shutil.which("node")
    if path is None:
        _missing("node is not installed")
    if not (OPENID_CLIENT / "package.json").is_file():
        _missing("openid-client is not installed: run `npm ci --prefix tests/interop`")
    return path


class _Dispatch:
    """WSGI app that forwards to ``target``, set once the Flask app exists
    (the port has to be known before the app is built with its issuer)."""

    target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


@pytest.fixture
def http_server():
    """A threaded werkzeug server bound to a free port (not yet serving)."""
    dispatch = _Dispatch()
    server = make_server(HOST, 0, dispatch, threaded=True)
    server.dispatch = dispatch
    try:
        yield server
    finally:
        server.server_close()


@pytest.fixture
def settings(settings, http_server, request):
    """The shared test settings, with the issuer the live server answers on
    (and the overrides a test passes by indirect parametrization)."""
    return {**settings, "ISSUER": f"http://{HOST}:{http_server.server_port}", **getattr(request, "param", {})}


@pytest.fixture
def live_issuer(app, idp, http_server):
    """Serve ``app`` over HTTP in a background thread; yield its issuer."""
    http_server.dispatch.target = app
    thread = threading.Thread(target=http_server.serve_forever, name="interop-idp", daemon=True)
    thread.start()
    try:
        yield idp.issuer
    finally:
        http_server.shutdown()
        thread.join(timeout=10)


def _run_rp(node: str, issuer: str, *, rp_secret: str, service_secret: str) -> dict:
    cmd = [
        node, str(RP_SCRIPT),
        f"--issuer={issuer}",
        f"--client-id={RP_ID}", f"--client-secret={rp_secret}",
        f"--service-id={SERVICE_ID}", f"--service-secret={service_secret}",
        f"--email={EMAIL}", f"--password={PASSWORD}",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RP_TIMEOUT, cwd=HERE)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"rp.mjs did not finish in {RP_TIMEOUT}s; stderr: {exc.stderr}")
    assert proc.returncode == 0, f"rp.mjs exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"rp.mjs printed no JSON result:\n{proc.stdout}\n{proc.stderr}")


def _register(app, live_issuer, make_user, make_client, *, id_token_claims=None) -> tuple[str, str, str]:
    """Kari, the relying party and the service client; returns (sub, rp secret, service secret)."""
    from visma_idp.storage import User, db

    user_id = make_user(email=EMAIL, password=PASSWORD, given_name="Kari", family_name="Nordmann")
    with app.app_context():
        sub = db.session.get(User, user_id).sub
    rp_secret = make_client(
        RP_ID, redirect_uris=[f"{live_issuer}/cb"], secret=RP_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile email offline_access", id_token_claims=id_token_claims,
    )
    service_secret = make_client(
        SERVICE_ID, redirect_uris=[], secret=SERVICE_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"], scope="api:read",
    )
    return sub, rp_secret, service_secret


def test_openid_client_code_flow_refresh_and_client_credentials(node, app, idp, live_issuer, make_user,
                                                                 make_client):
    from visma_idp.oidc.tokens import verify

    sub, rp_secret, service_secret = _register(app, live_issuer, make_user, make_client)

    result = _run_rp(node, live_issuer, rp_secret=rp_secret, service_secret=service_secret)

    assert result["openid_client"] == {"ok": True}
    assert result["discovery"]["issuer"] == live_issuer
    assert result["discovery"]["supports_pkce"] is True
    # Back-Channel Logout 1.0 §2.1 and Front-Channel Logout 1.0 §3 metadata, as the client library read them
    assert result["discovery"]["end_session_endpoint"] == f"{live_issuer}/logout"
    for name in ("backchannel_logout_supported", "backchannel_logout_session_supported",
                 "frontchannel_logout_supported", "frontchannel_logout_session_supported"):
        assert result["discovery"][name] is True, name
    assert result["login"]["answered"] == {"email": True, "password": True, "consent": True}
    assert {"code", "state", "iss"} <= set(result["login"]["callback_params"])

    # ID token: signature, iss, aud, nonce, exp already checked by openid-client
    # with enableNonRepudiationChecks; check what it reported.
    code = result["code_grant"]
    claims = code["claims"]
    assert claims["sub"] == sub
    assert claims["iss"] == live_issuer
    assert claims["aud"] == RP_ID or claims["aud"] == [RP_ID]
    assert code["id_token_header"]["alg"] == "RS256"
    assert code["access_token_header"]["typ"] == "at+jwt"
    assert code["token_type"].lower() == "bearer"
    assert set(code["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert code["has_refresh_token"] is True

    assert result["userinfo"]["sub"] == sub
    assert result["userinfo"]["email"] == EMAIL
    # ID_TOKEN_SCOPE_CLAIMS (on by default): the profile is in the ID token too,
    # for relying parties that never call UserInfo
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is True
    assert claims["name"] == "Kari Nordmann" and claims["given_name"] == "Kari"
    assert result["refresh"]["id_token_email"] == EMAIL

    refresh = result["refresh"]
    assert refresh["rotated"] is True
    assert refresh["new_access_token_differs"] is True
    assert refresh["old_refused"] is not None, "the old refresh token was accepted again"
    assert refresh["old_refused"]["error"] == "invalid_grant"
    assert refresh["old_refused"]["status"] == 400

    cc = result["client_credentials"]
    assert cc["token_type"].lower() == "bearer"
    assert cc["has_refresh_token"] is False
    assert cc["access_token_header"]["typ"] == "at+jwt"
    with app.app_context():
        header, at_claims = verify(idp.keys, cc["access_token"], issuer=live_issuer, typ="at+jwt")
    assert header["typ"] == "at+jwt"
    assert at_claims["client_id"] == SERVICE_ID
    assert at_claims["scope"] == "api:read"


def test_openid_client_sees_no_profile_in_the_id_token_of_a_client_that_opted_out(node, app, live_issuer,
                                                                                 make_user, make_client):
    sub, rp_secret, service_secret = _register(app, live_issuer, make_user, make_client, id_token_claims=False)
    result = _run_rp(node, live_issuer, rp_secret=rp_secret, service_secret=service_secret)
    claims = result["code_grant"]["claims"]
    assert claims["sub"] == sub
    assert not {"email", "email_verified", "name", "given_name"} & set(claims), claims
    assert result["refresh"]["id_token_email"] is None
    assert result["userinfo"]["email"] == EMAIL, "UserInfo still has the profile"


@pytest.mark.parametrize("settings", [{"ID_TOKEN_SCOPE_CLAIMS": False}], indirect=True)
def test_openid_client_with_the_server_default_off(node, app, live_issuer, make_user, make_client):
    """Off for the server: a client without its own choice gets no profile in
    the ID token; a client that opted in does."""
    _sub, rp_secret, service_secret = _register(app, live_issuer, make_user, make_client)
    claims = _run_rp(node, live_issuer, rp_secret=rp_secret, service_secret=service_secret)["code_grant"]["claims"]
    assert "email" not in claims, claims

    from visma_idp.storage import Client, db

    with app.app_context():
        db.session.execute(db.update(Client).where(Client.client_id == RP_ID).values(id_token_claims=True))
        db.session.commit()
        app.extensions["visma_idp"].clients.invalidate(RP_ID)
    claims = _run_rp(node, live_issuer, rp_secret=rp_secret, service_secret=service_secret)["code_grant"]["claims"]
    assert claims["email"] == EMAIL
