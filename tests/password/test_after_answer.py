"""What "forgot password" and "send a new activation link" do after the
answer (account/deferred.py): the mail still leaves at once where the app
flushes mail after requests (dev, demo)."""

from __future__ import annotations

import pytest

from tests.password.recovery import EASY_POW, forgot, resend_activation


@pytest.fixture
def settings(settings):
    settings.update(POW_DIFFICULTY=EASY_POW, MAIL_FLUSH_AFTER_REQUEST=True)
    return settings


@pytest.fixture
def people(app, make_user):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    make_user(email="kari@example.no")
    with app.app_context():
        invite_user("nina@example.no", "Nina Berg")
        db.session.commit()


def test_the_flush_after_the_request_sends_what_the_job_queued(app, people, mailbox):
    mailbox.deliver()
    mailbox.capture.clear()
    forgot(app.test_client(), "kari@example.no")
    resend_activation(app.test_client(), "nina@example.no")
    # no mailbox.deliver(): the app's own flush after the response sent them
    assert sorted(m["To"] for m in mailbox.messages) == ["kari@example.no", "nina@example.no"]
