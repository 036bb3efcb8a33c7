"""Security keys and passkeys over HTTP, with a software authenticator made
here from `cryptography` and CBOR (P-256 keys, "none" attestation): the
options we send, registration and its refusals, the second step, the sign
counter, passwordless sign-in with a passkey, rename and removal; amr/acr
in the ID token. The same in a real browser: tests/browser/test_webauthn.py."""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import re
import secrets
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from tests.account.test_details import ISSUER, PASSWORD, audit_events, browser, sign_in
from tests.helpers import csrf, path_of, query
from tests.mailbox import Mailbox

OPTIONS_RE = re.compile(r'data-options="([^"]*)"')
RP_ID = "127.0.0.1"  # the test issuer's host


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftKey:
    """A software authenticator: enough of CTAP2 for WebAuthn's ceremonies."""

    UP, UV, BE, AT = 0x01, 0x04, 0x08, 0x40

    def __init__(self, *, transports=("usb",), backup=False):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.transports = list(transports)
        self.backup = backup
        self.counter = 0
        self.user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return b64(self.credential_id)

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _flags(self, uv: bool, attested: bool = False) -> int:
        flags = self.UP | (self.UV if uv else 0) | (self.BE if self.backup else 0)
        return flags | (self.AT if attested else 0)

    def create(self, options_json: str, *, uv: bool = True, origin: str = ISSUER, rp_id: str = RP_ID,
               ctype: str = "webauthn.create") -> str:
        options = json.loads(options_json)
        self.user_handle = unb64(options["user"]["id"])
        client_data = json.dumps({"type": ctype, "challenge": options["challenge"], "origin": origin,
                                  "crossOrigin": False}).encode()
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags(uv, attested=True)])
                     + self.counter.to_bytes(4, "big") + bytes(16)
                     + len(self.credential_id).to_bytes(2, "big") + self.credential_id + self.cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "cross-platform",
            "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation),
                         "transports": self.transports},
            "clientExtensionResults": {},
        })

    def get(self, options_json: str, *, uv: bool = True, origin: str = ISSUER, rp_id: str = RP_ID,
            counter: int | None = None, bogus_signature: bool = False, user_handle: bytes | None = None) -> str:
        options = json.loads(options_json)
        allowed = [c["id"] for c in options.get("allowCredentials") or []]
        assert not allowed or self.id in allowed, "the server did not allow this credential"
        self.counter = self.counter + 1 if counter is None else counter
        client_data = json.dumps({"type": "webauthn.get", "challenge": options["challenge"], "origin": origin,
                                  "crossOrigin": False}).encode()
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags(uv)])
                     + self.counter.to_bytes(4, "big"))
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if bogus_signature:
            signature = self.key.sign(signed + b"x", ec.ECDSA(hashes.SHA256()))
        handle = user_handle if user_handle is not None else self.user_handle
        return json.dumps({
            "id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "cross-platform",
            "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                         "signature": b64(signature), "userHandle": b64(handle) if handle else None},
            "clientExtensionResults": {},
        })


# -- helpers ---------------------------------------------------------------------------------

def options_in(page: str) -> str:
    match = OPTIONS_RE.search(page)
    assert match, "the page has no WebAuthn options"
    return html_lib.unescape(match.group(1))


def signed_in(app, email: str = "kari@example.no"):
    client = browser(app)
    resp = sign_in(client, email)
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/", resp.headers.get("Location")
    return client


def start_registration(client, kind: str = "key", name: str = "Blue key"):
    page = client.get("/account/security/webauthn")
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return client.post("/account/security/webauthn", data={"csrf_token": csrf(page.text), "kind": kind, "name": name})


def register(client, soft: SoftKey, kind: str = "key", name: str = "Blue key", **create):
    """Register ``soft`` over HTTP; returns the answer to the finishing post."""
    resp = start_registration(client, kind, name)
    assert resp.status_code == 200, resp.text
    answer = soft.create(options_in(resp.text), **create)
    return client.post("/account/security/webauthn/finish", data={
        "csrf_token": csrf(resp.text), "credential": answer, "kind": kind, "name": name})


def keys(app, user_id: int):
    from visma_idp.storage import Factor, db

    with app.app_context():
        rows = list(db.session.scalars(select(Factor).where(Factor.user_id == user_id, Factor.kind == "webauthn")
                                       .order_by(Factor.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def add_key(app, user_id: int, soft: SoftKey, *, passkey: bool = False, name: str = "Key", sign_count: int = 0) -> int:
    """A confirmed key row for sign-in tests (what a registration stores)."""
    from visma_idp.factors.webauthn import user_handle
    from visma_idp.storage import Factor, User, db

    with app.app_context():
        user = db.session.get(User, user_id)
        soft.user_handle = user_handle(user)
        now = app.extensions["visma_idp"].clock.now()
        factor = Factor(user_id=user_id, kind="webauthn", name=name, created_at=now, confirmed_at=now,
                        credential_id=soft.id, public_key=b64(soft.cose_key()), sign_count=sign_count,
                        transports=soft.transports, discoverable=passkey, aaguid="00000000-0000-0000-0000-000000000000")
        db.session.add(factor)
        db.session.commit()
        return factor.id


def to_second_step(app, email: str = "kari@example.no"):
    """A browser past the password, on the security key page: (client, page html)."""
    client = browser(app)
    resp = sign_in(client, email)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login/verify", resp.headers
    page = client.get("/login/verify?method=webauthn")
    assert page.status_code == 200
    return client, page.text


def answer(client, page: str, credential: str):
    return client.post("/login/verify", data={"csrf_token": csrf(page), "method": "webauthn", "credential": credential})


def signed_in_fully(resp) -> bool:
    return resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/"


def passkey_page(client):
    """The email page and the passkey options it fetches: (html, options json)."""
    page = client.get("/login")
    assert page.status_code == 200
    resp = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf(page.text)})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return page.text, resp.text


def passkey_user(app, make_user):
    """A user with a passkey, and a browser on the email page with its
    options: (user id, the key, the browser, the page, the options)."""
    uid = make_user()
    soft = SoftKey()
    add_key(app, uid, soft, passkey=True)
    client = browser(app)
    page, options = passkey_page(client)
    return uid, soft, client, page, options


def passkey_sign_in(client, page: str, credential: str, tx: str | None = None):
    data = {"csrf_token": csrf(page), "credential": credential}
    if tx:
        data["tx"] = tx
    return client.post("/login/passkey", data=data)


def id_token_claims(tokens) -> dict:
    payload = tokens.get_json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# -- registration ---------------------------------------------------------------------------

def test_registration_needs_a_session_and_a_recent_password(app, idp, make_user):
    make_user()
    anonymous = browser(app)
    resp = anonymous.get("/account/security/webauthn")
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    client = signed_in(app)
    idp.clock.advance(301)
    resp = client.get("/account/security/webauthn")
    assert resp.status_code == 302
    assert path_of(resp.headers["Location"]) == "/account/confirm-password?next=/account/security/webauthn"
    page = client.get("/account")  # a page with a CSRF token
    resp = client.post("/account/security/webauthn", data={"csrf_token": csrf(page.text), "kind": "key"})
    assert resp.status_code == 302 and "/account/confirm-password" in resp.headers["Location"]


def test_a_required_factor_can_be_a_key_enrolled_during_the_sign_in(app, idp, make_user):
    from visma_idp.storage import User, db

    uid = make_user()
    with app.app_context():
        db.session.get(User, uid).mfa_required = True
        db.session.commit()
    client = browser(app)
    resp = sign_in(client)
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/account/security"
    assert client.get("/account").status_code == 302  # no session yet
    resp = register(client, SoftKey(), name="Blue key")
    assert resp.status_code == 200 and "I have saved them, continue" in resp.text  # the first recovery codes
    resp = client.post("/account/security/continue", data={"csrf_token": csrf(resp.text)})
    assert signed_in_fully(resp), resp.headers
    assert client.get("/account").status_code == 200
    event = audit_events(app, "login_succeeded", uid)[-1]
    assert event.details["amr"] == ["pwd", "hwk", "user", "mfa"]


def test_security_key_and_passkey_options(app, idp, make_user):
    make_user()
    client = signed_in(app)
    resp = start_registration(client, "key")
    options = json.loads(options_in(resp.text))
    assert options["rp"] == {"name": "Visma IdP", "id": RP_ID}
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"] == {
        "authenticatorAttachment": "cross-platform", "residentKey": "discouraged", "requireResidentKey": False,
        "userVerification": "discouraged"}
    assert options["user"]["name"] == "kari@example.no"
    assert "kari" not in unb64(options["user"]["id"]).decode("latin-1")  # an opaque user handle
    assert len(unb64(options["challenge"])) == 32
    assert options["excludeCredentials"] == []
    resp = start_registration(client, "passkey")
    options = json.loads(options_in(resp.text))
    assert options["authenticatorSelection"] == {
        "residentKey": "required", "requireResidentKey": True, "userVerification": "required"}
    assert "webauthn.js" in resp.text and 'nonce="' in resp.text


def test_register_a_security_key(app, idp, make_user, mailbox):
    uid = make_user()
    client = signed_in(app)
    soft = SoftKey()
    resp = register(client, soft, name="Blue key")
    assert resp.status_code in (200, 302), resp.text
    [row] = keys(app, uid)
    assert row.credential_id == soft.id and row.confirmed_at is not None
    assert row.name == "Blue key" and row.discoverable is False and row.transports == ["usb"]
    assert unb64(row.public_key) == soft.cose_key() and row.sign_count == 0
    assert row.aaguid == "00000000-0000-0000-0000-000000000000"
    assert audit_events(app, "factor_added", uid) and audit_events(app, "webauthn_registered", uid)
    assert "security key or passkey" in Mailbox.text(mailbox.last("kari@example.no"))
    overview = client.get("/account/security").text
    assert "Blue key" in overview and "Security key" in overview
    # the key is now excluded from a new registration
    resp = start_registration(client, "passkey", "Laptop")
    assert [c["id"] for c in json.loads(options_in(resp.text))["excludeCredentials"]] == [soft.id]


def test_register_several_and_a_passkey(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    assert register(client, SoftKey(), name="").status_code in (200, 302)
    assert register(client, SoftKey(transports=["internal", "hybrid"]), kind="passkey", name="").status_code in (200, 302)
    first, second = keys(app, uid)
    assert (first.name, first.discoverable) == ("Security key", False)
    assert (second.name, second.discoverable, second.transports) == ("Passkey", True, ["hybrid", "internal"])


def test_a_passkey_must_verify_the_user(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    resp = register(client, SoftKey(), kind="passkey", uv=False)
    assert resp.status_code == 400
    assert "PIN, fingerprint or face" in resp.text
    assert keys(app, uid) == []
    assert audit_events(app, "webauthn_registration_failed", uid)[0].details == {"reason": "user_not_verified"}
    # the page offers a new try with fresh options
    assert options_in(resp.text)


def test_registration_refuses_a_wrong_origin_rp_id_or_type(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    for bad in ({"origin": "https://evil.example"}, {"rp_id": "evil.example"}, {"ctype": "webauthn.get"}):
        resp = register(client, SoftKey(), **bad)
        assert resp.status_code == 400, bad
        assert "could not be registered" in resp.text
    assert keys(app, uid) == []


def test_a_registration_answer_is_single_use_even_with_an_old_cookie(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    resp = start_registration(client)
    cookie = client.get_cookie("visma_idp_tx").value
    soft = SoftKey()
    credential = soft.create(options_in(resp.text))
    data = {"csrf_token": csrf(resp.text), "credential": credential, "kind": "key", "name": "x"}
    assert client.post("/account/security/webauthn/finish", data=data).status_code in (200, 302)
    # the same answer again, with the cookie that still held the challenge
    client.set_cookie("visma_idp_tx", cookie)
    resp = client.post("/account/security/webauthn/finish", data=data)
    assert resp.status_code == 400 and "already used" in resp.text
    assert len(keys(app, uid)) == 1
    assert audit_events(app, "webauthn_registration_failed", uid)[-1].details == {"reason": "challenge_replayed"}


def test_a_registration_challenge_expires(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    resp = start_registration(client)
    credential = SoftKey().create(options_in(resp.text))
    idp.clock.advance(250)
    # keep the password recent (confirm it again), so only the challenge is too old
    page = client.get("/account/confirm-password?next=/account/security")
    client.post("/account/confirm-password", data={"csrf_token": csrf(page.text), "password": PASSWORD,
                                                   "next": "/account/security"})
    idp.clock.advance(60)
    resp = client.post("/account/security/webauthn/finish", data={
        "csrf_token": csrf(resp.text), "credential": credential, "kind": "key", "name": "x"})
    assert resp.status_code == 400 and "took too long" in resp.text
    assert keys(app, uid) == []


def test_a_credential_registered_by_someone_else_is_refused(app, idp, make_user):
    make_user()
    other = make_user(email="ola@example.no", name="Ola")
    soft = SoftKey()
    add_key(app, other, soft)
    client = signed_in(app)
    resp = register(client, soft)  # the same credential id, with a key of the attacker's
    assert resp.status_code == 409 and "already registered" in resp.text
    assert [k.user_id for k in keys(app, other)] == [other]


def test_registration_refuses_bad_input_without_a_500(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    page = client.get("/account/security/webauthn")
    resp = client.post("/account/security/webauthn", data={"csrf_token": csrf(page.text), "kind": "magic"})
    assert resp.status_code == 400 and "Choose a security key or a passkey" in resp.text
    resp = client.post("/account/security/webauthn", data={"csrf_token": csrf(page.text), "kind": "key",
                                                           "name": "x" * 61})
    assert resp.status_code == 400 and "at most 60 characters" in resp.text
    for junk in ("", "not json", "[]", '{"id": 5}', json.dumps({"id": "abc", "rawId": "abc"}), "x" * 40000):
        start = start_registration(client)
        resp = client.post("/account/security/webauthn/finish", data={
            "csrf_token": csrf(start.text), "credential": junk, "kind": "key", "name": "x"})
        assert resp.status_code == 400, junk[:20]
    assert keys(app, uid) == []
    # without the CSRF token
    resp = client.post("/account/security/webauthn", data={"kind": "key"})
    assert resp.status_code == 400


# -- the second step ---------------------------------------------------------------------------

def test_sign_in_with_a_security_key_as_the_second_step(app, idp, make_user):
    uid = make_user()
    soft = SoftKey()
    fid = add_key(app, uid, soft, name="Blue key")
    client, page = to_second_step(app)
    assert "Use security key or passkey" in page and "webauthn.js" in page
    options = json.loads(options_in(page))
    assert options["rpId"] == RP_ID and options["userVerification"] == "discouraged"
    assert options["allowCredentials"] == [{"id": soft.id, "type": "public-key", "transports": ["usb"]}]
    resp = answer(client, page, soft.get(options_in(page), uv=False))
    assert signed_in_fully(resp), resp.text
    [row] = keys(app, uid)
    assert row.id == fid and row.sign_count == 1 and row.last_used_at is not None
    passed = audit_events(app, "second_step_passed", uid)[-1]
    assert passed.details == {"method": "webauthn", "amr": ["hwk"]}


def test_amr_and_acr_in_the_id_token_after_a_key(app, idp, flow):
    soft = SoftKey()
    add_key(app, 1, soft)
    resp = flow.login(flow.start())
    assert urlsplit(resp.headers["Location"]).path == "/login/verify"
    tx = query(resp.headers["Location"])["tx"]
    page = flow.client.get(path_of(resp.headers["Location"])).text
    resp = flow.client.post(f"/login/verify?tx={tx}", data={
        "csrf_token": csrf(page), "method": "webauthn", "credential": soft.get(options_in(page), uv=True)})
    resp = flow.until_callback(resp)
    tokens = flow.token(query(resp.headers["Location"])["code"])
    claims = id_token_claims(tokens)
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert claims["acr"] == "urn:visma_idp:acr:phr"


def test_a_synced_or_platform_credential_is_a_software_key(app, idp, make_user):
    uid = make_user()
    synced = SoftKey(transports=["usb"], backup=True)
    add_key(app, uid, synced)
    client, page = to_second_step(app)
    assert signed_in_fully(answer(client, page, synced.get(options_in(page), uv=False)))
    assert audit_events(app, "second_step_passed", uid)[-1].details["amr"] == ["swk"]


def test_second_step_refuses_a_bad_signature_a_wrong_origin_or_someone_elses_key(app, idp, make_user):
    uid = make_user()
    other = make_user(email="ola@example.no", name="Ola")
    mine, theirs = SoftKey(), SoftKey()
    add_key(app, uid, mine)
    add_key(app, other, theirs)
    client, page = to_second_step(app)
    resp = answer(client, page, mine.get(options_in(page), bogus_signature=True))
    assert resp.status_code == 401 and "could not be verified" in resp.text
    page = resp.text  # a fresh challenge comes with the refusal
    resp = answer(client, page, mine.get(options_in(page), origin="https://evil.example"))
    assert resp.status_code == 401
    page = resp.text
    theirs_answer = json.loads(options_in(page))
    theirs_answer["allowCredentials"] = []
    resp = answer(client, page, theirs.get(json.dumps(theirs_answer)))
    assert resp.status_code == 400 and "not registered to your account" in resp.text
    page = resp.text
    assert signed_in_fully(answer(client, page, mine.get(options_in(page))))
    reasons = [e.details["reason"] for e in audit_events(app, "webauthn_refused", uid)]
    assert reasons == ["invalid_signature", "invalid_signature", "unknown_credential"]


def test_second_step_answer_is_single_use(app, idp, make_user):
    uid = make_user()
    soft = SoftKey()
    add_key(app, uid, soft)
    client, page = to_second_step(app)
    cookie = client.get_cookie("visma_idp_tx").value
    credential = soft.get(options_in(page))
    # a copy of this browser, before the answer is used
    copy = browser(app)
    copy.set_cookie("visma_idp_tx", cookie)
    assert signed_in_fully(answer(client, page, credential))
    resp = answer(copy, page, credential)
    assert resp.status_code == 400 and "already used" in resp.text


def test_a_counter_that_goes_back_is_refused_and_audited(app, idp, make_user):
    uid = make_user()
    soft = SoftKey()
    fid = add_key(app, uid, soft, sign_count=10)
    client, page = to_second_step(app)
    resp = answer(client, page, soft.get(options_in(page), counter=7))
    assert resp.status_code == 403 and "may have been copied" in resp.text
    [event] = audit_events(app, "webauthn_counter_regressed", uid)
    assert event.details == {"factor_id": fid, "stored": 10, "received": 7}
    page = resp.text
    resp = answer(client, page, soft.get(options_in(page), counter=10))  # standing still: the same
    assert resp.status_code == 403
    page = resp.text
    assert signed_in_fully(answer(client, page, soft.get(options_in(page), counter=11)))
    assert keys(app, uid)[0].sign_count == 11


def test_a_key_that_does_not_count_is_accepted(app, idp, make_user):
    uid = make_user()
    soft = SoftKey()
    add_key(app, uid, soft)
    for _ in range(2):
        client, page = to_second_step(app)
        assert signed_in_fully(answer(client, page, soft.get(options_in(page), counter=0)))
    assert keys(app, uid)[0].sign_count == 0


def test_the_second_step_without_an_answer(app, idp, make_user):
    uid = make_user()
    add_key(app, uid, SoftKey())
    client, page = to_second_step(app)
    resp = answer(client, page, "")
    assert resp.status_code == 400 and "sent no answer" in resp.text
    assert options_in(resp.text)


# -- passwordless -----------------------------------------------------------------------------

def test_the_email_page_offers_a_passkey(app, make_user):
    page = browser(app).get("/login").text
    assert "Sign in with a passkey" in page and 'data-webauthn="passkey"' in page
    assert re.search(r'<script src="[^"]*webauthn\.js" nonce="[^"]+" defer>', page)
    # the email form stays as it was; its input also lists passkeys in the browser's autofill
    assert 'id="email" name="email" type="email" autocomplete="username webauthn"' in page


def test_passkey_options_ask_for_any_discoverable_credential_with_user_verification(app):
    client = browser(app)
    _page, options = passkey_page(client)
    options = json.loads(options)
    assert options["rpId"] == RP_ID and options["userVerification"] == "required"
    assert options["allowCredentials"] == []
    # without the CSRF header
    assert client.post("/login/passkey/options").status_code == 400
    # from another origin
    page = client.get("/login").text
    resp = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf(page), "Origin": "https://evil.example"})
    assert resp.status_code == 403


def test_sign_in_with_a_passkey_and_no_password(app, idp, flow):
    soft = SoftKey(transports=["internal"])
    add_key(app, 1, soft, passkey=True, name="Laptop")
    resp = flow.start()
    tx = query(resp.headers["Location"])["tx"]
    page, options = passkey_page(flow.client)
    resp = passkey_sign_in(flow.client, page, soft.get(options), tx=tx)
    resp = flow.until_callback(resp)
    claims = id_token_claims(flow.token(query(resp.headers["Location"])["code"]))
    assert claims["amr"] == ["swk", "user", "mfa"]
    assert claims["acr"] == "urn:visma_idp:acr:phr"
    event = audit_events(app, "login_succeeded", 1)[-1]
    assert event.details["method"] == "passkey"


def test_passkey_sign_in_without_a_transaction_goes_home(app, idp, make_user):
    uid, soft, client, page, options = passkey_user(app, make_user)
    resp = passkey_sign_in(client, page, soft.get(options))
    assert signed_in_fully(resp)
    assert "kari@example.no" in client.get("/account").text


def test_passkey_refusals(app, idp, make_user):
    uid = make_user()
    passkey, security_key, stranger = SoftKey(), SoftKey(), SoftKey()
    add_key(app, uid, passkey, passkey=True)
    add_key(app, uid, security_key, passkey=False)
    client = browser(app)

    def attempt(soft, **kw):
        page, options = passkey_page(client)
        return passkey_sign_in(client, page, soft.get(options, **kw))

    cases = [
        (attempt(passkey, uv=False), 401, "PIN, fingerprint or face", "user_not_verified"),
        (attempt(passkey, bogus_signature=True), 401, "could not be verified", "invalid_signature"),
        (attempt(passkey, user_handle=b"someone else"), 401, "could not be verified", "invalid_signature"),
        (attempt(stranger), 401, "not registered here", "unknown_credential"),
        (attempt(security_key), 400, "only as the second step", "not_a_passkey"),
    ]
    for resp, status, text, _reason in cases:
        assert resp.status_code == status, (text, resp.status_code)
        assert text in resp.text and 'role="alert"' in resp.text
        assert 'id="email"' in resp.text  # back on the email page
    failures = audit_events(app, "passkey_login_failed")
    assert [e.details["reason"] for e in failures] == [c[3] for c in cases]
    assert [e.user_id for e in failures] == [uid, uid, uid, None, uid]
    assert client.get("/account").status_code == 302  # not signed in


def test_passkey_answer_is_single_use(app, idp, make_user):
    uid, soft, client, page, options = passkey_user(app, make_user)
    cookies = {name: client.get_cookie(name).value for name in ("visma_idp_tx", "visma_idp_pk")}
    credential = soft.get(options)
    assert signed_in_fully(passkey_sign_in(client, page, credential))
    assert client.get_cookie("visma_idp_pk") is None  # the answer clears the challenge
    replay = browser(app)
    for name, value in cookies.items():
        replay.set_cookie(name, value)
    resp = passkey_sign_in(replay, page, credential)
    assert resp.status_code == 400 and "already used" in resp.text
    # and without any challenge at all
    resp = passkey_sign_in(browser(app), page, credential)
    assert resp.status_code in (400, 403)  # no challenge (or the CSRF token of another browser)


def test_passkey_options_leave_the_session_cookie_alone(app, make_user):
    """The email page fetches the options as it loads; when the user sends the
    email form first, the options' answer arrives last and must not put back
    the session cookie from before the email (the password page would then
    send the user back to the email page)."""
    make_user()
    client = browser(app)
    page = client.get("/login").text
    before = client.get_cookie("visma_idp_tx").value
    assert client.post("/login", data={"csrf_token": csrf(page), "email": "kari@example.no"}).status_code == 302
    late = browser(app)  # the options request left with the cookie of before the email
    late.set_cookie("visma_idp_tx", before)
    resp = late.post("/login/passkey/options", headers={"X-CSRFToken": csrf(page)})
    assert resp.status_code == 200
    set_cookies = resp.headers.getlist("Set-Cookie")
    assert [c.split("=", 1)[0] for c in set_cookies] == ["visma_idp_pk"]
    assert "HttpOnly" in set_cookies[0] and "SameSite=Lax" in set_cookies[0] and "Max-Age=300" in set_cookies[0]
    password = client.get("/login/password")
    assert password.status_code == 200 and 'name="password"' in password.text


def test_a_forged_passkey_challenge_cookie_is_refused(app, idp, make_user):
    uid, soft, client, page, options = passkey_user(app, make_user)
    value = client.get_cookie("visma_idp_pk").value
    client.set_cookie("visma_idp_pk", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    resp = passkey_sign_in(client, page, soft.get(options))
    assert resp.status_code == 400 and "took too long" in resp.text
    assert client.get("/account").status_code == 302


def test_passkey_challenge_expires(app, idp, make_user):
    uid, soft, client, page, options = passkey_user(app, make_user)
    idp.clock.advance(301)
    resp = passkey_sign_in(client, page, soft.get(options))
    assert resp.status_code == 400 and "took too long" in resp.text


def test_locked_and_disabled_accounts_cannot_use_a_passkey(app, idp, make_user):
    from visma_idp.storage import User, db

    uid = make_user()
    soft = SoftKey()
    add_key(app, uid, soft, passkey=True)
    with app.app_context():
        db.session.get(User, uid).locked_at = idp.clock.now()
        db.session.commit()
    client = browser(app)
    page, options = passkey_page(client)
    resp = passkey_sign_in(client, page, soft.get(options))
    assert resp.status_code == 403 and "locked" in resp.text
    with app.app_context():
        user = db.session.get(User, uid)
        user.locked_at = None
        user.is_active = False
        db.session.commit()
    page, options = passkey_page(client)
    resp = passkey_sign_in(client, page, soft.get(options))
    assert resp.status_code == 403 and "cannot sign in" in resp.text
    assert [e.details["status"] for e in audit_events(app, "passkey_login_refused", uid)] == ["locked", "disabled"]
    assert client.get("/account").status_code == 302


def test_passkey_sign_in_counts_failures_against_the_ip(app, idp, make_user):
    make_user()
    client = browser(app, ip="203.0.113.9")
    stranger = SoftKey()
    most = idp.settings["THROTTLE_IP_MAX_FAILURES"]
    for _ in range(most):
        page, options = passkey_page(client)
        assert passkey_sign_in(client, page, stranger.get(options)).status_code == 401
    page, options = passkey_page(client)
    resp = passkey_sign_in(client, page, stranger.get(options))
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in resp.text
    # another address is not held up
    other = browser(app, ip="198.51.100.7")
    page, options = passkey_page(other)
    assert passkey_sign_in(other, page, stranger.get(options)).status_code == 401


# -- rename and remove ---------------------------------------------------------------------------

def test_rename_and_remove_a_key(app, idp, make_user, mailbox):
    uid = make_user()
    client = signed_in(app)
    soft = SoftKey()
    fid = add_key(app, uid, soft, name="Old name")
    page = client.get(f"/account/security/webauthn/{fid}/rename")
    assert page.status_code == 200 and 'value="Old name"' in page.text
    resp = client.post(f"/account/security/webauthn/{fid}/rename", data={"csrf_token": csrf(page.text), "name": "x" * 61})
    assert resp.status_code == 400 and 'role="alert"' in resp.text
    resp = client.post(f"/account/security/webauthn/{fid}/rename", data={"csrf_token": csrf(page.text),
                                                                          "name": "  Red\x07 key "})
    assert resp.status_code == 302
    assert keys(app, uid)[0].name == "Red key"
    assert audit_events(app, "webauthn_renamed", uid)[0].details == {"factor_id": fid, "from": "Old name", "to": "Red key"}
    page = client.get(f"/account/security/webauthn/{fid}/remove")
    assert page.status_code == 200 and "Red key" in page.text
    resp = client.post(f"/account/security/webauthn/{fid}/remove", data={})
    assert resp.status_code == 400  # no CSRF token
    resp = client.post(f"/account/security/webauthn/{fid}/remove", data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 302
    assert keys(app, uid) == []
    assert audit_events(app, "factor_removed", uid)
    assert "no longer" in Mailbox.text(mailbox.last("kari@example.no"))


def test_someone_elses_key_cannot_be_renamed_or_removed(app, idp, make_user):
    make_user()
    other = make_user(email="ola@example.no", name="Ola")
    fid = add_key(app, other, SoftKey(), name="Ola's key")
    client = signed_in(app)
    page = client.get("/account")  # a page with a CSRF token
    for action in ("rename", "remove"):
        assert client.get(f"/account/security/webauthn/{fid}/{action}").status_code == 404
        resp = client.post(f"/account/security/webauthn/{fid}/{action}", data={"csrf_token": csrf(page.text), "name": "x"})
        assert resp.status_code == 404
    assert keys(app, other)[0].name == "Ola's key"


def test_removing_needs_a_recent_password(app, idp, make_user):
    uid = make_user()
    client = signed_in(app)
    fid = add_key(app, uid, SoftKey())
    idp.clock.advance(301)
    page = client.get("/account")  # a page with a CSRF token
    resp = client.post(f"/account/security/webauthn/{fid}/remove", data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 302 and "/account/confirm-password" in resp.headers["Location"]
    assert len(keys(app, uid)) == 1
