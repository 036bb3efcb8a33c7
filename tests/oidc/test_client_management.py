"""Managing a registered client (oidc/registration.py): find_client,
update_client (the checks create_client makes, only real changes audited,
the client cache told at once), rotate_secret (a new secret stored as its
digest, the old one dead at once, refused for clients without a secret), the
back-channel logout URI, and the CLI: clients create/update/rotate-secret."""

from __future__ import annotations

import base64
import json

import pytest

from tests.password.recovery import audit
from tests.test_cli import env, migrated, run  # noqa: F401 - the CLI fixtures
from visma_idp.errors import InvalidInput

SECRET = "svc-secret-0123456789abcdef"


def _cc(client, secret, client_id="svc"):
    auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic " + auth})


@pytest.fixture
def svc(make_client):
    make_client("svc", grant_types=["client_credentials"], redirect_uris=[], scope="api:read", secret=SECRET)


# -- find_client, rotate_secret ------------------------------------------------------------------


def test_find_client(app, svc):
    from visma_idp.oidc.registration import find_client

    with app.app_context():
        assert find_client("svc").client_id == "svc"
        for nothing in ("nosuch", "", "x" * 129, None, 7):
            assert find_client(nothing) is None


def test_rotate_secret_takes_effect_at_once(app, idp, client, svc):
    from visma_idp.oidc.registration import find_client, rotate_secret
    from visma_idp.storage import db

    assert _cc(client, SECRET).status_code == 200  # cached now
    with app.app_context():
        secret = rotate_secret(find_client("svc"))
        db.session.commit()
        row = find_client("svc")
        assert row.secret_digest == idp.secrets.keyed_digest(secret) and secret not in row.secret_digest
    assert len(secret) >= 43 and secret != SECRET
    assert _cc(client, SECRET).status_code == 401
    assert _cc(client, secret).status_code == 200
    [rotated] = audit(app, "client_secret_rotated")
    assert rotated["client_id"] == "svc" and secret not in repr(rotated)
    with app.app_context():
        assert rotate_secret(find_client("svc")) != secret  # a new one each time


@pytest.mark.parametrize("kwargs", [
    {"public": True, "redirect_uris": ["https://spa.example.com/cb"]},
    {"token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}},
])
def test_rotate_secret_refuses_a_client_without_one(app, make_client, kwargs):
    from visma_idp.oidc.registration import find_client, rotate_secret

    make_client("nosecret", **kwargs)
    with app.app_context():
        row = find_client("nosecret")
        with pytest.raises(InvalidInput, match="no secret to rotate"):
            rotate_secret(row)
        assert row.secret_digest is None
    assert audit(app, "client_secret_rotated") == []


# -- update_client ---------------------------------------------------------------------------------


def test_update_client_changes_what_is_given(app, idp, make_client):
    from visma_idp.oidc.registration import UNSET, client_as_dict, find_client, update_client
    from visma_idp.storage import db

    make_client("expense", post_logout_redirect_uris=["https://rp.example.com/bye"])
    with app.app_context():
        idp.clients.get("expense")  # cached
        update_client(find_client("expense"), name="  Expenses  ", redirect_uris=["https://rp.example.com/cb2"],
                      backchannel_logout_uri="https://rp.example.com/bc", backchannel_logout_session_required=True)
        db.session.commit()
        assert idp.clients.get("expense").redirect_uris == ["https://rp.example.com/cb2"]  # the cache forgot it
        shown = client_as_dict(find_client("expense"))
        assert shown["client_name"] == "Expenses" and shown["redirect_uris"] == ["https://rp.example.com/cb2"]
        assert shown["post_logout_redirect_uris"] == ["https://rp.example.com/bye"]  # not given: kept
        assert shown["backchannel_logout_uri"] == "https://rp.example.com/bc"
        assert shown["backchannel_logout_session_required"] is True
        # UNSET keeps the URI; None (or "") removes it
        update_client(find_client("expense"), backchannel_logout_uri=UNSET, post_logout_redirect_uris=[])
        assert find_client("expense").backchannel_logout_uri == "https://rp.example.com/bc"
        update_client(find_client("expense"), backchannel_logout_uri=None)
        db.session.commit()
        assert find_client("expense").backchannel_logout_uri is None
        assert find_client("expense").post_logout_redirect_uris == []
    changes = [r["details"]["changed"] for r in audit(app, "client_updated")]
    assert changes == [["backchannel_logout_session_required", "backchannel_logout_uri", "name", "redirect_uris"],
                       ["post_logout_redirect_uris"], ["backchannel_logout_uri"]]


def test_update_client_without_a_change_is_not_audited(app, make_client):
    from visma_idp.oidc.registration import find_client, update_client

    make_client("expense")
    with app.app_context():
        row = find_client("expense")
        update_client(row, name=row.name, redirect_uris=list(row.redirect_uris))
        update_client(row)
    assert audit(app, "client_updated") == []


@pytest.mark.parametrize("kwargs, message", [
    ({"redirect_uris": ["http://rp.example.com/cb"]}, "https"),
    ({"redirect_uris": ["https://rp.example.com/cb#frag"]}, "without fragment"),
    ({"redirect_uris": ["javascript:alert(1)"]}, "native apps"),
    ({"redirect_uris": []}, "at least one redirect URI"),
    ({"post_logout_redirect_uris": ["http://rp.example.com/bye"]}, "https"),
    ({"name": "x" * 201}, "1 to 200"),
    ({"name": "   "}, "1 to 200"),
    ({"backchannel_logout_uri": "http://rp.example.com/bc"}, "https"),
    ({"backchannel_logout_uri": "https://rp.example.com/bc#f"}, "fragment"),
    ({"backchannel_logout_uri": "https://user:pw@rp.example.com/bc"}, "user name or password"),
    ({"backchannel_logout_uri": "rp.example.com/bc"}, "absolute https URL"),
    ({"backchannel_logout_uri": "https:///bc"}, "absolute https URL"),
    ({"backchannel_logout_uri": "https://rp.example.com/" + "a" * 2000}, "absolute https URL"),
])
def test_update_client_checks_as_create_client_does(app, make_client, kwargs, message):
    from visma_idp.oidc.registration import create_client, find_client, update_client

    make_client("expense")
    with app.app_context():
        row = find_client("expense")
        before = (row.name, list(row.redirect_uris), list(row.post_logout_redirect_uris), row.backchannel_logout_uri)
        with pytest.raises(InvalidInput, match=message):
            update_client(row, **kwargs)
        assert (row.name, list(row.redirect_uris), list(row.post_logout_redirect_uris),
                row.backchannel_logout_uri) == before
        if "redirect_uris" in kwargs and kwargs["redirect_uris"] or "backchannel_logout_uri" in kwargs:
            with pytest.raises(InvalidInput, match=message):  # the same rule at registration
                create_client("other", **{"redirect_uris": ["https://rp.example.com/cb"], **kwargs})
    assert audit(app, "client_updated") == []


def test_loopback_http_is_allowed(app, make_client):
    from visma_idp.oidc.registration import find_client, update_client

    make_client("expense")
    with app.app_context():
        update_client(find_client("expense"), redirect_uris=["http://127.0.0.1:8080/cb"],
                      backchannel_logout_uri="http://localhost:8080/bc")
        assert find_client("expense").backchannel_logout_uri == "http://localhost:8080/bc"


def test_a_native_app_keeps_its_own_redirect_rules(app, make_client):
    from visma_idp.oidc.registration import find_client, update_client

    make_client("mobile", public=True, application_type="native", redirect_uris=["com.example.app:/cb"])
    with app.app_context():
        update_client(find_client("mobile"), redirect_uris=["com.example.app:/callback", "http://127.0.0.1/cb"])
        assert find_client("mobile").redirect_uris == ["com.example.app:/callback", "http://127.0.0.1/cb"]


def test_create_client_stores_the_backchannel_logout_uri(app):
    from visma_idp.oidc.registration import client_as_dict, create_client

    with app.app_context():
        plain = client_as_dict(create_client("a", redirect_uris=["https://rp.example.com/cb"]).client)
        assert plain["backchannel_logout_uri"] is None and plain["backchannel_logout_session_required"] is False
        created = create_client("b", redirect_uris=["https://rp.example.com/cb"],
                                backchannel_logout_uri="https://rp.example.com/bc",
                                backchannel_logout_session_required=True).client
        shown = client_as_dict(created)
        assert shown["backchannel_logout_uri"] == "https://rp.example.com/bc"
        assert shown["backchannel_logout_session_required"] is True


# -- the CLI -------------------------------------------------------------------------------------------


def test_cli_create_update_rotate(migrated, make_app):  # noqa: F811
    created = json.loads(migrated("clients", "create", "--client-id", "rp", "--redirect-uri", "https://rp.example/cb",
                                  "--backchannel-logout-uri", "https://rp.example/bc",
                                  "--backchannel-logout-session-required").stdout)
    assert created["backchannel_logout_uri"] == "https://rp.example/bc"
    assert created["backchannel_logout_session_required"] is True
    bad = migrated("clients", "create", "--client-id", "bad", "--redirect-uri", "https://rp.example/cb",
                   "--backchannel-logout-uri", "http://rp.example/bc", expect=1)
    assert "https" in bad.stderr

    updated = json.loads(migrated("clients", "update", "--client-id", "rp", "--redirect-uri", "https://rp.example/a",
                                  "--redirect-uri", "https://rp.example/b", "--no-backchannel-logout-uri",
                                  "--name", "Relying party").stdout)
    assert updated["redirect_uris"] == ["https://rp.example/a", "https://rp.example/b"]
    assert updated["backchannel_logout_uri"] is None and updated["client_name"] == "Relying party"
    assert "client_secret" not in updated
    assert "https" in migrated("clients", "update", "--client-id", "rp", "--redirect-uri", "http://rp.example/a",
                               expect=1).stderr
    assert "no client 'nosuch'" in migrated("clients", "update", "--client-id", "nosuch", "--name", "x",
                                            expect=1).stderr

    out = migrated("clients", "rotate-secret", "--client-id", "rp")
    secret = out.stdout.strip().rsplit(" ", 1)[1]
    assert out.stdout.startswith("new secret for rp: ") and "not shown again" in out.stderr
    app = make_app(keys=True)
    from visma_idp.oidc.registration import find_client

    with app.app_context():
        assert find_client("rp").secret_digest == app.extensions["visma_idp"].secrets.keyed_digest(secret)
    assert secret not in migrated("clients", "list", "--json").stdout
    migrated("clients", "create", "--client-id", "spa", "--public", "--redirect-uri", "https://spa.example/cb")
    assert "no secret to rotate" in migrated("clients", "rotate-secret", "--client-id", "spa", expect=1).stderr
