"""Our compact JWS signer (``oidc/signer.py``) checked by an independent
implementation: joserfc verifies every algorithm against the public key that
``/jwks`` publishes, and reads back exactly the header and claims we signed."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from visma_idp.oidc.tokens import sign

ALGS = ["RS256", "PS256", "ES256", "EdDSA"]
REGISTRY = JWSRegistry(algorithms=ALGS)
CLAIMS = {"iss": "http://127.0.0.1:5000", "sub": "u-1", "aud": "rp", "name": "Åse Ødegård", "n": 3, "ok": True}


def _part(token: str, index: int) -> dict:
    raw = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


@pytest.mark.parametrize("alg", ALGS)
def test_every_algorithm_verifies_with_the_published_key(app, client, idp, alg):
    with app.app_context():
        token = sign(idp.keys, alg, CLAIMS, typ="at+jwt")
    header = _part(token, 0)
    assert header == {"alg": alg, "kid": header["kid"], "typ": "at+jwt"}
    public = KeySet.import_key_set(client.get("/jwks").get_json())
    key = public.get_by_kid(header["kid"])
    decoded = jwt.decode(token, key, algorithms=[alg], registry=REGISTRY)
    assert decoded.claims == CLAIMS
    assert "=" not in token and token.count(".") == 2


@pytest.mark.parametrize("alg", ALGS)
def test_a_changed_claim_breaks_the_signature(app, client, idp, alg):
    with app.app_context():
        token = sign(idp.keys, alg, CLAIMS)
    header, _, signature = token.split(".")
    forged_claims = base64.urlsafe_b64encode(json.dumps({**CLAIMS, "sub": "admin"}).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_claims}.{signature}"
    key = KeySet.import_key_set(client.get("/jwks").get_json()).get_by_kid(_part(token, 0)["kid"])
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, key, algorithms=[alg], registry=REGISTRY)


def test_es256_signature_is_raw_r_and_s(app, idp):
    """RFC 7518 §3.4: 64 bytes (R || S), not the DER that cryptography returns."""
    with app.app_context():
        token = sign(idp.keys, "ES256", CLAIMS)
    raw = token.split(".")[2]
    assert len(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) == 64
