"""The human check of the forgot-password form (password/challenge.py).

- The proof-of-work: a signed challenge, solved as pow.js does it; a missing,
  wrong, forged, expired, too easy or reused solution is refused with 400
  and a clear message, and nothing is sent.
- The page says that it needs JavaScript, and loads pow.js with the CSP nonce.
- CAPTCHA_VERIFIER plugs another check in (here a test class with the same
  two methods and its own template).
"""

from __future__ import annotations

import re

import pytest
from jinja2 import ChoiceLoader, DictLoader

from tests.helpers import csrf
from tests.password.recovery import EASY_POW, answered, solve
from visma_idp.password.challenge import POW_LIFETIME, ProofOfWork, leading_zero_bits, work_of

REFUSED = "We could not confirm that you are a person."


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


@pytest.fixture
def kari(make_user):
    make_user()
    return "kari@example.no"


def forgot_form(client):
    page = client.get("/password/forgot")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def post(client, page, **fields):
    data = {"email": "kari@example.no", "csrf_token": csrf(page), **fields}
    return answered(client.post("/password/forgot", data=data))


def test_leading_zero_bits():
    assert leading_zero_bits(b"\x00\x00") == 16
    assert leading_zero_bits(b"\x80") == 0
    assert leading_zero_bits(b"\x01\xff") == 7
    assert leading_zero_bits(b"\x00\x0f") == 12


def test_a_solved_challenge_passes_once(client, kari, mailbox):
    page = forgot_form(client)
    solved = solve(page)
    first = post(client, page, **solved)
    assert first.status_code == 200
    assert "Check your email" in first.get_data(as_text=True)
    # the same solution again: refused, and no second email
    again = post(client, page, **solved)
    assert again.status_code == 400
    assert REFUSED in again.get_data(as_text=True)
    assert len(mailbox.to(kari)) == 1


@pytest.mark.parametrize("fields", [
    {},  # no JavaScript ran: nothing posted
    {"pow": "0"},  # no challenge
    {"pow_challenge": "made-up"},  # no counter
])
def test_missing_parts_are_refused(client, kari, mailbox, fields):
    resp = post(client, forgot_form(client), **fields)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert REFUSED in html and 'role="alert"' in html
    # the page comes back with a fresh challenge and the address kept
    assert 'name="pow_challenge"' in html and 'value="kari@example.no"' in html
    assert mailbox.to(kari) == []


def test_a_wrong_counter_is_refused(client, kari, mailbox):
    page = forgot_form(client)
    solved = solve(page)
    counter = int(solved["pow"]) + 1
    while work_of(solved["pow_challenge"], str(counter)) >= EASY_POW:
        counter += 1
    for bad in (str(counter), "-1", "1e3", "1" * 30, " 1"):
        resp = post(client, page, pow_challenge=solved["pow_challenge"], pow=bad)
        assert resp.status_code == 400, bad
    assert mailbox.to(kari) == []
    # the refusals did not use the challenge up
    assert post(client, page, **solved).status_code == 200


def test_a_forged_or_altered_challenge_is_refused(app, client, kari, mailbox, make_app):
    page = forgot_form(client)
    solved = solve(page)
    body, sig = solved["pow_challenge"].rsplit(".", 1)
    # an easier challenge made up by the client, solved: the signature does not match
    import base64
    import json

    easy = base64.urlsafe_b64encode(json.dumps({"n": "x" * 22, "d": 0, "x": 2**40}).encode()).rstrip(b"=").decode()
    for forged in (f"{easy}.{sig}", body + "." + sig[::-1], body):
        counter = 0
        while work_of(forged, str(counter)) < EASY_POW:
            counter += 1
        assert post(client, page, pow_challenge=forged, pow=str(counter)).status_code == 400
    # a challenge signed under another SECRET_KEY
    other = make_app(SECRET_KEY="another-secret-key-that-is-long-enough-0123")
    foreign = forgot_form(other.test_client())
    assert post(client, page, **solve(foreign)).status_code == 400
    assert mailbox.to(kari) == []


def test_an_expired_challenge_is_refused(client, idp, kari, mailbox):
    page = forgot_form(client)
    solved = solve(page)
    idp.clock.advance(POW_LIFETIME + 1)
    resp = post(client, page, **solved)
    assert resp.status_code == 400
    assert REFUSED in resp.get_data(as_text=True)
    assert mailbox.to(kari) == []


def test_a_raised_difficulty_voids_easier_challenges(app, make_app, kari):
    page = forgot_form(app.test_client())
    harder = make_app(POW_DIFFICULTY=EASY_POW + 8)
    with harder.app_context():
        check = ProofOfWork(harder.extensions["visma_idp"])
        assert check.verify(solve(page)) is False


def test_the_work_is_what_pow_js_computes(app):
    """SHA-256 over the UTF-8 text "<challenge>:<decimal counter>", leading zero bits."""
    import hashlib

    with app.app_context():
        check = ProofOfWork(app.extensions["visma_idp"])
        issued = check.challenge()
    assert issued["difficulty"] == EASY_POW
    challenge = issued["challenge"]
    counter = 0
    while leading_zero_bits(hashlib.sha256(f"{challenge}:{counter}".encode()).digest()) < EASY_POW:
        counter += 1
    with app.test_request_context():
        assert check.verify({"pow_challenge": challenge, "pow": str(counter)}) is True


def test_the_page_needs_javascript_and_says_so(client):
    resp = client.get("/password/forgot")
    html = resp.get_data(as_text=True)
    assert "<noscript>" in html and "This form needs JavaScript" in html
    nonce = re.search(r'<script src="/static/pow.js" nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in resp.headers["Content-Security-Policy"]
    script = client.get("/static/pow.js")
    assert script.status_code == 200
    assert "crypto.subtle.digest" in script.get_data(as_text=True)
    script.close()


class FieldCheck:
    """A stand-in for a hosted CAPTCHA: its own template, its own field."""

    def __init__(self, idp):
        self.idp = idp

    def challenge(self):
        return {"template": "test_check.html", "question": "Type yes"}

    def verify(self, form):
        return form.get("human") == "yes"


def test_another_verifier_plugs_in(app, make_app):
    """(``app`` made the tables and cleans them up; the second app shares its database.)"""
    app = make_app(CAPTCHA_VERIFIER="tests.password.test_challenge:FieldCheck")
    app.jinja_loader  # noqa: B018 - build the default loader before wrapping it
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"test_check.html": '<label for="human">{{ human.question }}</label>'
                                       '<input id="human" name="human">'}),
        app.jinja_env.loader,
    ])
    client = app.test_client()
    page = forgot_form(client)
    assert "Type yes" in page and "pow.js" not in page
    assert post(client, page, human="no").status_code == 400
    assert post(client, page, human="yes").status_code == 200
