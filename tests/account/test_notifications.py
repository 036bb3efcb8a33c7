"""Notifications: profile changes within the window become one mail;
opting out stops those but never the security mails. The batched roles mail
is tests/account/test_role_notices.py's."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from tests.account.test_details import PASSWORD, PROFILE, post, signed_in_browser, user_row
from tests.mailbox import Mailbox

KARI = "kari@example.no"
SUBJECT = "Your account details were changed"


def worker_round(app):
    """One round of the mail worker (`visma-idp mail worker`): due notices
    into the outbox, then delivery."""
    from visma_idp.notify import outbox

    with app.app_context():
        idp = app.extensions["visma_idp"]
        if hasattr(outbox, "run_once"):
            return outbox.run_once(idp)
        from visma_idp.account.notifications import flush_due_notices

        flush_due_notices(idp)
        return outbox.deliver_due(idp)


def profile_mails(mailbox, to=KARI):
    return [m for m in mailbox.to(to) if m["Subject"] == SUBJECT]


def make_kari(make_user, **extra):
    """Kari with the details of PROFILE already saved, so each save below changes only what it names."""
    return make_user(given_name="Kari", family_name="Nordmann", name="Kari N.", locale="en", **extra)


def save(client, **change):
    resp = post(client, "/account/profile", **{**PROFILE, **change})
    assert resp.status_code == 303, resp.status_code
    return resp


def test_changes_within_the_window_become_one_mail(app, idp, make_user, mailbox):
    make_kari(make_user)
    client = signed_in_browser(app)
    save(client, given_name="Karianne")
    idp.clock.advance(60)
    save(client, phone_number="+4791234567")
    idp.clock.advance(60)
    save(client, locale="nb")
    worker_round(app)
    assert profile_mails(mailbox) == []  # the window is still open

    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"])
    worker_round(app)
    worker_round(app)
    [message] = mailbox.to(KARI)  # one mail for three saves
    assert message["Subject"] != "" and message["Content-Language"] == "nb"  # the user's (new) language
    text = Mailbox.text(message)
    from flask_babel import force_locale

    from visma_idp.account.notifications import FIELD_LABELS

    with app.test_request_context("/"), force_locale("nb"):
        labels = {field: str(label) for field, label in FIELD_LABELS.items()}
    for field in ("given_name", "phone_number", "locale"):
        assert f"- {labels[field]}" in text, (field, text)
    assert f"- {labels['family_name']}" not in text
    assert "http://127.0.0.1:5000/account" in text


def test_a_change_after_the_window_starts_a_new_mail(app, idp, make_user, mailbox):
    make_kari(make_user)
    client = signed_in_browser(app)
    save(client, given_name="Karianne")
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    save(client, family_name="Nordmann-Ås")  # the first batch is due, not yet sent: this opens another
    worker_round(app)
    first = profile_mails(mailbox)
    assert len(first) == 1 and "Given name" in Mailbox.text(first[0]) and "Family name" not in Mailbox.text(first[0])
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    worker_round(app)
    second = profile_mails(mailbox)
    assert len(second) == 2 and "Family name" in Mailbox.text(second[1])


def test_opting_out_stops_profile_mails_but_not_security_mails(app, idp, make_user, mailbox):
    from visma_idp.storage import ProfileChangeNotice, db

    make_user()
    client = signed_in_browser(app)
    assert post(client, "/account/notifications").status_code == 303  # untick "Changed my account details"
    save(client, given_name="Kari")
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    worker_round(app)
    assert profile_mails(mailbox) == []
    with app.app_context():  # handled, without a mail
        assert db.session.scalar(select(func.count()).select_from(ProfileChangeNotice)
                                 .where(ProfileChangeNotice.sent_at.is_(None))) == 0

    resp = post(client, "/account/email", email="kari.n@example.com", current_password=PASSWORD)
    assert resp.status_code == 303
    assert mailbox.last(KARI)["Subject"] == "A change of your email address was requested"
    resp = post(client, "/account/password", current_password=PASSWORD, password="another long passphrase 7",
                password2="another long passphrase 7")
    assert resp.status_code == 303
    assert mailbox.last(KARI)["Subject"] == "Your password was changed"


def test_the_opt_out_counts_when_the_mail_would_leave(app, idp, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    save(client, given_name="Kari")
    post(client, "/account/notifications")  # opted out before the batch was due
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    worker_round(app)
    assert profile_mails(mailbox) == []


def test_without_a_window_the_mail_is_queued_at_once(app, make_app, make_user, smtp_capture):
    make_kari(make_user)
    instant = make_app(keys=True, NOTIFY_BATCH_SECONDS=0)
    mailbox = Mailbox(smtp_capture, instant)
    smtp_capture.clear()
    client = signed_in_browser(instant)
    save(client, given_name="Karianne")
    save(client, family_name="Nordmann-Ås")
    mails = [m for m in mailbox.to(KARI) if m["Subject"] == SUBJECT]
    assert len(mails) == 2
    assert "Given name" in Mailbox.text(mails[0]) and "Family name" not in Mailbox.text(mails[0])
    assert "Family name" in Mailbox.text(mails[1])


def test_two_workers_flushing_at_once_send_each_notice_once(app, idp, make_app, make_user):
    from visma_idp.account.notifications import flush_due_notices, record_profile_change
    from visma_idp.storage import MailOutbox, User, db

    ids = [make_user(email=f"user{i}@example.no") for i in range(12)]
    with app.app_context():
        for uid in ids:
            record_profile_change(db.session.get(User, uid), ["given_name"])
        db.session.commit()
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    workers = [make_app(), make_app()]
    for other in workers:
        other.extensions["visma_idp"].clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(worker_app):
        try:
            with worker_app.app_context():
                start.wait()
                counts.append(flush_due_notices(worker_app.extensions["visma_idp"]))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(counts) == len(ids)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MailOutbox)
                                 .where(MailOutbox.kind == "profile_changed")) == len(ids)
        assert flush_due_notices(idp) == 0


def test_a_user_row_is_not_needed_in_a_request(app, make_user):
    """The worker runs without a request: the mail is composed in the user's language."""
    from visma_idp.account.notifications import flush_due_notices, record_profile_change
    from visma_idp.storage import MailOutbox, User, db

    uid = make_user(locale="sv")
    idp = app.extensions["visma_idp"]
    with app.app_context():
        record_profile_change(db.session.get(User, uid), ["phone_number", "phone_number", "name"])
        record_profile_change(db.session.get(User, uid), [])
        db.session.commit()
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"])
    with app.app_context():
        assert flush_due_notices(idp) == 1
        row = db.session.scalar(select(MailOutbox))
        assert row.locale == "sv" and row.to_addr == KARI
    assert user_row(app).locale == "sv"
