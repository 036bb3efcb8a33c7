"""The password policy itself (password/policy.py): pure, every rule, all violations at once."""

from __future__ import annotations

import pytest

from visma_idp.password.policy import MAX_LENGTH, PersonalInfo, Policy, Violation, check

NOBODY = PersonalInfo()
KARI = PersonalInfo(email="kari.nordmann@example.no", given_name="Kari", family_name="Nordmann",
                    company_names=("Visma Software AS",))


def codes(password: str, policy: Policy | None = None, person: PersonalInfo = NOBODY) -> list[str]:
    return [v.code for v in check(password, policy=policy or Policy(), person=person)]


# -- length ----------------------------------------------------------------------

def test_the_default_minimum_is_12_characters():
    assert codes("Zebra kettl") == ["too_short"]
    assert codes("Zebra kettl!") == []


def test_the_minimum_comes_from_the_settings_and_may_be_8():
    settings = {"PASSWORD_MIN_LENGTH": 8, "PASSWORD_CHARACTER_CLASSES": 3, "PASSWORD_FORBID_SPACES": True,
                "PASSWORD_HISTORY": 5, "PASSWORD_MIN_GUESSES_LOG10": 8}
    policy = Policy.from_settings(settings)
    assert policy == Policy(min_length=8, character_classes=3, forbid_spaces=True, history=5, min_guesses_log10=8)
    # 8 characters are at most 10^8 guesses: such a deployment lowers the guess threshold too
    eight = Policy(min_length=8, min_guesses_log10=8)
    assert codes("Tq7#vX2m", eight) == []
    assert codes("Tq7#vX2", eight) == ["too_short", "guessable"]


def test_length_counts_code_points_so_twelve_emoji_are_long_enough():
    twelve = "😀🍕🚲🌲🎸🐙🧀🦊🌻🚀🍩🐝"  # not a run of code points (that would be a sequence)
    assert len(twelve.encode("utf-16-le")) == 48  # a browser's maxlength would say 24
    assert codes(twelve) == []
    assert codes(twelve[:11]) == ["too_short"]


def test_a_letter_with_a_combining_accent_counts_once():
    # "café olé x" typed with combining accents is 12 code points, 10 characters
    decomposed = "cafe\u0301 ole\u0301 x"
    assert len(decomposed) == 12
    assert codes(decomposed) == ["too_short"]
    assert codes("cafe\u0301 ole\u0301 xy") == ["too_short"]
    assert codes("cafe\u0301 ole\u0301 xyz") == []


@pytest.mark.parametrize("length", [64, 65, 200, MAX_LENGTH])
def test_long_passwords_are_accepted_up_to_1024_code_points(length):
    text = ("Tre små kinesere på Høyblokken spiller kontrabass " * 30)[:length]
    assert len(text) == length
    assert codes(text) == []


def test_beyond_1024_code_points_is_too_long():
    text = ("Tre små kinesere på Høyblokken spiller kontrabass " * 30)[:MAX_LENGTH + 1]
    assert codes(text) == ["too_long"]
    assert codes("😀" * (MAX_LENGTH + 1)) == ["too_long"]


def test_the_maximum_matches_what_the_login_page_accepts():
    from visma_idp.login.ways.password import MAX_PASSWORD

    assert Policy().max_length == MAX_LENGTH == MAX_PASSWORD


def test_control_characters_are_refused():
    assert codes("zebra\tkettle tea") == ["control_characters"]
    assert codes("zebra kettle\x00tea") == ["control_characters"]
    assert codes("zebra kettle\ntea") == ["control_characters"]


# -- personal information ---------------------------------------------------------

@pytest.mark.parametrize("password", [
    "kari likes green tea", "KARI likes green tea", "green tea for Kari!",
    "nordmann and green tea", "green NordMann tea",
])
def test_the_name_is_refused_case_insensitively(password):
    assert "contains_name" in codes(password, person=PersonalInfo(given_name="Kari", family_name="Nordmann"))


@pytest.mark.parametrize(("name", "password"), [
    ("Olsen", "0lsen likes green tea"),     # 0 → o
    ("Olsen", "O1sen likes green tea"),     # 1 → l
    ("Olsen", "Ols3n likes green tea"),     # 3 → e
    ("Anita", "4nita likes green tea"),     # 4 → a
    ("Olsen", "Ol5en likes green tea"),     # 5 → s
    ("Anita", "@nita likes green tea"),     # @ → a
    ("Olsen", "Ol$en likes green tea"),     # $ → s
    ("Anita", "Ani7a likes green tea"),     # 7 → t
    ("Anita", "An1ta likes green tea"),     # 1 → i
    ("Anita", "An!ta likes green tea"),     # ! → i
    ("Lise", "L!se likes green tea"),       # ! → i
    ("Kristian", "Kr1st1an likes tea"),
    ("Olsen", "0L$3N likes green tea"),
])
def test_character_swaps_are_undone(name, password):
    assert codes(password, person=PersonalInfo(family_name=name)) == ["contains_name"]


def test_accents_and_nordic_letters_do_not_hide_a_name():
    person = PersonalInfo(given_name="Bjørn", family_name="Ødegård")
    assert codes("odegard likes tea", person=person) == ["contains_name"]
    assert codes("ØDEGÅRD likes tea", person=person) == ["contains_name"]
    assert codes("my friend bjorn!", person=person) == ["contains_name"]


def test_spaces_and_punctuation_inside_the_name_do_not_hide_it():
    person = PersonalInfo(family_name="Nordmann")
    assert codes("n-o-r-d-m-a-n-n rules", person=person) == ["contains_name"]
    assert codes("nord mann rules ok", person=person) == ["contains_name"]


def test_names_are_split_on_spaces_and_hyphens():
    person = PersonalInfo(given_name="Anne-Marie", family_name="van der Berg")
    assert codes("sunny marie days", person=person) == ["contains_name"]
    assert codes("sunny anne days", person=person) == ["contains_name"]
    assert codes("a berg of ice cubes", person=person) == ["contains_name"]
    # "van" and "der" are parts of three letters: they count too
    assert codes("my caravan is red", person=person) == ["contains_name"]


def test_name_parts_shorter_than_three_letters_are_ignored():
    person = PersonalInfo(given_name="Li", family_name="Ng", name="Li Ng")
    assert codes("Ling ling garden", person=person) == []


def test_the_full_name_counts_when_given_and_family_name_are_unknown():
    assert codes("ola's green tea pot", person=PersonalInfo(name="Ola Nordmann")) == ["contains_name"]


def test_other_people_are_not_compared():
    assert codes("kari likes green tea", person=PersonalInfo(given_name="Per", family_name="Hansen")) == []


def test_the_local_part_of_the_email_is_refused_whole_and_in_parts():
    person = PersonalInfo(email="kari.nordmann+idp@example.no")
    assert codes("kari.nordmann+idp@x", person=person) == ["contains_email", "guessable"]
    assert codes("hello kari my old friend", person=person) == ["contains_email"]
    assert codes("big nordmann party", person=person) == ["contains_email"]
    assert codes("idp is the one", person=person) == ["contains_email"]
    # the domain is not personal
    assert codes("example of a phrase", person=person) == []


def test_an_email_local_part_with_digits_is_found_through_the_swaps_too():
    person = PersonalInfo(email="kari1990@example.no")
    assert codes("my kari1990 again", person=person) == ["contains_email"]
    assert codes("KAR!199O is fine?", person=person) == ["contains_email"]


def test_the_company_name_is_refused_whole_and_by_its_words():
    person = PersonalInfo(company_names=("Visma Software AS",))
    assert codes("vismasoftware 2024", person=person) == ["contains_company", "guessable"]
    assert codes("my v1sma password!", person=person) == ["contains_company"]
    assert codes("software rocks hard", person=person) == ["contains_company"]
    # the legal form is not part of the name
    assert codes("astronaut gravy boat", person=person) == []


def test_several_company_names_are_all_compared():
    person = PersonalInfo(company_names=("Nordlys Regnskap", "Fjordkraft"))
    assert codes("fjordkraft is cheap", person=person) == ["contains_company", "guessable"]
    assert codes("regnskap is fun!", person=person) == ["contains_company"]


# -- common passwords ----------------------------------------------------------------

@pytest.mark.parametrize("password", [
    "password123", "Password123", "PASSWORD123", "P@ssw0rd123", "p@$$w0rd123", "qwertyuiop", "iloveyou1",
    "Iloveyou!", "il0vey0u1", "pass word 123", " password123 ",
])
def test_common_passwords_are_refused_in_any_case_and_spelling(password):
    assert codes(password, Policy(min_length=8)) == ["common"]


def test_common_passwords_shorter_than_any_minimum_are_refused_by_length():
    for password in ("dragon", "abc123", "monkey", "shadow"):
        assert codes(password, Policy(min_length=8)) == ["too_short", "guessable"]


def test_a_password_that_only_contains_a_common_one_is_fine():
    assert codes("password123 is what I never use", Policy(min_length=8)) == []


# -- predictable --------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["mnopqrstuvwx", "zyxwvutsrqpo", "7890123456789", "passpasspass",
                                      "ÆØÅÆØÅÆØÅÆØÅ", "😀😀😀😀😀😀😀😀😀😀😀😀"])
def test_repeats_and_runs_are_refused(password):
    assert codes(password) == ["predictable"]


def test_a_repeated_unit_longer_than_four_characters_is_allowed():
    # by this rule; the guessability estimate still sees the repeat
    assert codes("hunter2hunter2") == ["guessable"]


# -- optional rules ---------------------------------------------------------------------

def test_character_classes_are_off_by_default():
    assert codes("zebra kettle tea") == []


@pytest.mark.parametrize(("password", "kinds"), [
    ("zebra kettle tea", 1),      # lower (the space counts as nothing)
    ("Zebra kettle tea", 2),      # + upper
    ("Zebra kettle 9", 3),        # + digit
    ("Zebra kettle 9!", 4),       # + symbol
    ("ÆØÅ æøå Ω ω tea", 2),       # upper and lower outside ASCII
    ("漢字かな仮名文字漢語和語", 1),  # letters without case count as lower case
    ("٣٤٥ zebra kettle", 2),      # Arabic-Indic digits are digits
])
def test_character_classes_count_lower_upper_digits_and_symbols(password, kinds):
    for required in range(1, 5):
        expected = [] if kinds >= required else ["character_classes"]
        assert codes(password, Policy(character_classes=required)) == expected, (password, required)


def test_spaces_only_when_forbidden():
    assert codes("zebra kettle tea") == []
    assert codes("zebra kettle tea", Policy(forbid_spaces=True)) == ["spaces"]
    assert codes("zebra\u00a0kettle tea", Policy(forbid_spaces=True)) == ["spaces"]
    assert codes("zebra_kettle_tea", Policy(forbid_spaces=True)) == []


# -- all at once ----------------------------------------------------------------------------------

def test_every_violation_is_returned_at_once_in_a_stable_order():
    policy = Policy(min_length=30, character_classes=3, forbid_spaces=True)
    found = check("kari visma nordmann", policy=policy, person=KARI)
    assert [v.code for v in found] == ["too_short", "contains_name", "contains_email", "contains_company",
                                       "character_classes", "spaces"]
    assert found[0].params == {"min": 30}
    assert found[4].params == {"required": 3}


def test_common_and_short_and_personal_together():
    found = codes("Password1", Policy(min_length=12, character_classes=4), PersonalInfo(given_name="Word"))
    assert found == ["too_short", "contains_name", "common", "character_classes"]


# -- messages -------------------------------------------------------------------------------------

def test_every_violation_has_an_english_sentence(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert Violation("too_short", {"min": 12}).message() == "Use at least 12 characters."
        assert Violation("too_long", {"max": 1024}).message() == "Use at most 1024 characters."
        assert Violation("contains_name").message() == "Do not use your name in the password."
        assert Violation("contains_email").message() == "Do not use your email address in the password."
        assert Violation("contains_company").message() == "Do not use your company's name in the password."
        assert Violation("common").message() == "This password is too common. Choose one that is harder to guess."
        assert Violation("spaces").message() == "Do not use spaces."
        assert Violation("reused", {"count": 1}).message() == "Do not use your current password again."
        assert Violation("reused", {"count": 4}).message() == "Do not use any of your last 4 passwords again."
        assert Violation("character_classes", {"required": 3}).message() == (
            "Use at least 3 of these kinds of characters: lower-case letters, upper-case letters, digits and symbols.")
        for code in ("control_characters", "predictable"):
            assert Violation(code).message().endswith(".")
        assert Violation("something_new").message() == "Choose another password."
        assert Violation("too_short", {"min": 8}).as_json() == {"code": "too_short",
                                                                "message": "Use at least 8 characters."}


def test_the_rules_are_described_for_the_page(app):
    with app.test_request_context("/"):
        assert Policy().describe() == ["At least 12 characters", "Not your name, your email address or your company's name",
                                       "Not a commonly used password",
                                       "Hard to guess: not a common word or name with a year, digits or symbols added, "
                                       "and no keyboard patterns, repeats or sequences"]
        full = Policy(min_length=8, character_classes=3, forbid_spaces=True, history=5).describe()
        assert full[0] == "At least 8 characters"
        assert full[4:] == ["At least 3 kinds of characters: lower-case letters, upper-case letters, digits, symbols",
                            "No spaces", "Not one of your last 5 passwords"]
        assert Policy(history=1).describe()[-1] == "Not your current password"
        assert Policy(history=5).describe(history=False) == Policy().describe()
