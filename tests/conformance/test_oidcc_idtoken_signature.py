"""oidcc-idtoken-signature (OIDCCIdTokenSignature): the ID token is signed
(never ``alg: none``), names its key with ``kid``, is RS256 by default and
verifies against the published JWKS. A client registered for another
algorithm (``id_token_signed_response_alg``, CheckIdTokenSignatureAlgorithm)
gets its ID token signed with that algorithm, at_hash taken with the hash that
algorithm uses.
"""

import pytest

from tests.conformance.oidf import CLIENT_ID, REDIRECT_URI, half_hash, run_code_flow, server_jwks
from tests.helpers import Flow


def test_default_signature_is_rs256_with_kid(oidf, idp, client):
    result = run_code_flow(oidf, idp)
    header = result.id_token.header
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in server_jwks(client)["keys"]}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_registered_id_token_alg_is_used(app, client, idp, make_user, make_oidf_client, alg):
    make_user()
    secret = make_oidf_client(id_token_signed_response_alg=alg)
    flow = Flow(app, client, client_id=CLIENT_ID, client_secret=secret, redirect_uri=REDIRECT_URI)
    result = run_code_flow(flow, idp, alg=alg)
    assert result.id_token.header["alg"] == alg
    assert result.claims["at_hash"] == half_hash(result.tokens["access_token"], alg)
    key = next(k for k in server_jwks(client)["keys"] if k["kid"] == result.id_token.header["kid"])
    assert key["alg"] == alg
