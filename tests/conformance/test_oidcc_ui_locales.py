"""oidcc-ui-locales (OIDCCUiLocales): ``ui_locales`` must not result in an
error; the first supported language of the list is used for the login pages
(OIDC Core 3.1.2.1), an unsupported one is ignored."""

import re

import flask_babel

from tests.conformance.oidf import NO_PKCE, run_code_flow
from tests.helpers import path_of


def _login_page(oidf, **params) -> str:
    resp = oidf.start(**params, **NO_PKCE)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    return path_of(resp.headers["Location"])


def _locale_for(app, oidf, path: str) -> str:
    """The language Flask-Babel picks for ``path`` in this browser (its session cookie)."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = oidf.client.get_cookie(name)
    with app.test_request_context(path, headers={"Cookie": f"{name}={cookie.value}"}):
        return str(flask_babel.get_locale())


def test_ui_locales_chooses_the_language_of_the_login_pages(app, oidf):
    path = _login_page(oidf, ui_locales="se nb-NO en")
    assert _locale_for(app, oidf, path) == "nb"


def test_unsupported_ui_locales_is_ignored(app, oidf, idp):
    path = _login_page(oidf, ui_locales="se")
    assert _locale_for(app, oidf, path) == "en"
    run_code_flow(oidf, idp, ui_locales="se")


def test_login_page_declares_the_chosen_language(oidf):
    html = oidf.client.get(_login_page(oidf, ui_locales="nb")).get_data(as_text=True)
    assert re.search(r'<html lang="([^"]+)"', html).group(1) == "nb"
