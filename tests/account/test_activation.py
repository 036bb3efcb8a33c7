"""Activation: an invited user gets a Welcome email, sets a password under
the policy through the link, and signs in.

- The link is single use, lives 7 days (ACTIVATION_LIFETIME) and is stored
  as a digest; GET shows the form without using it.
- An expired, used, voided or unknown link shows a clear page (410/404) with
  a form for a new link; resending voids the older links, answers the same
  for any address and is throttled silently.
- The CLI: `users create --invite`, `users resend-activation`.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.helpers import csrf, drop_all_tables
from tests.mailbox import Mailbox
from tests.password.recovery import (
    EASY_POW,
    STRONG,
    audit,
    links_of,
    path,
    post_new_password,
    resend_activation,
    sign_in,
    signed_in,
)

RESEND_PER_EMAIL = 3  # ACTIVATION_RESEND_PER_EMAIL's default

NINA = "nina@example.no"
ISSUER = "http://127.0.0.1:5000"


def invite(app, email=NINA, name="Nina Berg"):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    with app.app_context():
        user = invite_user(email, name)
        db.session.commit()
        return user.id


def activation_link(mailbox, email=NINA) -> str:
    found = links_of(mailbox.last(email), "/activate/")
    assert len(found) == 1
    assert found[0].startswith(ISSUER + "/activate/")
    return path(found[0])


def user_row(app, email=NINA):
    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(email)
        db.session.expunge(user)
        return user


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


def resend(client, email):
    return resend_activation(client, email)


def test_invite_then_activate_then_sign_in(app, client, mailbox):
    invite(app)
    pending = user_row(app)
    assert pending.status == "pending" and not pending.email_verified and pending.password_hash is None
    assert sign_in(client, NINA, STRONG).status_code == 401  # no password yet

    message = mailbox.last(NINA)
    assert message["Subject"] == "Welcome: activate your account"
    assert "Activate account" in Mailbox.html(message)
    assert "7 days" in Mailbox.text(message)
    link = activation_link(mailbox)

    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Activate your account" in html and 'autocomplete="new-password"' in html
    assert client.get(link).status_code == 200  # looking does not use it

    resp = post_new_password(client, link)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/activate/done")
    done = client.get("/activate/done").get_data(as_text=True)
    assert "Your account is active" in done
    assert 'href="http://127.0.0.1:5000/login/password"' in done
    assert not signed_in(client)  # activation sends to sign in, it does not sign in

    user = user_row(app)
    assert user.status == "active" and user.email_verified and user.activated_at is not None
    assert [r["user_id"] for r in audit(app, "account_activated")] == [user.id]
    assert sign_in(client, NINA, STRONG).status_code == 302
    assert signed_in(client)


def test_the_link_is_stored_as_a_digest(app, mailbox):
    from visma_idp.crypto import digest
    from visma_idp.storage import AccountToken, db

    invite(app)
    raw = activation_link(mailbox).rsplit("/", 1)[1]
    with app.app_context():
        row = db.session.scalar(db.select(AccountToken))
    assert row.kind == "activation" and row.digest == digest(raw)
    assert row.expires_at - row.created_at == 7 * 24 * 3600


def test_the_password_must_meet_the_policy(app, client, mailbox):
    invite(app)
    link = activation_link(mailbox)
    for password, password2, message in (
        ("short", "short", "Use at least 12 characters."),
        ("nina berg is my password", "nina berg is my password", "Do not use your name in the password."),
        (STRONG, STRONG + "!", "The two passwords are not the same."),
    ):
        resp = post_new_password(client, link, password, password2)
        assert resp.status_code == 400
        html = resp.get_data(as_text=True)
        assert message in html and 'aria-invalid="true"' in html
    assert user_row(app).status == "pending"
    assert audit(app, "account_activated") == []
    assert post_new_password(client, link).status_code == 302


def test_the_link_expires_after_7_days(app, client, idp, mailbox):
    invite(app)
    link = activation_link(mailbox)
    idp.clock.advance(7 * 24 * 3600 - 60)
    assert client.get(link).status_code == 200
    idp.clock.advance(120)
    resp = client.get(link)
    assert resp.status_code == 410
    html = resp.get_data(as_text=True)
    assert "The link has expired." in html
    assert 'action="http://127.0.0.1:5000/activate/resend"' in html and 'name="email"' in html
    assert user_row(app).status == "pending"


def test_the_link_works_once(app, client, mailbox):
    invite(app)
    link = activation_link(mailbox)
    page = client.get(link).get_data(as_text=True)
    data = {"password": STRONG, "password2": STRONG, "csrf_token": csrf(page)}
    assert client.post(link, data=data).status_code == 302
    again = client.post(link, data={**data, "password": STRONG + "!", "password2": STRONG + "!"})
    assert again.status_code == 410
    html = again.get_data(as_text=True)
    assert "The link was already used." in html and "If you have already chosen your password" in html
    assert sign_in(client, NINA, STRONG).status_code == 302


def test_unknown_link(client):
    resp = client.get("/activate/" + "q" * 43)
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "We do not know this link." in html and 'action="http://127.0.0.1:5000/activate/resend"' in html


def test_resend_voids_the_older_link(app, client, idp, mailbox):
    invite(app)
    old = activation_link(mailbox)
    idp.clock.advance(8 * 24 * 3600)
    resp = resend(client, NINA)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/activate/sent")
    assert "Check your email" in client.get("/activate/sent").get_data(as_text=True)
    message = mailbox.last(NINA)
    assert message["Subject"] == "Your new activation link"
    new = activation_link(mailbox)
    assert new != old
    assert client.get(old).status_code == 410
    assert post_new_password(client, new).status_code == 302
    assert len(audit(app, "activation_resent")) == 1


def test_resend_answers_the_same_for_any_address(app, client, make_user, mailbox):
    invite(app)
    mailbox.deliver()  # the Welcome email
    mailbox.capture.clear()
    make_user(email="active@example.no")
    answers = [resend(client, email) for email in (NINA, "active@example.no", "nobody@example.no")]
    assert {a.status_code for a in answers} == {302}
    assert len({a.headers["Location"] for a in answers}) == 1
    assert len({a.get_data() for a in answers}) == 1
    assert [m["To"] for m in mailbox.to(NINA)] == [NINA]
    assert mailbox.to("active@example.no") == [] and mailbox.to("nobody@example.no") == []


@pytest.mark.parametrize("limit", [None, 1])  # the default, or ACTIVATION_RESEND_PER_EMAIL
def test_resend_is_throttled_silently(app, client, idp, mailbox, limit):
    if limit:
        idp.settings["ACTIVATION_RESEND_PER_EMAIL"] = limit
    invite(app)
    mailbox.deliver()  # the Welcome email
    mailbox.capture.clear()
    answers = [resend(client, NINA) for _ in range((limit or RESEND_PER_EMAIL) + 2)]
    assert {a.status_code for a in answers} == {302}
    assert len(mailbox.to(NINA)) == (limit or RESEND_PER_EMAIL)


def test_resend_is_throttled_per_ip(app, idp, mailbox):
    idp.settings["ACTIVATION_RESEND_PER_IP"] = 2
    invite(app)
    mailbox.deliver()
    mailbox.capture.clear()
    spray = app.test_client()
    spray.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    for i in range(2):
        assert resend(spray, f"nobody{i}@example.no").status_code == 302
    assert resend(spray, NINA).status_code == 302  # over the IP's quota: the same answer, no email
    assert mailbox.to(NINA) == []
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.8"
    resend(other, NINA)
    assert len(mailbox.to(NINA)) == 1


def test_resend_needs_an_address_and_csrf(app, client, mailbox):
    invite(app)
    mailbox.deliver()  # the Welcome email
    mailbox.capture.clear()
    resp = resend(client, "not an address")
    assert resp.status_code == 400
    assert "Enter your email address" in resp.get_data(as_text=True)
    assert client.post("/activate/resend", data={"email": NINA}).status_code == 400
    assert mailbox.to(NINA) == []


def test_activation_post_needs_csrf(app, client, mailbox):
    invite(app)
    link = activation_link(mailbox)
    assert client.post(link, data={"password": STRONG, "password2": STRONG}).status_code == 400
    assert user_row(app).status == "pending"


def test_a_disabled_account_cannot_activate(app, client, mailbox):
    from visma_idp.storage import db, queries

    invite(app)
    link = activation_link(mailbox)
    with app.app_context():
        queries.user_by_email(NINA).is_active = False
        db.session.commit()
    resp = client.get(link)
    assert resp.status_code == 403
    assert "This account is disabled" in resp.get_data(as_text=True)


def test_a_reset_meanwhile_uses_up_the_activation_link(app, client, mailbox):
    """The owner chose a password through "forgot password" first: the Welcome link is spent."""
    from visma_idp.storage import db, queries

    invite(app)
    link = activation_link(mailbox)
    with app.app_context():
        user = queries.user_by_email(NINA)
        user.password_hash = app.extensions["visma_idp"].hasher.hash(STRONG)
        db.session.commit()
    assert client.get(link).status_code == 410


def test_create_user_with_a_password_is_active_at_once(app, make_user, mailbox):
    make_user(email="ola@example.no")
    user = user_row(app, "ola@example.no")
    assert user.status == "active" and user.email_verified
    assert mailbox.to("ola@example.no") == []


def test_resend_activation_refuses_an_active_account(app, make_user):
    from visma_idp.account.activation import resend_activation
    from visma_idp.errors import InvalidInput
    from visma_idp.storage import queries

    make_user(email="ola@example.no")
    with app.app_context(), pytest.raises(InvalidInput, match="not waiting for activation"):
        resend_activation(queries.user_by_email("ola@example.no"))


# -- the CLI ----------------------------------------------------------------------


@pytest.fixture
def cli(settings):
    """Run ``visma-idp`` in-process on a freshly migrated test database."""
    drop_all_tables(settings["DATABASE_URL"])
    env = {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}

    def run(*args, expect=0, input=None):
        result = CliRunner().invoke(__import__("visma_idp.cli", fromlist=["main"]).main, list(args), env=env,
                                    input=input)
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.stdout, result.stderr)
        return result

    run("db", "upgrade")
    yield run
    drop_all_tables(settings["DATABASE_URL"])


def test_cli_invite_and_resend(cli, make_app, smtp_capture):
    smtp_capture.start()
    smtp_capture.clear()
    assert "--invite" in cli("users", "create", "--help").stdout
    out = cli("users", "create", "--email", "Nina@Example.no", "--name", "Nina Berg", "--invite").stdout
    assert "nina@example.no" in out and "pending" in out
    assert cli("users", "list").stdout.splitlines()[1].split()[-1] == "pending"

    app = make_app()
    box = Mailbox(smtp_capture, app)
    first = links_of(box.last(NINA), "/activate/")
    assert cli("users", "resend-activation", "--email", NINA).stdout.startswith("activation email queued")
    second = links_of(box.last(NINA), "/activate/")
    assert first != second and len(box.to(NINA)) == 2

    client = app.test_client()
    assert client.get(path(first[0])).status_code == 410
    assert post_new_password(client, path(second[0])).status_code == 302
    assert cli("users", "list").stdout.splitlines()[1].split()[-1] == "yes"
    assert "not waiting for activation" in cli("users", "resend-activation", "--email", NINA, expect=1).stderr
    assert "no user" in cli("users", "resend-activation", "--email", "x@example.no", expect=1).stderr
    assert "not both" in cli("users", "create", "--email", "o@example.no", "--name", "O", "--invite",
                             "--password", STRONG, expect=1).stderr
