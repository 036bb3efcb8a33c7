"""Hand-built JWTs for the forgery tests (alg none, HS256 with a public key as secret, edited claims)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsigned_jwt(header: dict, claims: dict) -> str:
    """A JWT with ``alg: none`` (empty signature)."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def hs256_jwt(header: dict, claims: dict, key: bytes) -> str:
    """A JWT MACed with HS256 under ``key`` (the classic "public key as HMAC secret" forgery)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def jwt_parts(token: str) -> tuple[dict, dict]:
    header, payload, _sig = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def with_claims(token: str, **changes) -> str:
    """The same JWT with changed payload claims and the ORIGINAL signature kept."""
    header, payload, sig = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.update(changes)
    return f"{header}.{b64url(json.dumps(claims).encode())}.{sig}"
