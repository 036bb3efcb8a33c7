"""Helpers for the activation, forgot-password, reset and login-link tests:
solve the proof-of-work as pow.js does, ask for the reset email, pick the
links out of a message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.helpers import csrf
from tests.mailbox import Mailbox
from visma_idp.password.challenge import work_of

EASY_POW = 4  # POW_DIFFICULTY for tests: about 16 hashes
CHALLENGE_RE = re.compile(r'name="pow_challenge" value="([^"]+)"')
DIFFICULTY_RE = re.compile(r'data-difficulty="(\d+)"')
NONCE_RE = re.compile(r"nonce-[A-Za-z0-9_-]+|nonce=\"[A-Za-z0-9_-]+\"")
STRONG = "a new password that is long enough"


def solve(html: str) -> dict[str, str]:
    """The proof-of-work fields of a page, solved (what pow.js posts)."""
    challenge = CHALLENGE_RE.search(html).group(1)
    bits = int(DIFFICULTY_RE.search(html).group(1))
    counter = 0
    while work_of(challenge, str(counter)) < bits:
        counter += 1
    return {"pow_challenge": challenge, "pow": str(counter)}


def answered(resp):
    """Close a response as a WSGI server does once it has sent it: the work
    queued after the answer (account/deferred.py: finding the account,
    issuing links, queueing the mail) runs now. The body stays readable."""
    resp.get_data()
    resp.close()
    return resp


def forgot(client, email: str, *, tx: str | None = None, **headers):
    """Open the forgot-password page and send it for ``email``; returns the
    (closed, see :func:`answered`) response to the post."""
    url = "/password/forgot" + (f"?tx={tx}" if tx else "")
    page = client.get(url).get_data(as_text=True)
    data = {"email": email, "csrf_token": csrf(page), **solve(page)}
    if tx:
        data["tx"] = tx
    return answered(client.post(url, data=data, headers=headers))


def resend_activation(client, email: str, **headers):
    """Open a dead activation link's page and ask it for a new link for
    ``email`` (with the human check solved); returns the closed response."""
    page = client.get("/activate/" + "z" * 43).get_data(as_text=True)
    data = {"email": email, "csrf_token": csrf(page), **solve(page)}
    return answered(client.post("/activate/resend", data=data, headers=headers))


def path(url: str) -> str:
    return urlsplit(url).path


def links_of(message, prefix: str) -> list[str]:
    """The links in a message's text part whose path starts with ``prefix``."""
    return [link for link in Mailbox.links(message) if path(link).startswith(prefix)]


def reset_links(message) -> tuple[str, str | None]:
    """(reset link path, one-time login link path or None) of a password_reset message."""
    reset = links_of(message, "/password/reset/")
    login = links_of(message, "/login/link/")
    assert len(reset) == 1, Mailbox.text(message)
    return path(reset[0]), path(login[0]) if login else None


def post_new_password(client, link: str, password: str = STRONG, password2: str | None = None):
    page = client.get(link)
    assert page.status_code == 200, page.status_code
    return client.post(link, data={"password": password, "password2": password if password2 is None else password2,
                                   "csrf_token": csrf(page.get_data(as_text=True))})


def sign_in(client, email: str, password: str):
    """The two login pages without an authorization request; returns the password post's response."""
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"email": email, "csrf_token": csrf(page)})
    assert resp.status_code == 302
    page = client.get("/login/password").get_data(as_text=True)
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page)})


def signed_in(client) -> bool:
    return "Signed in as" in client.get("/").get_data(as_text=True)


def audit(app, event: str) -> list[dict]:
    """The audit rows of ``event``, oldest first, as dicts."""
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))
        return [{c.name: getattr(r, c.name) for c in AuditEvent.__table__.columns} for r in rows]
