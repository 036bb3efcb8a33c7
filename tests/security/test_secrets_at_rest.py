"""What a stolen database backup gives away: no usable code, token, session
id or client secret (only digests), no readable private signing key."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from tests.security.forge import jwt_parts

CLIENT_SECRET = "expense-secret-0123456789"


def all_stored_text(app) -> list[tuple[str, str, str]]:
    """(table, column, value-as-text) for every non-null value in every table."""
    from visma_idp.storage import db

    out = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    out.append((table.name, column, text))
    return out


@pytest.fixture
def exchanged(flow, client):
    """A full login, consent, code exchange and one refresh; every raw secret seen on the wire."""
    params = flow.authorize(scope="openid email offline_access")
    code = params["code"]
    first = flow.token(code)
    assert first.status_code == 200
    tokens = first.get_json()
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert refreshed.status_code == 200
    newer = refreshed.get_json()
    sid = client.get_cookie("visma_idp_sid").value
    return {
        "code": code,
        "refresh_token": tokens["refresh_token"],
        "rotated_refresh_token": newer["refresh_token"],
        "access_token_jti": jwt_parts(tokens["access_token"])[1]["jti"],
        "rotated_access_token_jti": jwt_parts(newer["access_token"])[1]["jti"],
        "access_token": tokens["access_token"],
        "id_token": tokens["id_token"],
        "session_id": sid,
        "client_secret": CLIENT_SECRET,
        "code_verifier": flow.last["verifier"],
        "password": flow.password,
    }


def test_no_raw_secret_anywhere_in_the_database(app, exchanged):
    stored = all_stored_text(app)
    assert any(table == "tokens" for table, _c, _v in stored)  # the search saw the token rows
    for name, raw in exchanged.items():
        hits = [(table, column) for table, column, text in stored if raw in text]
        assert not hits, f"{name} stored in plain text at {hits}"


def test_digests_are_what_is_stored(app, exchanged):
    """Control for the search above: the rows exist, under their digests."""
    from visma_idp.crypto import digest
    from visma_idp.oidc.tokens import access_token_digest
    from visma_idp.storage import AuthorizationCode, SsoSession, Token, db

    with app.app_context():
        assert db.session.scalar(select(AuthorizationCode).where(
            AuthorizationCode.code_digest == digest(exchanged["code"]))) is not None
        assert db.session.scalar(select(Token).where(Token.digest == digest(exchanged["refresh_token"]))) is not None
        assert db.session.scalar(select(Token).where(
            Token.digest == access_token_digest(exchanged["access_token_jti"]))) is not None
        assert db.session.get(SsoSession, digest(exchanged["session_id"])) is not None


def test_signing_keys_private_parts_encrypted(app, idp):
    from visma_idp.storage import SigningKey, db

    with app.app_context():
        rows = db.session.scalars(select(SigningKey)).all()
        assert {row.alg for row in rows} >= {"RS256", "ES256"}
        for row in rows:
            assert "PRIVATE KEY" not in row.private_key_enc
            assert "BEGIN" not in row.private_key_enc
            assert "d" not in row.public_jwk and "p" not in row.public_jwk
            # it is really the key, under encryption: decrypting gives a PEM
            assert b"PRIVATE KEY" in idp.secrets.decrypt(row.private_key_enc)
    for table, column, text in all_stored_text(app):
        assert "PRIVATE KEY" not in text, (table, column)


def test_key_encryption_is_bound_to_the_secret_key(app, idp):
    from visma_idp.crypto import Secrets
    from visma_idp.storage import SigningKey, db

    with app.app_context():
        row = db.session.scalars(select(SigningKey)).first()
        with pytest.raises(ValueError, match="SECRET_KEY"):
            Secrets("another-secret-key-that-is-long-enough-xyz").decrypt(row.private_key_enc)


def test_client_secret_digest_is_keyed(app, idp, flow):
    from visma_idp.crypto import Secrets
    from visma_idp.storage import Client, db

    with app.app_context():
        stored = db.session.scalar(select(Client).where(Client.client_id == "expense")).secret_digest
    assert stored != hashlib.sha256(CLIENT_SECRET.encode()).hexdigest()
    assert stored != hashlib.sha256(CLIENT_SECRET.encode()).hexdigest().upper()
    assert stored == idp.secrets.keyed_digest(CLIENT_SECRET)
    # another SECRET_KEY gives another digest: a dump alone does not allow offline guessing
    assert Secrets("another-secret-key-that-is-long-enough-xyz").keyed_digest(CLIENT_SECRET) != stored


def test_password_is_stored_as_argon2id(app, flow):
    from visma_idp.storage import queries

    with app.app_context():
        stored = queries.user_by_email(flow.email).password_hash
    assert stored.startswith("$argon2id$")
    assert flow.password not in stored


def test_queued_mail_keeps_its_links_encrypted(app, client, make_user, mailbox, settings):
    """A reset mail carries two live links; the outbox row must not give them away."""
    from tests.password.recovery import forgot, reset_links

    make_user(email="kari@example.no")
    app.extensions["visma_idp"].settings["POW_DIFFICULTY"] = 4
    assert forgot(client, "kari@example.no").status_code == 200
    stored_before_sending = all_stored_text(app)
    reset, login = reset_links(mailbox.last("kari@example.no"))  # now delivered through SMTP
    raws = [reset.rsplit("/", 1)[1], login.rsplit("/", 1)[1]]
    for stored in (stored_before_sending, all_stored_text(app)):
        assert any(table == "mail_outbox" for table, _c, _v in stored)
        for raw in raws:
            hits = [(table, column) for table, column, text in stored if raw in text]
            assert not hits, f"a live link is stored in plain text at {hits}"
