"""The package's templates and static files, carried by a blueprint of their
own so they are found in any app, whatever its import name or root path.

- Templates: Flask looks in the app's own ``templates/`` first, then in the
  blueprints' folders, so a host app overrides one of ours by giving its
  own file the same name (``home.html``, ``mail/welcome.subject.txt``).
- Static files: endpoint ``visma_idp.static``, served under the provider's
  URL prefix at ``static/``, or at ``visma-idp/static/`` when that path is
  already the app's own static route (a host app at the root of its URL
  space keeps its ``/static`` to itself). Same origin as our pages, so the
  CSP stays ``'self'``.
- ``languages()`` in every template: the languages of ``config.LOCALES`` with
  their own names (the switcher in ``base.html``, the choice on My details).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from babel import Locale
from flask import Blueprint, Flask

from .config import LOCALES

if TYPE_CHECKING:
    from . import IdentityProvider

NAME = "visma_idp"


@cache
def languages() -> tuple[tuple[str, str], ...]:
    """(code, the language's own name) for each of :data:`~visma_idp.config.LOCALES`,
    in that order: the language switcher and the language choice on My details
    (templates call ``languages()``). The names come from Babel's CLDR data."""
    names = []
    for code in LOCALES:
        name = Locale.parse(code).get_display_name(code) or code
        names.append((code, name[:1].upper() + name[1:]))
    return tuple(names)


def static_url_path(app: Flask, url_prefix: str) -> str:
    """Where our static files go in ``app`` (relative to ``url_prefix``)."""
    if app.has_static_folder and (app.static_url_path or "") == url_prefix + "/static":
        return "/visma-idp/static"
    return "/static"


def language_links() -> list[tuple[str, str, str, bool]]:
    """The language switcher of this page: (code, name, this page's address
    with ``lang=code``, is it the page's language), built once per request in
    Python (in the template it cost a URL encoding and a locale look-up per link)."""
    from flask import request
    from flask_babel import get_locale

    current = str(get_locale())
    base = request.script_root + request.path + "?"
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return [(code, name, base + urlencode([*args, ("lang", code)]), code == current) for code, name in languages()]


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register our templates and static files on ``app``."""
    idp.register_blueprints(app, blueprint(app, idp.url_prefix))


def blueprint(app: Flask, url_prefix: str) -> Blueprint:
    """The blueprint holding our templates and static files, for one app
    (and the ``languages()`` the templates list)."""
    bp = Blueprint(NAME, __name__, template_folder="templates", static_folder="static",
                   static_url_path=static_url_path(app, url_prefix))
    bp.add_app_template_global(languages, "languages")
    bp.add_app_template_global(language_links, "language_links")
    return bp
