"""A password with accents signs in whichever Unicode form the keyboard sends
(password/hashing.py hashes and checks NFC)."""

from __future__ import annotations

import unicodedata

from tests.helpers import csrf

COMPOSED = "bl\u00e5b\u00e6r og kr\u00e9me brul\u00e9e"  # one code point per accented letter (macOS, Windows)
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # letter + combining accent (some Linux and Android input)


def sign_in(client, password: str):
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"email": "kari@example.no", "csrf_token": csrf(page)})
    page = client.get("/login/password").get_data(as_text=True)
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page)})


def test_set_in_one_form_signs_in_with_the_other(app, make_user):
    assert COMPOSED != DECOMPOSED
    make_user(password=DECOMPOSED)
    resp = sign_in(app.test_client(), COMPOSED)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    resp = sign_in(app.test_client(), DECOMPOSED)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    # and a password that differs in more than its form is still wrong
    resp = sign_in(app.test_client(), COMPOSED.replace("\u00e5", "a"))
    assert resp.status_code == 401 and "Wrong email address or password." in resp.get_data(as_text=True)
