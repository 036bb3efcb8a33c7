"""Attacks on the round trip to an upstream, against a real upstream (npm
oidc-provider) where it takes part, and on the ID token check itself.

- an answer taken to another browser (login CSRF, a stolen callback URL);
- a replayed answer (the upstream's code used twice);
- a swapped or missing ``iss`` (RFC 9207 mix-up);
- an ID token signed with ``none``, with HS256 where RS256 is pinned, with
  another key, for another audience, with another nonce, expired;
- an upstream that does not answer.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.federation.conftest import SECRET, at_upstream, back_home, button, tx_of
from tests.federation.upstream import Upstream
from tests.helpers import csrf, query

STATE_PAGE = "expired or was started in another browser"


def _failures(app):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        return [e.details["reason"] for e in db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.event == "upstream_failed").order_by(AuditEvent.id))]


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


@pytest.mark.interop
def test_an_answer_in_another_browser_counts_for_nothing(flow, company, app):
    attacker = app.test_client()
    callback = at_upstream(button(attacker, "acme"), "kari")  # the attacker's own round trip, not followed
    # the victim has no round trip pending
    resp = back_home(flow.client, callback)
    assert resp.status_code == 400 and STATE_PAGE in resp.get_data(as_text=True)
    # the victim has one of their own pending: the attacker's state is not theirs
    button(flow.client, "acme", tx_of(flow.start()))
    resp = back_home(flow.client, callback)
    assert resp.status_code == 400 and STATE_PAGE in resp.get_data(as_text=True)
    assert not _signed_in(flow.client)
    assert _failures(app) == ["no round trip pending in this browser", "state does not match this browser's round trip"]


@pytest.mark.interop
def test_a_replayed_answer_is_refused(flow, company, app, make_user):
    # link once so the upstream signs in, then replay the same answer
    from visma_idp.federation import linking, upstreams
    from visma_idp.storage import User, db

    with app.app_context():
        row = upstreams.by_name("acme")
        kari = db.session.scalar(db.select(User).where(User.email == "kari@example.no"))
        ident = linking.Identity(row.id, row.issuer, "acme-0001", "kari@example.no", True, "Kari", "kari@example.no")
        linking.link(kari, row, ident, notify=False)
        db.session.commit()
    callback = at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari")
    first = back_home(flow.client, callback)
    assert first.status_code == 302 and "error" not in query(first.headers["Location"])
    fresh = app.test_client()
    assert back_home(fresh, callback).status_code == 400
    # the same browser, with a new round trip pending: the old answer's state is not it
    button(flow.client, "acme", tx_of(flow.start(prompt="login")))
    assert back_home(flow.client, callback).status_code == 400
    assert _failures(app)[-1] == "state does not match this browser's round trip"


@pytest.mark.interop
@pytest.mark.parametrize("iss", ["https://evil.example", None])
def test_a_swapped_or_missing_iss_is_refused(flow, company, app, iss):
    callback = at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari")
    params = query(callback)
    if iss is None:
        params.pop("iss")
    else:
        params["iss"] = iss
    resp = flow.client.get(urlsplit(callback).path + "?" + urlencode(params))
    assert resp.status_code == 400 and "We could not confirm who you are at Acme ID" in resp.get_data(as_text=True)
    assert "(RFC 9207)" in _failures(app)[-1]
    assert not _signed_in(flow.client)


@pytest.mark.interop
def test_hs256_where_rs256_is_pinned_is_refused(flow, add_upstream, company_idp, app):
    # the upstream signs this client's ID tokens with HS256; we pinned RS256
    add_upstream("acme-hs", company_idp, client_id="visma-idp-hs256")
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme-hs", tx_of(flow.start())), "kari"))
    assert resp.status_code == 400
    assert _failures(app)[-1] == "ID token: signed with 'HS256', pinned 'RS256'"


@pytest.mark.interop
def test_hs256_works_where_the_operator_pinned_it(flow, add_upstream, company_idp, app):
    add_upstream("acme-hs", company_idp, client_id="visma-idp-hs256", id_token_alg="HS256")
    resp = back_home(flow.client, at_upstream(button(flow.client, "acme-hs", tx_of(flow.start())), "kari"))
    assert resp.status_code == 302 and "/login/link-account" in resp.headers["Location"]


@pytest.mark.interop
def test_an_expired_round_trip_is_refused(flow, company, app, idp):
    callback = at_upstream(button(flow.client, "acme", tx_of(flow.start())), "kari")
    idp.clock.advance(idp.settings["UPSTREAM_ROUNDTRIP_SECONDS"] + 1)
    resp = back_home(flow.client, callback)
    assert resp.status_code == 400
    assert _failures(app)[-1] == "the round trip expired"


@pytest.mark.interop
def test_an_upstream_that_does_not_answer_gets_a_page_not_a_500(flow, add_upstream, node, app, caplog):
    from visma_idp.storage import Upstream as Row
    from visma_idp.storage import db

    running = Upstream.start({"accounts": {"kari": {}}, "clients": [{
        "client_id": "visma-idp", "client_secret": SECRET, "redirect_uris": ["http://127.0.0.1:5000/upstreams/callback"],
        "grant_types": ["authorization_code"], "response_types": ["code"]}]})
    try:
        add_upstream("flaky", running)
        callback = at_upstream(button(flow.client, "flaky", tx_of(flow.start())), "kari")
    finally:
        running.stop()
    resp = back_home(flow.client, callback)  # the token endpoint is gone
    assert resp.status_code == 503 and "does not answer" in resp.get_data(as_text=True)
    with app.app_context():  # and with no good copy of its discovery document either
        row = db.session.scalar(db.select(Row).where(Row.name == "flaky"))
        row.metadata_doc, row.metadata_at = None, None
        db.session.commit()
    resp = button(flow.client, "flaky", tx_of(flow.start()))
    assert resp.status_code == 503 and "does not answer" in resp.get_data(as_text=True)
    assert any("upstream flaky" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_an_unknown_upstream_is_404(flow):
    html = flow.client.get("/login").get_data(as_text=True)
    assert flow.client.post("/login/upstream/nobody", data={"csrf_token": csrf(html)}).status_code == 404


# -- the ID token check itself (no network: the upstream's keys are in its row) --------


ISSUER = "https://idp.acme.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "up-1", "alg": "RS256", "use": "sig"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "up-1", "alg": "RS256", "use": "sig"})


@pytest.fixture
def row(app):
    from visma_idp.storage import Upstream as Row
    from visma_idp.storage import db

    with app.app_context():
        now = app.extensions["visma_idp"].clock.now()
        meta = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/auth", "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/jwks"}
        entry = Row(name="acme", display_name="Acme", issuer=ISSUER, discovery_url=ISSUER + "/.well-known/x",
                    client_id="visma-idp", auth_method="client_secret_basic", scopes=["openid"], acr_values=[],
                    claim_map={}, domains=[], tenants=[], id_token_alg="RS256", metadata_doc=meta, metadata_at=now,
                    jwks_doc={"keys": [KEY.as_dict(private=False)]}, jwks_at=now, created_at=now)
        entry.client_secret = SECRET
        db.session.add(entry)
        db.session.commit()
        yield entry


def _claims(app, **changes):
    now = app.extensions["visma_idp"].clock.now()
    claims = {"iss": ISSUER, "aud": "visma-idp", "sub": "u1", "iat": now, "exp": now + 300, "nonce": "n-1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _check(app, row, token, nonce="n-1"):
    from visma_idp.federation.id_token import InvalidIdToken, validate

    with app.test_request_context():
        try:
            return validate(row, token, nonce=nonce)
        except InvalidIdToken as exc:
            return exc.reason


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_good_token_passes(app, row):
    token = jwt.encode({"alg": "RS256", "kid": "up-1"}, _claims(app), KEY)
    assert _check(app, row, token)["sub"] == "u1"


def test_alg_none_is_refused(app, row):
    import json

    token = ".".join([_b64(json.dumps({"alg": "none"}).encode()), _b64(json.dumps(_claims(app)).encode()), ""])
    assert _check(app, row, token) == "signed with 'none', pinned 'RS256'"


def test_hs256_keyed_with_the_public_key_is_refused(app, row):
    import hashlib
    import hmac
    import json

    # the classic confusion: the RSA public key (which anyone can fetch) as the HMAC secret
    signing_input = ".".join([_b64(json.dumps({"alg": "HS256", "kid": "up-1"}).encode()),
                              _b64(json.dumps(_claims(app)).encode())])
    mac = hmac.new(KEY.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + _b64(mac)
    assert _check(app, row, token) == "signed with 'HS256', pinned 'RS256'"


@pytest.mark.parametrize("changes, reason", [
    ({"iss": "https://evil.example"}, "issuer 'https://evil.example'"),
    ({"aud": "someone-else"}, "audience"),
    ({"aud": ["visma-idp", "someone-else"]}, "azp"),
    ({"exp": 1}, "expired"),
    ({"iat": int(time.time()) + 10 ** 6}, "issued in the future"),
    ({"sub": None}, "no subject"),
    ({"nonce": "n-2"}, "nonce"),
    ({"nonce": None}, "nonce"),
])
def test_each_claim_rule(app, row, changes, reason, idp):
    if "iat" in changes:
        changes = {"iat": idp.clock.now() + 3600}
    token = jwt.encode({"alg": "RS256", "kid": "up-1"}, _claims(app, **changes), KEY)
    assert _check(app, row, token) == reason


def test_another_key_with_the_same_kid_is_refused(app, row):
    token = jwt.encode({"alg": "RS256", "kid": "up-1"}, _claims(app), OTHER)
    assert _check(app, row, token).startswith("signature")


def test_junk_is_refused(app, row):
    for junk in ["", "a.b", "not a token", "x.y.z", "\u00e6.\u00f8.\u00e5"]:
        assert isinstance(_check(app, row, junk), str)
