"""The dev outbox (demo mode only) and the demo console: where a developer
reads mail when no SMTP server is configured."""

from __future__ import annotations

import logging

import pytest

from tests.notify import outbox_row, queue_mail

PAGES = ("/dev/outbox", "/dev/outbox?status=pending", "/dev/outbox/{id}", "/dev/outbox/{id}/html")


@pytest.fixture
def demo(app, make_app):
    """A demo-mode app without SMTP on the test database."""
    return make_app(MODE="demo", SMTP_URL=None)


def test_production_answers_404_on_every_dev_outbox_page(app, client, make_user):
    row_id = queue_mail(app, make_user(email="prod@example.no"))
    for page in PAGES:
        response = client.get(page.format(id=row_id))
        assert response.status_code == 404, page
        assert "prod@example.no" not in response.get_data(as_text=True)


def test_demo_lists_messages_and_shows_the_text_part(demo, make_user):
    uid = make_user(email="dev@example.no", name="Kari <script>alert(1)</script>", locale="nb")
    row_id = queue_mail(demo, uid)
    row = outbox_row(demo, row_id)
    client = demo.test_client()

    listing = client.get("/dev/outbox")
    assert listing.status_code == 200 and listing.mimetype == "text/html"
    page = listing.get_data(as_text=True)
    assert "dev@example.no" in page and row.subject in page and f"/dev/outbox/{row_id}" in page
    assert "frame-ancestors 'none'" in listing.headers["Content-Security-Policy"]
    assert "dev@example.no" not in client.get("/dev/outbox?status=sent").get_data(as_text=True)
    assert "dev@example.no" in client.get("/dev/outbox?status=pending").get_data(as_text=True)

    shown = client.get(f"/dev/outbox/{row_id}")
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert "<pre" in page and "Kari &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page  # the text part is shown, escaped
    assert row.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
    assert f"/dev/outbox/{row_id}/html" in page


def test_demo_serves_the_html_part_sandboxed(demo, make_user):
    row_id = queue_mail(demo, make_user(email="html@example.no"))
    row = outbox_row(demo, row_id)
    response = demo.test_client().get(f"/dev/outbox/{row_id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.get_data(as_text=True) == row.html_body
    csp = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert csp[0] == "sandbox"  # an opaque origin: no script, no forms, none of our cookies
    assert "default-src 'none'" in csp and not any("script-src" in part for part in csp)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_demo_unknown_message_is_404(demo):
    client = demo.test_client()
    for page in ("/dev/outbox/999999", "/dev/outbox/999999/html", "/dev/outbox/abc"):
        assert client.get(page).status_code == 404


def test_demo_empty_outbox(demo):
    response = demo.test_client().get("/dev/outbox")
    assert response.status_code == 200 and "The outbox is empty." in response.get_data(as_text=True)


# -- the console -----------------------------------------------------------------------


def test_demo_tells_each_committed_message_in_the_console(demo, make_user, caplog):
    uid = make_user(email="console@example.no")
    caplog.set_level(logging.INFO, logger="visma_idp.mail")
    row_id = queue_mail(demo, uid)
    row = outbox_row(demo, row_id)
    told = [r.getMessage() for r in caplog.records if r.name == "visma_idp.mail"]
    assert len(told) == 1
    assert "console@example.no" in told[0] and row.subject in told[0]
    assert row.text_body.strip().splitlines()[-1] in told[0]  # the text part, links and all

    caplog.clear()
    queue_mail(demo, uid, commit=False)  # rolled back: never sent, never told
    assert not [r for r in caplog.records if r.name == "visma_idp.mail"]


def test_production_never_tells_message_texts(app, make_user, caplog):
    uid = make_user(email="quiet@example.no")
    caplog.set_level(logging.INFO, logger="visma_idp.mail")
    queue_mail(app, uid)
    assert not [r for r in caplog.records if r.name == "visma_idp.mail"]


def test_demo_lists_the_text_messages_with_the_number_masked(demo):
    """The text messages of the ``outbox`` SMS backend, below the mail: the
    number masked by notify/sms.py (the dev outbox imports nothing of factors/)."""
    from visma_idp.notify.sms import OutboxSender
    from visma_idp.storage import db

    with demo.app_context():
        OutboxSender(demo.extensions["visma_idp"].clock).send(to="+4791234567", text="Your code is 123456")
        db.session.commit()
    page = demo.test_client().get("/dev/outbox").get_data(as_text=True)
    assert "+47 \u2022\u2022\u2022 \u2022\u2022 567" in page and "Your code is 123456" in page
    assert "91234567" not in page
