"""The batched "Your roles have changed" email (account/notifications.py,
``roles_changed``): changes of one person's roles in one agreement within
``NOTIFY_BATCH_SECONDS`` become one mail with the net change, sent by the
mail worker through real SMTP; a role given and taken away again is no mail;
two workers send a notice once; the opt-out never applies."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.account.test_notifications import worker_round
from tests.agreements import any_org_number
from tests.mailbox import Mailbox

KARI = "kari@example.no"
SUBJECT = "Your roles have changed"


@pytest.fixture
def people(app, make_user):
    """Kari (opted out of the profile mails: roles mails come anyway) and two agreements."""
    from visma_idp.agreements import service
    from visma_idp.storage import db

    uid = make_user(notify_profile_changes=False)
    with app.app_context():
        nordlys = service.create("Nordlys Regnskap AS", "974760673")
        fjord = service.create("Fjord <b>Transport</b> AS", any_org_number("91234567"))
        db.session.commit()
        return {"kari": uid, "A": nordlys.public_id, "B": fjord.public_id}


def change(app, agreement_id, *, add=(), set_to=None, client_id=None, remove=False, email=KARI):
    """One change through agreements/service.py, committed as a request would."""
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    with app.test_request_context("/"):
        agreement, user = service.find(agreement_id), queries.user_by_email(email)
        if remove:
            service.remove_member(agreement, user)
        elif set_to is not None:
            service.set_roles(agreement, user, set_to, client_id)
        else:
            service.add_member(agreement, user, add, client_id=client_id)
        db.session.commit()


def after_the_window(idp, extra=1):
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + extra)


def role_mails(mailbox, to=KARI):
    return [m for m in mailbox.to(to) if m["Subject"] == SUBJECT]


def text_of(message) -> str:
    return Mailbox.text(message).replace("\r\n", "\n")


def notices(app) -> list:
    from visma_idp.storage import RoleChangeNotice, db

    with app.app_context():
        rows = list(db.session.scalars(select(RoleChangeNotice).order_by(RoleChangeNotice.id)))
        db.session.expunge_all()
        return rows


def outbox_count(app) -> int:
    from visma_idp.storage import MailOutbox, db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(MailOutbox).where(MailOutbox.kind == "roles_changed"))


# -- one mail for the window ------------------------------------------------------------------


def test_two_changes_in_the_window_become_one_mail_naming_both(app, idp, people, mailbox):
    change(app, people["A"], add=["employee"])
    idp.clock.advance(120)
    change(app, people["A"], add=["approver"], client_id="expense")
    idp.clock.advance(120)
    worker_round(app)
    assert role_mails(mailbox) == []  # the window is still open
    assert outbox_count(app) == 0

    after_the_window(idp)
    worker_round(app)
    worker_round(app)
    [message] = role_mails(mailbox)  # one mail for two changes (the opt-out does not apply)
    text = text_of(message)
    assert "Your roles in Nordlys Regnskap AS have changed." in text
    assert "Roles you were given:\n- approver (expense)\n- employee\n" in text and "no longer" not in text
    [notice] = notices(app)
    assert (notice.added, notice.removed, notice.sent_at is not None) == (["approver (expense)", "employee"], [], True)
    assert notice.due_at == notice.first_at + idp.settings["NOTIFY_BATCH_SECONDS"]  # the first change opened it


def test_a_role_given_and_taken_away_again_is_no_mail(app, idp, people, mailbox):
    change(app, people["A"], add=["employee", "approver"])
    change(app, people["A"], set_to=["employee"])  # approver goes again
    change(app, people["A"], remove=True)  # and employee: nothing is left to tell
    after_the_window(idp)
    worker_round(app)
    assert role_mails(mailbox) == []
    [notice] = notices(app)  # handled, without a mail
    assert notice.added == [] and notice.removed == [] and notice.sent_at is not None


def test_the_net_change_is_told(app, idp, people, mailbox):
    change(app, people["A"], add=["employee", "approver"])
    after_the_window(idp)
    worker_round(app)  # the first mail: both given
    change(app, people["A"], set_to=["approver", "auditor"])  # employee goes, auditor comes
    change(app, people["A"], set_to=["approver", "employee"])  # employee back, auditor goes: net nothing
    change(app, people["A"], set_to=["employee"])  # approver goes
    after_the_window(idp)
    first, second = role_mails(mailbox)
    assert "- approver\n- employee" in text_of(first)
    text = text_of(second)
    assert "Roles you no longer have:\n- approver\n" in text
    assert "given" not in text and "auditor" not in text and "- employee" not in text


def test_each_agreement_has_its_own_mail(app, idp, people, mailbox):
    change(app, people["A"], add=["employee"])
    change(app, people["B"], add=["driver"])
    after_the_window(idp)
    mails = role_mails(mailbox)
    assert len(mails) == 2
    by_agreement = {("Nordlys" in text_of(m)): text_of(m) for m in mails}
    assert "- employee" in by_agreement[True] and "driver" not in by_agreement[True]
    assert "- driver" in by_agreement[False] and "employee" not in by_agreement[False]
    html = "".join(Mailbox.html(m) for m in mails)
    assert "<b>Transport</b>" not in html and "&lt;b&gt;Transport&lt;/b&gt;" in html  # names are escaped


def test_a_change_after_the_window_starts_a_new_mail(app, idp, people, mailbox):
    change(app, people["A"], add=["employee"])
    after_the_window(idp)
    change(app, people["A"], add=["approver"])  # the first notice is due, not yet sent: this opens another
    worker_round(app)
    [first] = role_mails(mailbox)
    assert "- employee" in text_of(first) and "approver" not in text_of(first)
    after_the_window(idp)
    second = role_mails(mailbox)[1]
    assert "- approver" in text_of(second) and "employee" not in text_of(second)


def test_a_change_joining_a_claimed_notice_opens_a_new_one(app, idp, people, monkeypatch):
    """A worker that claimed the open notice between the change's look-up and
    its update wins: the change opens a new notice instead of being lost."""
    from sqlalchemy.orm.attributes import set_committed_value

    from visma_idp.account import notifications
    from visma_idp.agreements import service
    from visma_idp.storage import RoleChangeNotice, User, db

    change(app, people["A"], add=["employee"])
    with app.test_request_context("/"):
        [first] = db.session.scalars(select(RoleChangeNotice)).all()
        db.session.execute(db.update(RoleChangeNotice).values(sent_at=idp.clock.now()))  # a worker's claim
        db.session.commit()
        set_committed_value(first, "sent_at", None)  # what the change's look-up saw just before
        user, agreement = db.session.get(User, people["kari"]), service.find(people["A"])
        real_scalar = db.session.scalar
        calls = iter([first])  # the look-up of the open notice finds it
        monkeypatch.setattr(db.session, "scalar", lambda *a, **k: next(calls, None) or real_scalar(*a, **k))
        joined = notifications.roles_changed(user, agreement=agreement, added=["approver"], removed=[])
        monkeypatch.undo()
        db.session.commit()
        assert joined is not None and joined.id != first.id and joined.added == ["approver"]
    assert [(n.added, n.sent_at is None) for n in notices(app)] == [(["employee"], False), (["approver"], True)]


# -- the worker -------------------------------------------------------------------------------


def test_two_workers_flushing_at_once_send_each_notice_once(app, idp, make_app, make_user, people):
    from visma_idp.account.notifications import flush_due_notices
    from visma_idp.storage import db

    emails = [f"user{i}@example.no" for i in range(8)]
    for email in emails:
        make_user(email=email)
        change(app, people["A"], add=["employee"], email=email)
        change(app, people["A"], add=["approver"], email=email)  # two changes, one notice each
    after_the_window(idp)
    workers = [make_app(), make_app()]
    for other in workers:
        after_the_window(other.extensions["visma_idp"])
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
    assert sum(counts) == len(emails) and outbox_count(app) == len(emails)
    with app.app_context():
        assert flush_due_notices(idp) == 0


def test_two_workers_over_smtp_deliver_one_mail(app, idp, make_app, people, mailbox):
    change(app, people["A"], add=["employee"])
    change(app, people["A"], add=["approver"])
    after_the_window(idp)
    other = make_app()
    after_the_window(other.extensions["visma_idp"])
    worker_round(other)
    worker_round(app)
    [message] = role_mails(mailbox)
    assert "- approver\n- employee" in text_of(message)


def test_without_a_window_the_mail_is_queued_at_once(app, make_app, people, smtp_capture):
    instant = make_app(NOTIFY_BATCH_SECONDS=0)
    mailbox = Mailbox(smtp_capture, instant)
    smtp_capture.clear()
    change(instant, people["A"], add=["employee"])
    change(instant, people["A"], add=["approver"])
    first, second = role_mails(mailbox)
    assert "- employee" in text_of(first) and "approver" not in text_of(first)
    assert "- approver" in text_of(second)


# -- the message -------------------------------------------------------------------------------


def test_the_roles_mail_lists_given_then_taken(app, idp, people, mailbox):
    from visma_idp.account.notifications import roles_changed
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    with app.test_request_context("/"):
        user, agreement = db.session.get(User, people["kari"]), service.find(people["A"])
        roles_changed(user, agreement=agreement, added=["Payroll approver"], removed=["Expense user"])
        assert roles_changed(user, agreement=agreement, added=[], removed=[]) is None  # nothing to tell
        db.session.commit()
    after_the_window(idp)
    [message] = role_mails(mailbox)
    text = text_of(message)
    assert "Nordlys Regnskap AS" in text and "- Payroll approver" in text and "- Expense user" in text
    assert text.index("given") < text.index("Payroll approver") < text.index("no longer") < text.index("Expense user")
    assert "<li>Payroll approver</li>" in Mailbox.html(message)


def test_the_roles_mail_escapes_names_in_html(app, idp, people, mailbox):
    from visma_idp.account.notifications import roles_changed
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    with app.test_request_context("/"):
        roles_changed(db.session.get(User, people["kari"]), agreement=service.find(people["B"]),
                      added=["<img src=x>"], removed=[])
        db.session.commit()
    after_the_window(idp)
    html = Mailbox.html(mailbox.last(KARI))
    assert "<img src=x>" not in html and "&lt;img src=x&gt;" in html and "<b>Transport</b>" not in html


def test_net_change():
    from visma_idp.account.notifications import net_change

    assert net_change([], [], ["b", "a", "a"], []) == (["a", "b"], [])
    assert net_change(["a", "b"], [], [], ["a"]) == (["b"], [])
    assert net_change([], ["a"], ["a"], []) == ([], [])  # taken away, then given back
    assert net_change(["a"], ["c"], ["c", "d"], ["a", "e"]) == (["d"], ["e"])
    assert net_change([], [], ["a"], ["a"]) == ([], [])  # in one change: nothing
