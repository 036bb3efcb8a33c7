"""The per-process client cache: fast, but never stale beyond its TTL."""

import base64

from sqlalchemy import update

from visma_idp.storage import Client, db


def _cc(client, secret):
    auth = base64.b64encode(f"svc:{secret}".encode()).decode()
    return client.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic " + auth})


def test_changed_secret_reaches_the_process_within_the_ttl(app, idp, client, make_client):
    make_client("svc", grant_types=["client_credentials"], redirect_uris=[], scope="api:read", secret="old-secret-0123456789")
    assert _cc(client, "old-secret-0123456789").status_code == 200
    with app.app_context():  # another node changes the secret in the database
        db.session.execute(update(Client).where(Client.client_id == "svc").values(
            secret_digest=idp.secrets.keyed_digest("new-secret-0123456789")))
        db.session.commit()
    assert _cc(client, "old-secret-0123456789").status_code == 200  # still cached
    idp.clock.advance(idp.settings["CLIENT_CACHE_SECONDS"])
    assert _cc(client, "old-secret-0123456789").status_code == 401
    assert _cc(client, "new-secret-0123456789").status_code == 200


def test_unknown_client_is_not_cached(app, client, make_client):
    assert _cc(client, "a-secret-0123456789").status_code == 401
    make_client("svc", grant_types=["client_credentials"], redirect_uris=[], scope="api:read", secret="a-secret-0123456789")
    assert _cc(client, "a-secret-0123456789").status_code == 200
