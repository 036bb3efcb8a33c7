"""Pages and messages come in the language the person chose: the switcher,
then their own setting, then ``ui_locales``, then Accept-Language."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parents[2] / "visma_idp" / "translations"


def translation(lang: str, msgid: str) -> str:
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        message = read_po(fh, locale=lang).get(msgid)
    assert message is not None and message.string, f"{lang} lacks {msgid!r}"
    return message.string


@pytest.mark.parametrize("lang", ["nb", "nn", "da", "sv"])
def test_sign_in_page_follows_accept_language(client, lang):
    html = client.get("/login", headers={"Accept-Language": f"{lang},en;q=0.5"}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert translation(lang, "Email address") in html


def test_switcher_wins_over_the_browser_and_sticks(client):
    html = client.get("/login?lang=sv", headers={"Accept-Language": "da"}).get_data(as_text=True)
    assert translation("sv", "Email address") in html
    html = client.get("/login", headers={"Accept-Language": "da"}).get_data(as_text=True)
    assert '<html lang="sv">' in html


def test_every_language_is_offered_on_the_page(client):
    html = client.get("/login").get_data(as_text=True)
    for code in ("en", "nb", "nn", "da", "sv"):
        assert f'hreflang="{code}"' in html


def test_users_own_setting_beats_the_browser(client, flow, app):
    from visma_idp.storage import User, db

    with app.app_context():
        user = db.session.scalar(db.select(User))
        user.locale = "nn"
        db.session.commit()
    flow.tokens()  # signs in through the forms
    html = client.get("/", headers={"Accept-Language": "da"}).get_data(as_text=True)
    assert '<html lang="nn">' in html


def test_ui_locales_beats_accept_language(flow, client):
    resp = flow.start(ui_locales="da-DK en")
    page = client.get(resp.headers["Location"].replace("http://127.0.0.1:5000", ""), headers={"Accept-Language": "sv"})
    assert '<html lang="da">' in page.get_data(as_text=True)


def test_one_language_list_for_the_switcher_my_details_and_discovery(app, client, make_user):
    """``config.LOCALES`` is the list: the switcher and the profile's choice show
    each language by its own name, in that order, and discovery announces it."""
    import re

    from tests.account.test_details import page, signed_in_browser
    from visma_idp.config import LOCALES

    names = {"en": "English", "nb": "Norsk bokmål", "nn": "Norsk nynorsk", "da": "Dansk", "sv": "Svenska"}
    assert set(LOCALES) == set(names)
    html = client.get("/login").get_data(as_text=True)
    switcher = re.findall(r'hreflang="([a-z]+)"[^>]*>([^<]+)</a>', html)
    assert switcher == [(code, names[code]) for code in LOCALES]
    make_user()
    choice = re.findall(r'<option value="([a-z]+)" lang="[a-z]+"[^>]*>([^<]+)</option>',
                        page(signed_in_browser(app)))
    assert choice == [(code, names[code]) for code in LOCALES]
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["ui_locales_supported"] == list(LOCALES)


def test_the_language_list_is_written_once():
    """No module or template of ours spells the list out again (it drifted in
    four copies): they read ``config.LOCALES``; the catalogues aside."""
    import re

    package = TRANSLATIONS.parent
    quoted = [re.compile(rf"""["']{code}["']""") for code in ("nn", "sv")]  # the two no other word is
    copies = []
    for path in package.rglob("*"):
        if path.suffix not in {".py", ".html", ".txt", ".js"} or TRANSLATIONS in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        if all(p.search(text) for p in quoted) and path.relative_to(package).as_posix() != "config.py":
            copies.append(path.relative_to(package).as_posix())
    assert copies == []
