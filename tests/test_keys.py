"""Signing keys: cached per process, rotation seen by other processes."""

from visma_idp.oidc.tokens import sign, verify


def test_key_made_by_another_process_is_trusted_at_once(app, idp, make_app):
    other = make_app()  # a second node on the same database
    with other.app_context():
        other_idp = other.extensions["visma_idp"]
        other_idp.keys.rotate(("ES256",))
        token = sign(other_idp.keys, "ES256", {"iss": idp.issuer, "sub": "x"})
    with app.app_context():
        idp.keys.jwks()  # this node's cache predates the rotation
        _, claims = verify(idp.keys, token, issuer=idp.issuer)
    assert claims["sub"] == "x"


def test_private_keys_are_parsed_once(app, idp, monkeypatch):
    from visma_idp.oidc import keys as keys_module

    calls = []
    real = keys_module._import_private
    monkeypatch.setattr(keys_module, "_import_private", lambda *a: calls.append(a) or real(*a))
    with app.app_context():
        idp.keys.invalidate()
        for _ in range(5):
            sign(idp.keys, "ES256", {"iss": idp.issuer})
        idp.clock.advance(idp.settings["KEY_CACHE_SECONDS"] + 1)  # periodic re-read
        sign(idp.keys, "ES256", {"iss": idp.issuer})
    assert len(calls) == 4  # one per algorithm, not per request nor per re-read


def test_retired_key_published_until_its_tokens_expired(app, idp):
    with app.app_context():
        old = idp.keys.signing_key("RS256").kid
        idp.keys.rotate(("RS256",))
        kids = {k["kid"] for k in idp.keys.jwks()["keys"]}
        assert old in kids and idp.keys.signing_key("RS256").kid != old
        idp.clock.advance(idp.keys.publish_window() + idp.settings["KEY_CACHE_SECONDS"] + 1)
        assert old not in {k["kid"] for k in idp.keys.jwks()["keys"]}
