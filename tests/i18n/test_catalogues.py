"""The nb, nn, da and sv catalogues are complete and compiled.

Strings are extracted from the source exactly as `./dev i18n` does (babel.cfg),
so a new or changed string without a translation in every language fails
here, as does a placeholder that a translation lost or misspelt, or a .mo file
that is older than its .po file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from visma_idp.config import LOCALES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "visma_idp"
TRANSLATIONS = PACKAGE / "translations"
LANGUAGES = [code for code in LOCALES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


@pytest.fixture(scope="module")
def source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), METHODS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        found.add(message if isinstance(message, str) else message[0])
    assert len(found) > 50, "extraction found too little: is babel.cfg still right?"
    return found


def _catalogue(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_string_is_translated(lang, source_messages):
    catalogue = _catalogue(lang)
    missing = []
    for msgid in sorted(source_messages):
        message = catalogue.get(msgid)
        strings = message.string if message is not None else None
        if isinstance(strings, tuple | list):
            empty = not all(strings)
        else:
            empty = not strings
        if message is None or empty or message.fuzzy:
            missing.append(msgid)
    assert not missing, f"{lang}: {len(missing)} string(s) lack a translation (run ./dev i18n, then translate): " + \
        "; ".join(missing[:15])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_their_placeholders(lang):
    wrong = []
    for message in _catalogue(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        for form, text in enumerate(strings):
            # form 0 is the singular; the other forms follow the English plural
            english = ids[min(form, len(ids) - 1)]
            if text and set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(english)):
                wrong.append(ids[0])
    assert not wrong, f"{lang}: placeholders differ in: {wrong[:10]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalogue_matches_the_po_file(lang):
    def key(value):  # plural ids and strings come as lists from read_mo, tuples from read_po
        return tuple(value) if isinstance(value, list | tuple) else value

    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        compiled = {key(m.id): key(m.string) for m in read_mo(fh) if m.id}
    written = {key(m.id): key(m.string) for m in _catalogue(lang) if m.id and m.string and not m.fuzzy}
    assert compiled == written, f"{lang}: messages.mo is stale: run ./dev i18n"
