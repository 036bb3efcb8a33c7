"""``visma-idp mail …``: the worker (in-process and as a real process stopped
by a signal), reading the outbox, and retrying failed messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import drop_all_tables
from tests.notify import outbox_row, queue_mail
from visma_idp.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(settings):
    """The settings as VISMA_IDP_* variables, on a database with no tables."""
    drop_all_tables(settings["DATABASE_URL"])
    yield {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}
    drop_all_tables(settings["DATABASE_URL"])


@pytest.fixture
def run(env):
    def invoke(*args, env=None, expect=0):
        result = CliRunner().invoke(main, [str(a) for a in args], env={**run.env, **(env or {})})
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.stdout, result.stderr)
        return result

    run.env = env
    return invoke


@pytest.fixture
def capture(smtp_capture):
    smtp_capture.start()
    smtp_capture.refuse = False
    smtp_capture.clear()
    yield smtp_capture
    smtp_capture.start()


@pytest.fixture
def node(run, make_app):
    """A migrated database and an app on it to queue messages with."""
    run("db", "upgrade")
    return make_app()


def _user(app, email, **claims) -> int:
    from visma_idp.admin.service import create_user
    from visma_idp.storage import db

    with app.app_context():
        user = create_user(email, "Kari Nordmann", "correct horse battery staple", **claims)
        db.session.commit()
        return user.id


def test_unmigrated_database_is_refused(run):
    for command in (["mail", "list"], ["mail", "worker", "--once"], ["mail", "show", "1"], ["mail", "retry", "--failed"]):
        result = run(*command, expect=2)
        assert "visma-idp db upgrade" in result.stderr


def test_list_show_and_one_worker_round(run, node, capture):
    uid = _user(node, "kari@example.no", locale="nb")
    first, second = queue_mail(node, uid), queue_mail(node, uid, via="reset")
    row = outbox_row(node, first)
    body_line = row.text_body.strip().splitlines()[0]

    listing = run("mail", "list").stdout
    assert listing.splitlines()[0].split() == ["id", "created", "status", "tries", "to", "kind", "subject",
                                               "sent/next", "last_error"]
    assert [line.split()[0] for line in listing.splitlines()[1:]] == [str(second), str(first)]  # newest first
    assert "pending" in listing and "kari@example.no" in listing and row.subject in listing
    assert body_line not in listing  # no bodies in the list
    assert len(run("mail", "list", "--limit", "1").stdout.splitlines()) == 2

    shown = run("mail", "show", first).stdout
    assert "To:         kari@example.no" in shown and f"Message-ID: {row.message_id}" in shown
    assert "Language:   nb" in shown and "Status:     pending" in shown
    assert row.text_body.strip() in shown
    assert "<html" in run("mail", "show", first, "--html").stdout
    assert "no message 999 in the outbox" in run("mail", "show", 999, expect=1).stderr

    worker = run("mail", "worker", "--once").stdout
    assert "sending to smtp://127.0.0.1:" in worker and "sent 2, retrying 0, failed 0" in worker
    assert sorted(m["Message-ID"] for m in capture.received) == sorted(
        outbox_row(node, i).message_id for i in (first, second))
    sent = run("mail", "list", "--status", "sent").stdout
    assert len(sent.splitlines()) == 3
    assert run("mail", "list", "--status", "failed").stdout.splitlines()[1:] == []
    assert "sent 2" not in run("mail", "worker", "--once").stdout  # nothing more to do
    assert len(capture.received) == 2


def test_retry_puts_failed_messages_back_and_never_resends_a_sent_one(run, node, capture):
    uid = _user(node, "retry@example.no")
    failed, other = queue_mail(node, uid), queue_mail(node, uid)
    capture.stop()
    out = run("mail", "worker", "--once", env={"VISMA_IDP_MAIL_MAX_ATTEMPTS": "1"}).stdout
    assert "sent 0, retrying 0, failed 2" in out
    assert "ConnectionRefusedError" in run("mail", "show", failed).stdout

    assert "give a message id or --failed" in run("mail", "retry", expect=1).stderr
    assert "give a message id or --failed" in run("mail", "retry", failed, "--failed", expect=1).stderr
    assert run("mail", "retry", failed).stdout.startswith(f"1 message(s) due now: {failed}")
    row = outbox_row(node, failed)
    assert (row.status, row.attempts, row.lease_until) == ("pending", 0, None)
    assert "ConnectionRefusedError" in row.last_error  # kept until it is sent

    capture.start()
    assert "sent 1, retrying 0, failed 0" in run("mail", "worker", "--once").stdout
    assert run("mail", "retry", "--failed").stdout.startswith(f"1 message(s) due now: {other}")
    assert "sent 1" in run("mail", "worker", "--once").stdout
    assert len(capture.received) == 2

    refused = run("mail", "retry", failed, expect=1).stderr
    assert "it is not sent twice" in refused
    assert run("mail", "retry", "--failed").stdout.startswith("0 message(s) due now")
    assert "no message 999" in run("mail", "retry", 999, expect=1).stderr
    assert len(capture.received) == 2


def test_retry_makes_a_waiting_message_due_at_once(run, node, capture):
    row_id = queue_mail(node, _user(node, "waiting@example.no"))
    capture.refuse = True
    assert "retrying 1" in run("mail", "worker", "--once").stdout
    capture.refuse = False
    assert "sent" not in run("mail", "worker", "--once").stdout.split("\n", 1)[1]  # backing off
    run("mail", "retry", row_id)
    assert "sent 1" in run("mail", "worker", "--once").stdout
    assert outbox_row(node, row_id).attempts == 2


def test_worker_refuses_a_wrong_smtp_url(run, node):
    result = run("mail", "worker", "--once", env={"VISMA_IDP_SMTP_URL": "smtp://mail.example.com?starttls=maybe"},
                 expect=2)
    assert "VISMA_IDP_SMTP_URL: starttls must be auto, require or never" in result.stderr


def test_worker_without_smtp_url_leaves_mail_in_the_outbox(run, node, capture):
    row_id = queue_mail(node, _user(node, "nosmtp@example.no"))
    out = run("mail", "worker", "--once", env={"VISMA_IDP_SMTP_URL": ""}).stdout
    assert "SMTP_URL is not set" in out
    assert outbox_row(node, row_id).status == "pending" and capture.received == []


def test_worker_round_first_turns_due_profile_change_notices_into_mail(run, node, capture):
    from sqlalchemy import update

    from visma_idp.account.notifications import record_profile_change
    from visma_idp.storage import ProfileChangeNotice, User, db

    uid = _user(node, "notice@example.no")
    with node.app_context():
        notice = record_profile_change(db.session.get(User, uid), ["name"])
        db.session.commit()
        notice_id = notice.id
    assert "notices" not in run("mail", "worker", "--once").stdout  # the batch is still open
    with node.app_context():  # its window has passed (the CLI's clock cannot be moved)
        db.session.execute(update(ProfileChangeNotice).where(ProfileChangeNotice.id == notice_id)
                           .values(due_at=ProfileChangeNotice.first_at - 1))
        db.session.commit()
    assert "sent 1, retrying 0, failed 0, notices 1" in run("mail", "worker", "--once").stdout
    assert [m["To"] for m in capture.received] == ["notice@example.no"]


# -- the worker as a process -----------------------------------------------------------------


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("visma-idp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "visma_idp.cli"]


def _wait_for(condition, proc, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)  # a real process on real time: nothing to advance


@pytest.mark.slow
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_worker_process_sends_until_a_signal_stops_it_cleanly(env, node, capture, tmp_path, stop_with):
    uid = _user(node, "process@example.no")
    first = queue_mail(node, uid)
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*_cli(), "mail", "worker", "--interval", "0.2"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: len(capture.received) == 1, proc, log)
        second = queue_mail(node, uid)  # queued while it runs: the next round takes it
        _wait_for(lambda: len(capture.received) == 2, proc, log)
    finally:
        proc.send_signal(stop_with)
        status = proc.wait(timeout=30)
    output = log.read_text()
    assert status == 0, output
    assert output.count("sent 1, retrying 0, failed 0") == 2
    assert output.rstrip().endswith("visma-idp mail worker: stopped")
    assert [m["Message-ID"] for m in capture.received] == [outbox_row(node, i).message_id for i in (first, second)]
