"""Guessable passwords: the policy's ``guessable`` rule (password/policy.py,
password/guesses.py).

- A common word, name, place or team (English, Norwegian, Danish, Swedish)
  with a year, digits, a date or a repeat added, a keyboard walk, a sequence,
  the person's own details: below PASSWORD_MIN_GUESSES_LOG10 (default 10)
  the password is refused, and the message says what it is built from.
- Passphrases of four random words and 16 or more random characters pass.
- The same rule runs in the live check (POST /password/check) and when the
  activation, reset and change-password forms are posted.
- The person's details go to zxcvbn per call, never into its shared state;
  only the first 40 characters are estimated; look-alike swaps are read at
  most eight ways.
"""

from __future__ import annotations

import re
import sys
import threading

import pytest

from visma_idp.password import guesses
from visma_idp.password.policy import PersonalInfo, Policy, Violation, check

NOBODY = PersonalInfo()
KARI = PersonalInfo(email="kari@example.no", given_name="Kari", family_name="Nordmann")
SIGVALDI = PersonalInfo(email="s.fjeldvik@example.no", given_name="Sigvaldi", family_name="Fjeldvik")

WHAT = {  # the parts of the English message, by pattern
    "word": "a common word", "name": "a common name", "place": "a place or team name",
    "password": "a common password", "number": "a common number (such as 123456)",
    "personal": "details about you (your name, email address or company)", "reversed": "a word spelt backwards",
    "swaps": "letters swapped for look-alike digits or symbols (such as @ for a)",
    "keyboard": "a keyboard pattern (such as qwerty)", "repeat": "a repeat (such as aaa or abcabc)",
    "sequence": "a sequence (such as abc or 1234)", "year": "a year", "date": "a date",
}

# (password, person, the rule that refuses it, what the message names)
REFUSED = [
    # the issue's examples
    ("password123456", NOBODY, "guessable", ("password", "number")),
    ("Sommer2024!!!", NOBODY, "guessable", ("word", "year", "repeat")),
    ("Vinter2025!", NOBODY, "guessable", ("word", "year")),
    ("Passord123", NOBODY, "common", None),
    ("Qwerty123456", NOBODY, "common", None),
    ("Oslo2024oslo", NOBODY, "guessable", ("place", "year")),
    ("abcd1234abcd", NOBODY, "guessable", ("password", "sequence")),
    ("Kari1990!!!!", KARI, "guessable", ("personal", "year", "repeat")),
    ("Kari2024!!", KARI, "guessable", ("personal", "year")),
    # Norwegian, Danish and Swedish words, with and without æ, ø, å, ä, ö
    ("Hoest2023!!!", NOBODY, "guessable", ("word", "year", "repeat")),
    ("Høst2023!!!!", NOBODY, "guessable", ("word", "year", "repeat")),
    ("Lösenord2024", NOBODY, "guessable", ("word", "year")),
    ("Hemmelig2023", NOBODY, "guessable", ("word", "year")),
    ("Fotball2024!", NOBODY, "guessable", ("word", "year")),
    ("Desember2024", NOBODY, "guessable", ("word", "year")),
    ("Lørdag2024!!", NOBODY, "guessable", ("word", "year")),
    ("Kjæreste2023!", NOBODY, "guessable", ("word", "year")),
    ("Sommarlov2024", NOBODY, "guessable", ("word", "year")),
    ("Adgangskode12", NOBODY, "guessable", ("word",)),
    ("Jegelskerdeg1", NOBODY, "guessable", ("word",)),
    ("Välkommen123!", NOBODY, "guessable", ("word", "sequence")),
    ("Kodeord1234!", NOBODY, "guessable", ("word", "number")),
    # places, teams, names
    ("Rosenborg1995!", NOBODY, "guessable", ("place", "year")),
    ("Brøndby2024!!", NOBODY, "guessable", ("place", "year")),
    ("Stockholm2024", NOBODY, "guessable", ("place", "year")),
    ("Trondheim2024!", NOBODY, "guessable", ("place", "year")),
    ("Anders1985!!", NOBODY, "guessable", ("name", "year")),
    ("Nora17051990", NOBODY, "guessable", ("name", "date")),
    ("Olsen1234567", NOBODY, "guessable", ("name", "number")),
    # swaps, reversed words, keyboard walks, repeats, sequences
    ("P4ss0rd2024!", NOBODY, "guessable", ("word", "swaps", "year")),
    ("drossap2024!", NOBODY, "guessable", ("word", "reversed", "year")),
    ("1qaz2wsx3edc", NOBODY, "common", None),
    ("zxcvbnm,./;'", NOBODY, "guessable", ("keyboard",)),
    ("juljuljuljul2", NOBODY, "guessable", ("repeat",)),
    ("abcdef123456", NOBODY, "guessable", ("sequence", "number")),
    ("hunter2hunter2", NOBODY, "guessable", ("repeat",)),
    # two common words are not a passphrase
    ("zebra kettle", NOBODY, "guessable", ("password", "word")),
]

# four random words, or 16 and more random characters
ACCEPTED = [
    "correct horse battery staple",
    "trombone vakker lampe eiendom",
    "sykkel tannbørste gardin kompass",
    "tiger lampe sykkel orkan",
    "hest kaffe regn fjell",
    "korrekt hest batteri stift",
    "Xk9#mQ2$vL7pR4wz",
    "9ir4kWq2Lz7hQx1b",
    "uG5_pY2!nW8@cE4z",
    "hv8Rq2ZtLm4XpK7wN9",
    "correct horse battery",  # the password most tests sign in with
]


def violations(password: str, person: PersonalInfo = NOBODY, policy: Policy | None = None) -> list[Violation]:
    return check(password, policy=policy or Policy(), person=person)


@pytest.mark.parametrize(("password", "person", "rule", "patterns"), REFUSED, ids=[r[0] for r in REFUSED])
def test_guessable_passwords_are_refused_and_the_message_says_why(app, password, person, rule, patterns):
    found = {v.code: v for v in violations(password, person)}
    assert rule in found, list(found)
    if rule != "guessable":
        assert "guessable" not in found  # one message about it is enough
        return
    assert found["guessable"].params == {"patterns": patterns}
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        message = found["guessable"].message()
    assert message.startswith("This password is easy to guess: it contains ")
    for pattern in patterns:
        assert WHAT[pattern] in message


@pytest.mark.parametrize("password", ACCEPTED)
def test_passphrases_and_random_characters_pass(password):
    assert violations(password) == []
    assert violations(password, KARI) == []


def test_the_persons_own_details_make_a_password_guessable():
    # "Fjeldvik" is on no list: a stranger's password, this person's name
    assert violations("Fjeldvik2024!") == []
    found = violations("Fjeldvik2024!", SIGVALDI)
    assert [v.code for v in found] == ["contains_name", "contains_email", "guessable"]
    assert found[-1].params == {"patterns": ("personal", "year")}


def test_the_company_and_the_email_count_as_the_persons_details():
    person = PersonalInfo(email="tindeklatrer@example.no", company_names=("Brakkebygg Vestfold AS",))
    assert violations("Brakkebygg2024!") == []
    assert [v.code for v in violations("Brakkebygg2024!", person)] == ["contains_company", "guessable"]
    assert [v.code for v in violations("Tindeklatrer99!", person)] == ["contains_email", "guessable"]


def test_the_message_lists_the_parts_in_the_pages_language(app):
    violation = Violation("guessable", {"patterns": ("word", "year", "repeat")})
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert violation.message() == (
            "This password is easy to guess: it contains a common word, a year, and a repeat (such as aaa or "
            "abcabc). Add a few words that do not belong together.")
    with app.test_request_context("/", headers={"Accept-Language": "nb"}):
        assert " og " in violation.message()  # the list is joined the Norwegian way
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        bare = Violation("guessable", {"patterns": ()}).message()
    assert bare == "This password is easy to guess. Make it longer, for example with a few more words."


def test_the_rule_is_described_on_the_page(app):
    with app.test_request_context("/"):
        assert Policy().describe()[3] == ("Hard to guess: not a common word or name with a year, digits or symbols "
                                          "added, and no keyboard patterns, repeats or sequences")
        assert len(Policy(min_guesses_log10=0).describe()) == 3


# -- the threshold -------------------------------------------------------------------

def test_the_threshold_is_a_setting_of_powers_of_ten(make_app):
    from visma_idp.errors import ConfigError

    assert Policy().min_guesses_log10 == 10
    assert Policy.from_settings(make_app().extensions["visma_idp"].settings).min_guesses_log10 == 10
    assert Policy.from_settings(make_app(PASSWORD_MIN_GUESSES_LOG10=8).extensions["visma_idp"].settings) \
        .min_guesses_log10 == 8
    for wrong in (-1, 21, "ten"):
        with pytest.raises(ConfigError, match="PASSWORD_MIN_GUESSES_LOG10"):
            make_app(PASSWORD_MIN_GUESSES_LOG10=wrong)


def test_the_threshold_decides():
    # "Sommer2024!!!" takes about 10^8 guesses
    assert [v.code for v in violations("Sommer2024!!!", policy=Policy(min_guesses_log10=9))] == ["guessable"]
    assert violations("Sommer2024!!!", policy=Policy(min_guesses_log10=8)) == []
    assert violations("Sommer2024!!!", policy=Policy(min_guesses_log10=0)) == []  # 0: no rule
    # zxcvbn counts at most 10 guesses a character: with a minimum length of
    # 8, a deployment lowers the threshold to 8 as well
    assert violations("Tq7#vX2m", policy=Policy(min_length=8, min_guesses_log10=8)) == []
    assert [v.code for v in violations("Tq7#vX2m", policy=Policy(min_length=8))] == ["guessable"]


# -- the estimate ---------------------------------------------------------------------

def test_the_nordic_list_has_the_words_the_issue_names():
    sections = guesses.read_nordic()
    assert set(sections) == {"words", "names", "places"}
    for section, entries in sections.items():
        assert len(entries) == len(set(entries)), section
        assert all(e == e.lower() and " " not in e for e in entries), section
    for word in ("passord", "sommer", "vinter", "høst", "vår", "jul", "fotball", "hemmelig", "lösenord", "kodeord",
                 "januar", "mandag", "påske"):
        assert word in sections["words"], word
    for place in ("oslo", "bergen", "københavn", "stockholm", "rosenborg", "brøndby", "hammarby"):
        assert place in sections["places"], place
    assert {"kari", "ola", "anders", "hansen"} <= set(sections["names"])


def test_nordic_letters_are_also_spelt_out():
    assert guesses.spellings("høst") == {"høst", "host", "hoest"}
    assert guesses.spellings("vår") == {"vår", "var", "vaar"}
    assert guesses.spellings("lösenord") == {"lösenord", "losenord", "loesenord"}
    assert guesses.spellings("kjæreste") == {"kjæreste", "kjaereste"}
    for spelt in ("Vaar2024!!!!", "Kjaereste2023!", "Loesenord2024"):
        assert "word" in guesses.estimate(spelt).patterns, spelt


def test_a_password_in_decomposed_unicode_is_estimated_the_same():
    assert guesses.estimate("Va\u030ar2024!!!!") == guesses.estimate("Vår2024!!!!")


def test_the_persons_details_never_reach_zxcvbns_shared_state():
    from zxcvbn import matching

    before = {name: len(ranked) for name, ranked in matching.RANKED_DICTIONARIES.items()}
    alone = guesses.estimate("Sigvaldi1990!")
    mine = guesses.estimate("Sigvaldi1990!", user_inputs=["sigvaldi"])
    assert mine.guesses_log10 < alone.guesses_log10 and "personal" in mine.patterns
    assert guesses.estimate("Sigvaldi1990!") == alone  # nothing of the last call was kept
    assert {name: len(ranked) for name, ranked in matching.RANKED_DICTIONARIES.items()} == before


def test_concurrent_estimates_each_use_their_own_persons_details():
    # zxcvbn.zxcvbn() keeps user inputs in a dict every thread shares; ours
    # are passed down per call
    people = {f"{name}2024!!": [name.lower()] for name in ("Sigvaldi", "Fjeldvik", "Brakkebygg", "Tindeklatrer")}
    expected = {pw: guesses.estimate(pw, user_inputs=inputs) for pw, inputs in people.items()}
    results: dict[str, set] = {pw: set() for pw in people}

    def work(pw):
        for _ in range(15):
            results[pw].add(guesses.estimate(pw, user_inputs=people[pw]))

    threads = [threading.Thread(target=work, args=(pw,)) for pw in people for _ in range(2)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a busy server would
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert results == {pw: {expected[pw]} for pw in people}


def test_only_the_first_40_characters_are_estimated():
    assert guesses.PREFIX == 40
    long_symbols = "@!|1$(<{[7+%2690834" * 54  # 1026 characters of look-alikes
    assert guesses.estimate(long_symbols) == guesses.estimate(long_symbols[:40])
    weak_start = "Sommer2024!!!" + "Xk9#mQ2$vL7pR4wz" * 2 + "q" * 100
    assert guesses.estimate(weak_start) == guesses.estimate(weak_start[:40])
    # the longest password the policy allows is checked, and answers
    found = violations(("Sommer2024!!!" + "x" * 1024)[:1024])
    assert [v.code for v in found] == []  # 40 characters of it are enough to be strong


def test_look_alikes_are_read_at_most_eight_ways(monkeypatch):
    from zxcvbn import matching

    calls = []
    real = matching.dictionary_match

    def counted(password, _ranked_dictionaries):
        calls.append(password)
        return real(password, _ranked_dictionaries)

    monkeypatch.setattr(matching, "dictionary_match", counted)
    # zxcvbn's own l33t matcher reads these 40 characters several hundred ways
    text = ("@!|1$(<{[7+%2690834" * 3)[:40]
    guesses._swap_matches(text, {"common": guesses._load().merged})
    assert 1 <= len(calls) <= 8
    assert all(set(c).isdisjoint(guesses._LOOKALIKES) for c in calls)  # every look-alike swapped at once


def test_the_demo_password_passes():
    import secrets

    # the demo's password is secrets.token_urlsafe(15): 20 random characters
    for _ in range(20):
        assert violations(secrets.token_urlsafe(15)) == []


# -- on every form that sets a password --------------------------------------------------

GUESSABLE = "Sommer2024!!!"
WHY = re.escape("This password is easy to guess: it contains a common word, a year, and a repeat")


def test_the_live_check_refuses_it_with_the_reason(client):
    from tests.password.test_check_api import ask

    answer = ask(client, {"password": GUESSABLE}).get_json()
    assert answer["ok"] is False
    assert [v["code"] for v in answer["violations"]] == ["guessable"]
    assert re.match(WHY, answer["violations"][0]["message"])
    # the person's details sent by the page count
    answer = ask(client, {"password": "Fjeldvik2024!", "family_name": "Fjeldvik"}).get_json()
    assert [v["code"] for v in answer["violations"]] == ["contains_name", "guessable"]
    assert ask(client, {"password": "Fjeldvik2024!"}).get_json()["ok"] is True


def test_the_live_check_uses_the_links_person(client, link_for):
    from tests.password.test_check_api import ask

    link = link_for()  # Per Olsen, po@example.no
    answer = ask(client, {"password": "Olsen1990!!!!", "link": link}).get_json()
    assert [v["code"] for v in answer["violations"]] == ["contains_name", "guessable"]
    assert set(answer["violations"][1]) == {"code", "message"}  # the JSON keeps its shape


@pytest.fixture
def link_for(app):
    """A live activation link for a new user called Per Olsen, po@example.no."""
    from visma_idp.account import tokens
    from visma_idp.admin.service import create_user
    from visma_idp.storage import db

    def issue():
        with app.app_context():
            user = create_user("po@example.no", "Per Olsen", None, given_name="Per", family_name="Olsen")
            link = tokens.issue(user, tokens.ACTIVATION, lifetime=3600)
            db.session.commit()
            return link.raw

    return issue


def test_activation_refuses_it(app, client, mailbox):
    from tests.account.test_activation import activation_link, invite, user_row
    from tests.password.recovery import post_new_password

    invite(app)
    link = activation_link(mailbox)
    resp = post_new_password(client, link, GUESSABLE, GUESSABLE)
    assert resp.status_code == 400
    assert re.search(WHY, resp.text) and 'aria-invalid="true"' in resp.text
    assert user_row(app).status == "pending"
    # Nina Berg: her own name with a year is guessable too, and both messages show
    resp = post_new_password(client, link, "NinaBerg2024!", "NinaBerg2024!")
    assert resp.status_code == 400
    assert "Do not use your name in the password." in resp.text
    assert "details about you (your name, email address or company)" in resp.text


def test_a_reset_refuses_it(app, client, make_user, mailbox, settings):
    from tests.password.recovery import EASY_POW, forgot, post_new_password, reset_links

    settings["POW_DIFFICULTY"] = EASY_POW
    make_user(email="kari@example.no", password="correct horse battery")
    assert forgot(client, "kari@example.no").status_code == 200
    link = reset_links(mailbox.last("kari@example.no"))[0]
    resp = post_new_password(client, link, GUESSABLE, GUESSABLE)
    assert resp.status_code == 400 and re.search(WHY, resp.text)
    assert post_new_password(client, link).status_code == 302  # a good one is still taken


def test_a_change_of_password_refuses_it(app, make_user):
    from tests.account.test_change_password import change, field_error
    from tests.account.test_details import signed_in_browser

    make_user()
    client = signed_in_browser(app)
    resp = change(client, new=GUESSABLE)
    assert resp.status_code == 400
    assert re.search(WHY, field_error(resp.text, "password-new"))
    assert change(client).status_code == 303  # "a much longer passphrase 2024"


def test_the_cli_refuses_it(app):
    from visma_idp.admin.service import InvalidInput, create_user

    with app.app_context(), pytest.raises(InvalidInput) as caught:
        create_user("ola@example.no", "Ola Nordmann", GUESSABLE)
    assert "This password is easy to guess" in str(caught.value)
