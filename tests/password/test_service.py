"""Setting a password (password/service.py): policy + history, hashing, what is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from visma_idp.admin.service import InvalidInput, create_user
from visma_idp.errors import PasswordPolicyError
from visma_idp.password import service
from visma_idp.storage import PasswordHistory, User, db

P1, P2, P3, P4 = "first long passphrase", "second long passphrase", "third long passphrase", "fourth long passphrase"


def _user(email="kari@example.no"):
    return db.session.scalar(select(User).where(User.email == email))


def _history_rows(user_id) -> int:
    return db.session.scalar(select(func.count()).select_from(PasswordHistory).where(PasswordHistory.user_id == user_id))


@pytest.fixture
def history_app(app, make_app):
    """An app on the test database with PASSWORD_HISTORY = 3 (current + two before)."""
    return make_app(PASSWORD_HISTORY=3)


def test_set_password_hashes_and_stamps_and_does_not_commit(app, idp, make_user):
    uid = make_user(password=P1)
    with app.app_context():
        user = db.session.get(User, uid)
        idp.clock.advance(100)
        before = idp.clock.now()
        service.set_password(user, P2)
        assert user.password_hash.startswith("$argon2id$")
        assert idp.hasher.verify(user.password_hash, P2)
        assert before <= user.password_changed_at <= idp.clock.now()  # hashing takes time
        db.session.rollback()  # the caller decides: nothing was committed
        assert idp.hasher.verify(db.session.get(User, uid).password_hash, P1)


def test_the_password_is_hashed_as_typed_and_never_truncated(app, idp, make_user):
    uid = make_user()
    long_one = ("Tre små kinesere på Høyblokken spiller kontrabass " * 10)[:400]
    decomposed = "cafe\u0301 au lait, ole\u0301"
    with app.app_context():
        user = db.session.get(User, uid)
        service.set_password(user, long_one)
        assert idp.hasher.verify(user.password_hash, long_one)
        assert not idp.hasher.verify(user.password_hash, long_one[:399])
        assert not idp.hasher.verify(user.password_hash, long_one[:72])
        service.set_password(user, decomposed)
        assert idp.hasher.verify(user.password_hash, decomposed)


def test_a_weak_password_raises_with_every_violation_and_changes_nothing(app, make_user):
    uid = make_user(given_name="Kari", family_name="Nordmann")
    with app.app_context():
        user = db.session.get(User, uid)
        before = user.password_hash
        with pytest.raises(PasswordPolicyError) as caught:
            service.set_password(user, "Kari1")
        assert [v.code for v in caught.value.violations] == ["too_short", "contains_name", "contains_email",
                                                             "guessable"]
        assert "Use at least 12 characters." in str(caught.value)
        assert user.password_hash == before


def test_the_users_own_details_are_used(app, make_user):
    uid = make_user(email="per.olsen@example.no", name="Per Olsen", given_name="Per", family_name="Olsen",
                    company_name="Fjordkraft AS")
    with app.app_context():
        user = db.session.get(User, uid)
        assert [v.code for v in service.violations("olsen likes tea", user)] == ["contains_name", "contains_email"]
        assert [v.code for v in service.violations("fjordkraft is cheap", user)] == ["contains_company",
                                                                                      "guessable"]
        assert service.violations("zebra kettle tea", user) == []


def test_the_full_name_counts_when_the_cli_gives_only_that(app):
    with app.app_context():
        with pytest.raises(InvalidInput) as caught:
            create_user("ola@example.no", "Ola Nordmann", "nordmann 4 ever tea")
        assert "Do not use your name in the password." in str(caught.value)


def test_the_cli_path_reports_every_violation(app):
    with app.app_context():
        with pytest.raises(InvalidInput) as caught:
            create_user("ola@example.no", "Ola Nordmann", "Ola1")
        message = str(caught.value)
        assert "at least 12 characters" in message
        assert "Do not use your name in the password." in message
        assert "Do not use your email address in the password." in message
        assert _user("ola@example.no") is None


def test_person_fields_stand_in_for_a_missing_user(app):
    with app.test_request_context("/"):
        assert [v.code for v in service.violations("kari likes green tea", given_name="Kari")] == ["contains_name"]
        assert [v.code for v in service.violations("acme rocks the world", company="Acme Ltd")] == ["contains_company"]
        assert [v.code for v in service.violations("kari likes green tea", email="kari@example.no")] == ["contains_email"]


def test_history_refuses_the_current_and_the_last_passwords(history_app):
    with history_app.app_context():
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        db.session.commit()
        uid = user.id
        assert _history_rows(uid) == 0

        service.set_password(user, P2)  # history: P2 (current), P1
        db.session.commit()
        assert _history_rows(uid) == 1
        for again in (P1, P2):
            with pytest.raises(PasswordPolicyError) as caught:
                service.set_password(user, again)
            assert [v.code for v in caught.value.violations] == ["reused"]
            assert caught.value.violations[0].params == {"count": 3}
        service.set_password(user, P3)  # P3, P2, P1
        service.set_password(user, P4)  # P4, P3, P2 -- P1 has dropped out
        db.session.commit()
        assert _history_rows(uid) == 2
        with pytest.raises(PasswordPolicyError):
            service.set_password(user, P2)
        service.set_password(user, P1)
        db.session.commit()
        assert _history_rows(uid) == 2


def test_the_reuse_message_counts_the_passwords(history_app):
    with history_app.test_request_context("/"):
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        found = service.violations(P1, user)
        assert [v.message() for v in found] == ["Do not use any of your last 3 passwords again."]


def test_history_is_combined_with_the_other_violations(history_app):
    with history_app.app_context():
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        # a password from before today's policy (an import, a changed setting)
        user.password_hash = history_app.extensions["visma_idp"].hasher.hash("kari has a long one")
        assert [v.code for v in service.violations("kari has a long one", user)] == ["contains_name", "contains_email",
                                                                                    "reused"]


def test_the_live_check_can_leave_history_out(history_app):
    with history_app.app_context():
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        assert service.violations(P1, user, history=False) == []
        assert service.violations(P1) == []  # no user: nothing to compare with


def test_history_one_means_not_the_current_password_and_keeps_no_rows(app, make_app):
    one = make_app(PASSWORD_HISTORY=1)
    with one.app_context():
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        db.session.commit()
        with pytest.raises(PasswordPolicyError):
            service.set_password(user, P1)
        service.set_password(user, P2)
        service.set_password(user, P1)
        db.session.commit()
        assert _history_rows(user.id) == 0


def test_rows_beyond_a_lowered_history_are_deleted_at_the_next_change(app, make_app, history_app):
    with history_app.app_context():
        user = create_user("kari@example.no", "Kari Nordmann", P1)
        service.set_password(user, P2)
        service.set_password(user, P3)
        db.session.commit()
        uid = user.id
        assert _history_rows(uid) == 2
    off = make_app(PASSWORD_HISTORY=0)
    with off.app_context():
        user = db.session.get(User, uid)
        service.set_password(user, P1)  # allowed: the rule is off
        db.session.commit()
        assert _history_rows(uid) == 0


def test_a_new_user_without_an_id_gets_a_password_and_history(history_app):
    with history_app.app_context():
        now = history_app.extensions["visma_idp"].clock.now()
        user = User(email="new@example.no", name="New Person", created_at=now, updated_at=now)
        service.set_password(user, P1)  # not in the session, no id: nothing to remember yet
        assert user.id is None
        service.set_password(user, P2)  # now P1 must be remembered: the user is flushed for its id
        assert user.id is not None
        db.session.commit()
        assert _history_rows(user.id) == 1
        with pytest.raises(PasswordPolicyError):
            service.set_password(user, P1)


def test_policy_follows_the_settings(app, make_app):
    strict = make_app(PASSWORD_MIN_LENGTH=16, PASSWORD_CHARACTER_CLASSES=3, PASSWORD_FORBID_SPACES=True)
    with strict.test_request_context("/"):
        assert [v.code for v in service.violations("zebra kettle tea")] == ["character_classes", "spaces"]
        assert [v.code for v in service.violations("Zebra_kettle_t3a")] == []
        assert [v.code for v in service.violations("Zebra_kettle_t3")] == ["too_short"]
