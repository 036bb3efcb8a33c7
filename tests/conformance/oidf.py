"""What the OpenID Foundation conformance suite's relying party does and checks,
in Python, for the tests in this package (one test file per certification module).

The suite's modules are built from "conditions" (``ValidateIdToken``,
``CheckTokenEndpointCacheHeaders``, ...); the functions here carry the same
names in their docstrings so a failing assertion can be traced to the check
the certification run would fail or warn on.

ID tokens are verified independently of the provider's own code: the key is
taken from ``/jwks`` by the header's ``kid`` and the signature checked with
joserfc directly; ``at_hash`` is computed here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import JWKRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # joserfc flags EdDSA as superseded by "Ed25519"
    from joserfc.jws import JWSRegistry

ISSUER = "http://127.0.0.1:5000"
REDIRECT_URI = "https://rp.example.com/callback"
CLIENT_ID = "oidf-client"
CLIENT_SECRET = "oidf-client-secret-0123456789abcdef"

# The suite's requests carry no PKCE except in oidcc-ensure-request-with-valid-pkce-succeeds.
NO_PKCE = {"code_challenge": None, "code_challenge_method": None}

# OIDC Core 5.4 (the suite's AbstractVerifyScopesReturnedInClaims table)
SCOPE_CLAIMS = {
    "openid": ["sub"],
    "profile": [
        "name", "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website",
        "gender", "birthdate", "zoneinfo", "locale", "updated_at", "preferred_username",
    ],
    "email": ["email", "email_verified"],
    "address": ["address"],
    "phone": ["phone_number", "phone_number_verified"],
    "offline_access": [],
}

# Claims an ID token may carry without being asked for (EnsureIdTokenDoesNotContainNonRequestedClaims)
ID_TOKEN_PROTOCOL_CLAIMS = {
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "nbf",
    "jti", "sid", "s_hash",
}

# RFC 6749 §4.1.2.1 / §5.2: error and error_description characters
ERROR_CHARS = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]+$")
USER_INTERFACE_ERRORS = {"login_required", "interaction_required", "account_selection_required", "consent_required"}
ERROR_RESPONSE_PARAMS = {"error", "error_description", "error_uri", "state", "iss"}


def b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash (OIDC Core 3.1.3.6): the left half of the hash the alg's
    digest uses (SHA-256 for RS256/PS256/ES256; SHA-512 for EdDSA over Ed25519)."""
    algorithm = hashlib.sha512 if alg == "EdDSA" else hashlib.sha256
    digest = algorithm(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def callback_params(resp, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The query of a 302 to the client's redirect URI (CheckMatchingCallbackParameters)."""
    assert resp.status_code == 302, (resp.status_code, resp.get_data(as_text=True)[:500])
    location = resp.headers["Location"]
    assert location.split("?")[0] == redirect_uri, location
    assert "#" not in location, "code flow responses use the query, never the fragment"
    pairs = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"a parameter is repeated: {location}"
    return dict(pairs)


def assert_error_page(resp) -> None:
    """The OP shows an error page and does not redirect anywhere
    (oidcc-ensure-registered-redirect-uri and friends)."""
    assert resp.status_code == 400, resp.status_code
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert 'role="alert"' in html
    assert REDIRECT_URI not in html


def check_error_response(params: dict[str, str], *, error: str | set[str], state: str | None) -> None:
    """performGenericAuthorizationEndpointErrorResponseValidation: the state comes
    back unchanged, iss is the issuer, no code, no unexpected parameters, and
    error / error_description use the RFC 6749 character set."""
    expected = {error} if isinstance(error, str) else error
    assert params.get("error") in expected, params
    assert "code" not in params, params  # RejectAuthCodeInAuthorizationEndpointResponse
    if state is None:
        assert "state" not in params, params
    else:
        assert params.get("state") == state, params  # CheckStateInAuthorizationResponse
    assert params.get("iss") == ISSUER, params  # ValidateIssIfPresentInAuthorizationResponse (RFC 9207)
    assert set(params) <= ERROR_RESPONSE_PARAMS, params
    assert ERROR_CHARS.match(params["error"]), params
    if "error_description" in params:
        assert ERROR_CHARS.match(params["error_description"]), params
        assert not re.search(r"[\r\n\t]", params["error_description"])


def check_success_response(params: dict[str, str], *, state: str) -> str:
    """CheckIfAuthorizationEndpointError, CheckStateInAuthorizationResponse,
    ValidateIssIfPresentInAuthorizationResponse, EnsureMinimumAuthorizationCodeLength
    / Entropy (RFC 6749 §10.10: at least 128 bits). Returns the code."""
    assert "error" not in params, params
    assert params.get("state") == state, params
    assert params.get("iss") == ISSUER, params
    assert set(params) == {"code", "state", "iss"}, params
    code = params["code"]
    assert len(code) * 8 >= 128 and len(set(code)) >= 16, code
    return code


def check_token_response(resp) -> dict[str, Any]:
    """CheckTokenEndpointHttpStatus200, CheckTokenEndpointReturnedJsonContentType,
    CheckTokenEndpointCacheHeaders, CheckForAccessTokenValue, CheckTokenTypeIsBearer,
    ValidateExpiresIn, EnsureAccessTokenContainsAllowedCharactersOnly."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    cache_control = [p.strip() for p in resp.headers.get("Cache-Control", "").split(",")]
    assert "no-store" in cache_control, resp.headers
    assert resp.headers.get("Pragma") == "no-cache", resp.headers
    body = resp.get_json()
    assert isinstance(body.get("access_token"), str) and body["access_token"]
    assert re.match(r"^[\x20-\x7e]+$", body["access_token"])
    assert body.get("token_type", "").lower() == "bearer"
    assert isinstance(body.get("expires_in"), int) and not isinstance(body["expires_in"], bool)
    assert body["expires_in"] > 0
    if "refresh_token" in body:
        assert re.match(r"^[\x20-\x7e]+$", body["refresh_token"])
        assert len(body["refresh_token"].encode()) * 8 >= 128
    assert isinstance(body.get("id_token"), str), "an OpenID token response carries an id_token"
    return body


def check_token_error(resp, error: str = "invalid_grant") -> dict[str, Any]:
    """CheckTokenEndpointHttpStatus400, CheckTokenEndpointReturnedJsonContentType,
    CheckErrorFromTokenEndpointResponseErrorInvalidGrant, ValidateErrorFromTokenEndpointResponseError."""
    assert resp.status_code == 400, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["error"] == error, body
    assert "access_token" not in body and "id_token" not in body
    assert ERROR_CHARS.match(body["error"])
    if "error_description" in body:
        assert ERROR_CHARS.match(body["error_description"]), body
    return body


# -- JWKS and ID tokens, verified without the provider's code ----------------------

def server_jwks(client) -> dict[str, Any]:
    """FetchServerKeys + ValidateServerJWKs + CheckForKeyIdInServerJWKs +
    CheckDistinctKeyIdValueInServerJWKs + EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys."""
    resp = client.get("/jwks")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    jwks = resp.get_json()
    keys = jwks["keys"]
    assert keys, "the JWKS has no keys"
    kids = [k.get("kid") for k in keys]
    assert all(isinstance(k, str) and k for k in kids), keys
    assert len(kids) == len(set(kids)), "kids must be distinct"
    for key in keys:
        assert key["kty"] in {"RSA", "EC", "OKP"}, key
        assert not {"d", "p", "q", "dp", "dq", "qi", "k", "oth"} & set(key), "private or symmetric key material"
        assert key.get("use") == "sig", key
        assert isinstance(key.get("alg"), str), key
        JWKRegistry.import_key(key)  # a well-formed public key
    return jwks


_REGISTRY = JWSRegistry(algorithms=["RS256", "PS256", "ES256", "EdDSA"])


@dataclass
class IdToken:
    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]


def verify_id_token(client, token: str, *, alg: str = "RS256") -> IdToken:
    """ValidateIdTokenSignature + ValidateIdTokenSignatureUsingKid + CheckIdTokenSignatureAlgorithm:
    the key named by ``kid`` in the published JWKS verifies the signature with the expected alg."""
    assert isinstance(token, str) and token.count(".") == 2, "an ID token is a compact JWS (not a JWE, not unsecured)"
    header = b64url_json(token.split(".")[0])
    assert header.get("alg") == alg, header
    assert header.get("kid"), "EnsureIdTokenContainsKid"
    assert header.get("typ") in (None, "JWT"), header
    jwks = server_jwks(client)
    matching = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(matching) == 1, f"kid {header['kid']} is not in the JWKS"
    jwk = matching[0]
    assert jwk["alg"] == alg, (jwk["alg"], alg)
    key = JWKRegistry.import_key(jwk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = jwt.decode(token, key, algorithms=[alg], registry=_REGISTRY)
    return IdToken(token, dict(decoded.header), dict(decoded.claims))


def check_id_token(
    idt: IdToken,
    *,
    now: int,
    client_id: str = CLIENT_ID,
    nonce: str | None,
    access_token: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """PerformStandardIdTokenChecks: ValidateIdToken (iss, aud, azp, exp, iat, auth_time, acr),
    ValidateIdTokenStandardClaims, ValidateIdTokenNonce, CheckForSubjectInIdToken,
    plus OIDCCServerTest's at_hash / c_hash rules for the token endpoint's ID token,
    EnsureIdTokenDoesNotContainName and EnsureIdTokenDoesNotContainNonRequestedClaims."""
    c = idt.claims
    skew = 300
    assert c.get("iss") == ISSUER, c
    aud = c.get("aud")
    if isinstance(aud, list):
        assert client_id in aud, c
        assert c.get("azp") == client_id, "azp is required with several audiences"
    else:
        assert aud == client_id, c
    if "azp" in c:
        assert c["azp"] == client_id, c
    for name in ("exp", "iat"):
        assert isinstance(c.get(name), int) and not isinstance(c[name], bool), (name, c)
    assert c["exp"] > now - skew, "expired"
    assert c["exp"] < now + 50 * 365 * 86400, "exp in milliseconds?"
    assert now - skew <= c["iat"] <= now + skew, "iat must be the current time"
    assert c["exp"] > c["iat"]
    if "auth_time" in c:
        assert isinstance(c["auth_time"], int)
        assert now - 365 * 86400 < c["auth_time"] <= now + skew
    if "acr" in c:
        assert isinstance(c["acr"], str) and c["acr"], c
    if "amr" in c:
        assert isinstance(c["amr"], list) and all(isinstance(v, str) for v in c["amr"]), c
    sub = c.get("sub")
    assert isinstance(sub, str) and 0 < len(sub) <= 255, c
    assert all(0x20 <= ord(ch) < 0x7F for ch in sub), "sub must be printable ASCII"
    if nonce is None:
        assert "nonce" not in c, c
    else:
        assert c.get("nonce") == nonce, c
    check_standard_claims(c, id_token=True)
    if "at_hash" in c:  # optional from the token endpoint, but must be right
        assert access_token is not None
        assert c["at_hash"] == half_hash(access_token, idt.header["alg"]), "ValidateAtHash"
    if "c_hash" in c:  # likewise optional from the token endpoint
        assert code is not None
        assert c["c_hash"] == half_hash(code, idt.header["alg"]), "ValidateCHash"
    assert "name" not in c, "EnsureIdTokenDoesNotContainName: name was not asked for in the ID token"
    return c


def check_standard_claims(claims: dict[str, Any], *, id_token: bool = False) -> None:
    """ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims: OIDC Core 5.1 types,
    EnsureUserInfoBirthDateValid and EnsureUserInfoUpdatedAtValid."""
    strings = {
        "sub", "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
        "profile", "picture", "website", "email", "gender", "zoneinfo", "locale", "phone_number",
    }
    for name, value in claims.items():
        if id_token and name in ID_TOKEN_PROTOCOL_CLAIMS - {"sub"}:
            continue
        if name in strings:
            assert isinstance(value, str) and value.strip() and value.lower() != "null", (name, value)
        elif name in ("email_verified", "phone_number_verified"):
            assert isinstance(value, bool), (name, value)
        elif name == "updated_at":
            assert isinstance(value, int) and not isinstance(value, bool), (name, value)
            assert 631152000 <= value, "updated_at before 1990"
        elif name == "birthdate":
            assert re.match(r"^(\d{4}|\d{4}-\d{2}-\d{2})$", value), value
        elif name == "address":
            assert isinstance(value, dict) and value, value
            allowed = {"formatted", "street_address", "locality", "region", "postal_code", "country"}
            assert set(value) <= allowed, value
            assert all(isinstance(v, str) and v.strip() for v in value.values()), value
        elif id_token:
            raise AssertionError(f"EnsureIdTokenDoesNotContainNonRequestedClaims: {name}")


# -- userinfo --------------------------------------------------------------------

def userinfo(client, access_token: str, how: str = "get"):
    """CallUserInfoEndpoint with the access token in the Authorization header (GET or
    POST) or in a form-encoded POST body (RFC 6750 §2.1 / §2.2)."""
    if how == "get":
        return client.get("/userinfo", headers={"Authorization": "Bearer " + access_token})
    if how == "post-header":
        return client.post("/userinfo", headers={"Authorization": "Bearer " + access_token})
    if how == "post-body":
        return client.post("/userinfo", data={"access_token": access_token})
    raise ValueError(how)


def check_userinfo(resp, *, sub: str) -> dict[str, Any]:
    """EnsureHttpStatusCodeIs200, EnsureContentTypeJson, ValidateUserInfoStandardClaims,
    EnsureUserInfoContainsSub, VerifyUserInfoAndIdTokenInTokenEndpointSameSub."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    info = resp.get_json()
    assert info.get("sub") == sub, (info, sub)
    check_standard_claims(info)
    return info


def check_scopes_in_userinfo(info: dict[str, Any], scope: str) -> None:
    """VerifyScopesReturnedInUserInfoClaims: every standard claim of every requested scope is there."""
    missing = [c for s in scope.split() for c in SCOPE_CLAIMS[s] if c not in info]
    assert not missing, f"userinfo lacks {missing} for scope {scope!r}"


# -- one whole flow, as AbstractOIDCCServerTest runs it ------------------------------

@dataclass
class Result:
    state: str
    nonce: str | None
    code: str
    tokens: dict[str, Any]
    id_token: IdToken
    claims: dict[str, Any]
    callback: dict[str, str] = field(default_factory=dict)


def run_code_flow(flow, idp, *, alg: str = "RS256", client_id: str = CLIENT_ID, token_extra: dict | None = None,
                  verifier: str | None = None, method: str = "GET", **params) -> Result:
    """The suite's code flow: authorization request (no PKCE unless given), the
    callback checks, the token request and the ID token checks, then userinfo."""
    callback = flow.authorize(method=method, **{**NO_PKCE, **params})
    return finish_code_flow(flow, idp, callback, alg=alg, client_id=client_id, token_extra=token_extra,
                            verifier=verifier, nonce_sent="nonce" not in params or params["nonce"] is not None)


def finish_code_flow(flow, idp, callback: dict[str, str], *, alg: str = "RS256", client_id: str = CLIENT_ID,
                     token_extra: dict | None = None, verifier: str | None = None, nonce_sent: bool = True) -> Result:
    state = flow.last["state"]
    nonce = flow.last["nonce"] if nonce_sent else None
    code = check_success_response(callback, state=state)
    resp = flow.token(code, verifier=verifier, **(token_extra or {}))
    tokens = check_token_response(resp)
    idt = verify_id_token(flow.client, tokens["id_token"], alg=alg)
    claims = check_id_token(idt, now=idp.clock.now(), client_id=client_id, nonce=nonce,
                            access_token=tokens["access_token"], code=code)
    # requestProtectedResource: the access token works at the userinfo endpoint
    check_userinfo(userinfo(flow.client, tokens["access_token"]), sub=claims["sub"])
    return Result(state, nonce, code, tokens, idt, claims, callback)


def authorize_url(params: dict[str, str] | list[tuple[str, str]]) -> str:
    return "/authorize?" + urlencode(params)
