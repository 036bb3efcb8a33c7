"""The language of a page: the switcher, then the user, then the app, then the browser.

Rules, in order (the first that names one of ``config.LOCALES`` wins):
1. a choice made with the language switcher (``?lang=``) in this browser,
   remembered in the session cookie;
2. the signed-in user's setting (My details);
3. the ``ui_locales`` of the request (or of the pending authorization named
   by ``tx`` in the URL; never read from a body, which may be large);
4. the browser's ``Accept-Language``;
5. ``DEFAULT_LOCALE``.
Outside a request (the CLI, the mail worker) a message picks its own language,
and so does a request of a machine that keeps no cookies (``browser.cookies.stateless``:
the SCIM endpoints): a message it causes is in its recipient's language, never
in the provisioning system's.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale

from .browser import interaction
from .browser.sso import current_session
from .config import LOCALES
from .context import current_idp


def select_locale() -> str:
    default = current_idp().settings["DEFAULT_LOCALE"]
    if not has_request_context() or g.get("stateless"):
        return default
    chosen = request.args.get("lang")
    if chosen in LOCALES:
        session["lang"] = chosen
    if session.get("lang") in LOCALES:
        return session["lang"]
    sess = current_session()
    if sess is not None and sess.user.locale in LOCALES:
        return sess.user.locale
    wanted = request.args.get("ui_locales") or interaction.ui_locales(request.args.get("tx"))
    for tag in (wanted or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    return request.accept_languages.best_match(LOCALES) or default


def init_app(app: Flask, default_locale: str) -> None:
    """Flask-Babel with our catalogues, wherever the package is installed (a
    host app may put its own before them)."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", default_locale)
    ours = str(Path(__file__).resolve().parent / "translations")
    theirs = app.config.get("BABEL_TRANSLATION_DIRECTORIES")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = f"{theirs};{ours}" if theirs and ours not in theirs else ours
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
