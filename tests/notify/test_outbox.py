"""The outbox and its worker, against the real SMTP capture: what a message
looks like on the wire, retries through an outage and a refusal, the end of
retries, several workers at once, and the flush after requests."""

from __future__ import annotations

import threading
from collections import Counter
from email.utils import parsedate_to_datetime

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from tests.mailbox import Mailbox, free_port
from tests.notify import outbox_row, queue_mail
from visma_idp.notify.outbox import deliver_due, run_once
from visma_idp.storage import MailOutbox, User, db


def _deliver(app, **kwargs):
    with app.app_context():
        return deliver_due(app.extensions["visma_idp"], **kwargs)


# -- the message ---------------------------------------------------------------


def test_received_message_has_text_and_html_parts_fixed_headers_and_the_users_language(app, mailbox, make_user):
    uid = make_user(email="kari@example.no", locale="nb")
    row_id = queue_mail(app, uid)
    row = outbox_row(app, row_id)

    message = mailbox.last("kari@example.no")

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Content-Language"] == "nb"
    assert message["From"] == "Visma IdP <no-reply@127.0.0.1>"
    assert message["Message-ID"] == row.message_id and row.message_id.endswith("@127.0.0.1>")
    assert message["Subject"] == row.subject
    assert int(parsedate_to_datetime(message["Date"]).timestamp()) == row.created_at
    assert Mailbox.text(message).replace("\r\n", "\n").strip() == row.text_body.strip()
    assert "<html" in Mailbox.html(message) and 'lang="nb"' in Mailbox.html(message)
    assert message["Auto-Submitted"] == "auto-generated"
    sent = outbox_row(app, row_id)
    assert sent.status == "sent" and sent.sent_at is not None and sent.attempts == 1


@pytest.mark.parametrize(("locale", "expected"), [("sv", "sv"), ("da", "da"), (None, "en")])
def test_language_header_follows_the_users_setting(app, mailbox, make_user, locale, expected):
    uid = make_user(email="lang@example.no", locale=locale)
    queue_mail(app, uid)
    assert mailbox.last("lang@example.no")["Content-Language"] == expected


def test_mail_from_setting_is_the_sender(app, make_app, mailbox, make_user):
    uid = make_user(email="from@example.no")
    node = make_app(MAIL_FROM="Kundeservice <idp@example.com>")
    queue_mail(node, uid)
    assert _deliver(node).sent == 1
    assert mailbox.messages[-1]["From"] == "Kundeservice <idp@example.com>"


def test_message_queued_in_a_rolled_back_transaction_is_never_sent(app, mailbox, make_user):
    uid = make_user(email="rollback@example.no")
    row_id = queue_mail(app, uid, commit=False)
    assert outbox_row(app, row_id) is None
    assert mailbox.deliver().tried == 0
    assert mailbox.messages == []


# -- outages and refusals --------------------------------------------------------


def test_smtp_down_then_up_delivers_every_message_exactly_once(app, idp, mailbox, make_user):
    uid = make_user(email="outage@example.no")
    ids = [queue_mail(app, uid), queue_mail(app, uid)]
    mailbox.capture.stop()

    report = mailbox.deliver()
    assert (report.sent, report.retrying, report.failed) == (0, 2, 0)
    for row_id in ids:
        row = outbox_row(app, row_id)
        assert row.status == "pending" and row.attempts == 1 and row.lease_until is None
        assert "ConnectionRefusedError" in row.last_error
        assert 29 <= row.next_attempt_at - idp.clock.now() <= 30  # MAIL_RETRY_SECONDS

    assert mailbox.deliver().tried == 0  # not due yet
    mailbox.capture.start()
    assert mailbox.deliver().tried == 0  # still waiting for its time
    idp.clock.advance(30)
    assert mailbox.deliver().sent == 2
    assert mailbox.deliver().tried == 0
    idp.clock.advance(3600)
    assert mailbox.deliver().tried == 0

    received = Counter(m["Message-ID"] for m in mailbox.messages)
    expected = {outbox_row(app, i).message_id for i in ids}
    assert set(received) == expected and set(received.values()) == {1}
    for row_id in ids:
        row = outbox_row(app, row_id)
        assert row.status == "sent" and row.attempts == 2 and row.last_error is None


def test_451_refusal_is_retried_later_and_then_sent_once(app, idp, mailbox, make_user):
    uid = make_user(email="greylisted@example.no")
    row_id = queue_mail(app, uid)
    mailbox.capture.refuse = True

    assert mailbox.deliver().retrying == 1
    row = outbox_row(app, row_id)
    assert row.status == "pending" and "451" in row.last_error and "try again later" in row.last_error
    assert mailbox.messages == []

    mailbox.capture.refuse = False
    idp.clock.advance(30)
    assert mailbox.deliver().sent == 1
    assert mailbox.deliver().tried == 0
    assert [m["Message-ID"] for m in mailbox.messages] == [row.message_id]


def test_after_max_attempts_a_message_is_failed_and_kept(app, make_app, mailbox, make_user):
    uid = make_user(email="never@example.no")
    node = make_app(MAIL_MAX_ATTEMPTS=3, MAIL_RETRY_SECONDS=10)
    clock = node.extensions["visma_idp"].clock
    row_id = queue_mail(node, uid)
    mailbox.capture.stop()

    for wait in (10, 20):  # the wait doubles with every failed try
        report = _deliver(node)
        assert report.retrying == 1
        assert outbox_row(node, row_id).next_attempt_at - clock.now() in (wait - 1, wait)
        clock.advance(wait)
    report = _deliver(node)
    assert (report.retrying, report.failed) == (0, 1)
    row = outbox_row(node, row_id)
    assert row.status == "failed" and row.attempts == 3 and "ConnectionRefusedError" in row.last_error
    assert row.text_body and row.html_body  # kept: `visma-idp mail retry` can send it again

    mailbox.capture.start()
    clock.advance(10 * 3600)
    assert _deliver(node).tried == 0
    assert mailbox.messages == []


class _RefuseRecipient:
    """An SMTP server that does not know one recipient (550) and takes the rest."""

    def __init__(self):
        self.received = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(envelope.rcpt_tos[:])
        return "250 OK"


def test_a_5xx_refusal_of_one_message_fails_it_at_once_and_the_batch_goes_on(app, make_app, make_user):
    handler = _RefuseRecipient()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        node = make_app(SMTP_URL=f"smtp://127.0.0.1:{controller.port}")
        bad = queue_mail(node, make_user(email="nobody@example.no"))
        good = queue_mail(node, make_user(email="somebody@example.no"))
        report = _deliver(node)
    finally:
        controller.stop()
    assert (report.sent, report.retrying, report.failed) == (1, 0, 1)
    refused = outbox_row(node, bad)
    assert refused.status == "failed" and refused.attempts == 1
    assert "550" in refused.last_error and "nobody@example.no" in refused.last_error
    assert outbox_row(node, good).status == "sent"
    assert handler.received == [["somebody@example.no"]]


def test_without_smtp_url_mail_stays_pending(app, make_app, make_user, mailbox):
    node = make_app(SMTP_URL=None)
    row_id = queue_mail(node, make_user(email="demo@example.no"))
    assert _deliver(node).tried == 0
    row = outbox_row(node, row_id)
    assert row.status == "pending" and row.attempts == 0
    assert mailbox.messages == []


# -- several workers ------------------------------------------------------------------


def test_two_nodes_delivering_at_once_send_every_message_exactly_once(app, make_app, make_user, mailbox):
    uid = make_user(email="many@example.no")
    with app.app_context():
        from visma_idp.notify.messages import queue

        user = db.session.get(User, uid)
        for _ in range(40):
            queue("password_changed", to=user.email, user=user, via="change")
        db.session.commit()
    nodes = [make_app(), make_app()]
    workers = [(node, n) for node in nodes for n in range(2)]  # two threads on each node
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []
    rounds: Counter[str] = Counter()

    def work(node, n):
        try:
            start.wait()
            for _ in range(1000):  # small batches, so the workers keep colliding on the same rows
                with node.app_context():
                    report = deliver_due(node.extensions["visma_idp"], limit=3)
                    left = db.session.scalar(select(func.count()).where(MailOutbox.status == "pending"))
                rounds[f"{id(node)}-{n}"] += report.sent
                if not left:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=worker) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)

    received = Counter(m["Message-ID"] for m in mailbox.messages)
    assert len(received) == 40 and set(received.values()) == {1}
    assert sum(rounds.values()) == 40
    assert sum(1 for count in rounds.values() if count) >= 2  # they did share the work
    with app.app_context():
        statuses = Counter(db.session.scalars(select(MailOutbox.status)))
        attempts = set(db.session.scalars(select(MailOutbox.attempts)))
    assert statuses == {"sent": 40} and attempts == {1}


def test_a_claim_of_a_crashed_worker_is_taken_over_when_its_lease_runs_out(app, idp, mailbox, make_user):
    row_id = queue_mail(app, make_user(email="crash@example.no"))
    with app.app_context():  # what a worker's claim leaves behind when it dies before sending
        db.session.execute(update(MailOutbox).where(MailOutbox.id == row_id)
                           .values(attempts=1, lease_until=idp.clock.now() + 300))
        db.session.commit()

    assert mailbox.deliver().tried == 0
    idp.clock.advance(299)
    assert mailbox.deliver().tried == 0
    idp.clock.advance(1)
    assert mailbox.deliver().sent == 1
    assert mailbox.deliver().tried == 0
    assert len(mailbox.messages) == 1
    row = outbox_row(app, row_id)
    assert row.status == "sent" and row.attempts == 2


class _SlowServer:
    """Takes messages; while it takes the first, time jumps past the claim's
    lease and (optionally) another worker takes over the second message."""

    def __init__(self, node, take_over: int | None):
        self.node, self.take_over = node, take_over
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(envelope.content.decode())
        if len(self.received) == 1:
            idp = self.node.extensions["visma_idp"]
            idp.clock.advance(400)
            if self.take_over is not None:
                with self.node.app_context():
                    db.session.execute(update(MailOutbox).where(MailOutbox.id == self.take_over)
                                       .values(attempts=MailOutbox.attempts + 1, lease_until=idp.clock.now() + 300))
                    db.session.commit()
        return "250 OK"


@pytest.mark.parametrize("taken_over", [False, True])
def test_a_worker_renews_its_lease_and_never_sends_a_message_another_worker_took(app, make_app, make_user,
                                                                              taken_over):
    uid = make_user(email="lease@example.no")
    port = free_port()
    node = make_app(SMTP_URL=f"smtp://127.0.0.1:{port}")
    first, second = queue_mail(node, uid), queue_mail(node, uid)
    handler = _SlowServer(node, second if taken_over else None)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        report = _deliver(node)
    finally:
        controller.stop()
    assert outbox_row(node, first).status == "sent"
    row = outbox_row(node, second)
    if taken_over:  # the other worker's claim stands; we did not send it
        assert (report.sent, report.lost_lease) == (1, 1) and len(handler.received) == 1
        assert row.status == "pending" and row.attempts == 2
    else:  # the lease ran out but nobody took the row: renewing it (fenced by attempts) succeeds
        assert (report.sent, report.lost_lease) == (2, 0) and len(handler.received) == 2
        assert row.status == "sent" and row.attempts == 1


# -- the worker round -------------------------------------------------------------------


def test_a_worker_round_turns_due_profile_change_batches_into_mail_first(app, idp, mailbox, make_user):
    from visma_idp.account.notifications import record_profile_change

    uid = make_user(email="profile@example.no")
    with app.app_context():
        record_profile_change(db.session.get(User, uid), ["phone_number"])
        db.session.commit()
        assert run_once(idp).tried == 0  # the batch is still open
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"])
    with app.app_context():
        report = run_once(idp)
    assert (report.notices, report.sent) == (1, 1)
    assert [m["To"] for m in mailbox.messages] == ["profile@example.no"]


# -- flush after requests -------------------------------------------------------------------


def _app_with_a_mail_route(make_app, **overrides):
    """An app with one extra page that queues a message, as any flow does."""
    from visma_idp.notify.messages import queue

    node = make_app(**overrides)

    @node.get("/test/queue-mail/<int:user_id>")
    def queue_for(user_id):
        user = db.session.get(User, user_id)
        queue("password_changed", to=user.email, user=user, via="change")
        db.session.commit()
        return "queued"

    return node


def test_flush_after_request_sends_once_the_response_is_done(app, make_app, make_user, mailbox):
    uid = make_user(email="flush@example.no")
    node = _app_with_a_mail_route(make_app, MAIL_FLUSH_AFTER_REQUEST=True)
    response = node.test_client().get(f"/test/queue-mail/{uid}")
    assert response.status_code == 200
    assert mailbox.messages == []  # not before the response has gone out
    response.close()  # what the WSGI server does once it has sent the body
    assert [m["To"] for m in mailbox.messages] == ["flush@example.no"]
    with app.app_context():
        assert db.session.scalar(select(MailOutbox.status)) == "sent"


def test_flush_after_request_with_smtp_down_keeps_the_response_and_the_mail(app, make_app, make_user, mailbox):
    uid = make_user(email="flushdown@example.no")
    node = _app_with_a_mail_route(make_app, MAIL_FLUSH_AFTER_REQUEST=True)
    mailbox.capture.stop()
    response = node.test_client().get(f"/test/queue-mail/{uid}")
    assert response.status_code == 200 and response.get_data(as_text=True) == "queued"
    response.close()
    with app.app_context():
        row = db.session.scalars(select(MailOutbox)).one()
        assert row.status == "pending" and row.attempts == 1 and "ConnectionRefusedError" in row.last_error
    mailbox.capture.start()
    node.extensions["visma_idp"].clock.advance(30)
    assert _deliver(node).sent == 1


def test_without_flush_after_request_mail_waits_for_the_worker(app, make_app, make_user, mailbox):
    uid = make_user(email="noflush@example.no")
    node = _app_with_a_mail_route(make_app)
    response = node.test_client().get(f"/test/queue-mail/{uid}")
    response.close()
    assert mailbox.messages == []
    assert _deliver(node).sent == 1
