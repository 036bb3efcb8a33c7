"""A host application of another name with the provider embedded in it.

``host_package`` writes a small package ``hostapp`` into a temporary folder
(its own ``templates/`` with ``index.html``, an override of our ``home.html``
and of one mail subject, its own ``static/``) and imports it; its
``create_app`` does what README's library section says: ``Flask(__name__)``,
the settings in ``app.config``, ``IdentityProvider(app)``. The host's ``/``
is registered before the provider (so it stays the host's when both live at
the root), ``/shop`` after it.

``host`` is that app on a fresh database migrated with
``api.upgrade_database``, at the root of the URL space or under ``/idp``
(parametrised: each test that uses it runs both ways).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.helpers import Flow, drop_all_tables

HOST_INIT = '''
"""A host application that embeds the provider, as README's library section says."""

from flask import Flask, render_template

from visma_idp import IdentityProvider


def create_app(settings, **options):
    app = Flask(__name__)
    app.config.update({"VISMA_IDP_" + key: value for key, value in settings.items()})

    @app.route("/")
    def index():
        return render_template("index.html", title="Host front page")

    IdentityProvider(app, **options)

    @app.route("/shop")
    def shop():
        return render_template("index.html", title="Host shop")

    return app
'''

HOST_FILES = {
    "templates/index.html": """
        <!doctype html>
        <title>{{ title }}</title>
        <link rel="stylesheet" href="{{ url_for('static', filename='host.css') }}">
        <h1>{{ title }}</h1>
        <a href="{{ idp_url('login.email') }}">Sign in with our provider</a>
        """,
    # overrides of the provider's templates: the host's own templates/ wins
    "templates/home.html": """
        {% extends "base.html" %}
        {% block content %}<h1>Host's own provider home</h1>{% endblock %}
        """,
    "templates/mail/welcome.subject.txt": "Welcome to the host portal",
    "static/host.css": "body { color: #123456; }\n",
}


def write_host_package(root):
    package = root / "hostapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(HOST_INIT)
    for name, text in HOST_FILES.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return package


@pytest.fixture
def host_package(tmp_path, monkeypatch):
    """The ``hostapp`` module, imported from a temporary folder."""
    root = tmp_path / "host-src"
    write_host_package(root)
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop("hostapp", None)
    module = importlib.import_module("hostapp")
    assert module.__file__.startswith(str(root))
    yield module
    sys.modules.pop("hostapp", None)


@pytest.fixture
def fresh_database(settings):
    """The test database with no tables at all (dropped again afterwards)."""
    drop_all_tables(settings["DATABASE_URL"])
    yield settings
    drop_all_tables(settings["DATABASE_URL"])


@pytest.fixture
def make_host(host_package, fresh_database):
    """Build host apps on the fresh database: ``make_host(prefix="/idp", migrate=True, options={...},
    **settings)``; the issuer is ``ISSUER`` (default the test one) followed by ``prefix``, ``options``
    go to ``IdentityProvider``."""
    from visma_idp import api

    apps = []

    def make(prefix: str = "", migrate: bool = True, options: dict | None = None, **overrides):
        issuer = overrides.pop("ISSUER", fresh_database["ISSUER"]) + prefix
        settings = {**fresh_database, "ISSUER": issuer, **overrides}
        app = host_package.create_app(settings, **(options or {}))
        app.config["TESTING"] = True
        apps.append(app)
        if migrate:
            api.upgrade_database(app)
        return app

    yield make
    for app in apps:
        close_database(app)


def close_database(app) -> None:
    """Close the app's connections now. Held until here: an app the test
    dropped could be collected first, its pool with it, its connections unclosed."""
    from visma_idp.storage import db

    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@dataclass
class Host:
    app: object
    prefix: str

    @property
    def idp(self):
        return self.app.extensions["visma_idp"]  # type: ignore[attr-defined]

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    def client(self):
        return self.app.test_client()  # type: ignore[attr-defined]


@pytest.fixture(params=["", "/idp"], ids=["at-root", "under-prefix"])
def host(request, make_host):
    """The host app, migrated, with the provider at its root or under ``/idp``."""
    return Host(make_host(prefix=request.param), request.param)


class PrefixFlow(Flow):
    """tests.helpers.Flow for a provider whose paths start with ``prefix``."""

    prefix: str = ""

    def start(self, method: str = "GET", **extra):
        from urllib.parse import urlencode

        params = self.auth_params(**extra)
        if method == "POST":
            return self.client.post(self.prefix + "/authorize", data=params)
        return self.client.get(self.prefix + "/authorize?" + urlencode(params))

    def consent(self, resp, decision: str = "allow"):
        import html as html_lib
        import re

        from tests.helpers import csrf, path_of

        html = resp.get_data(as_text=True)
        action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
        assert urlsplit(action).path == self.prefix + "/authorize/continue", action
        tx = re.search(r'name="tx" value="([^"]+)"', html).group(1)
        return self.client.post(path_of(html_lib.unescape(action)),
                                data={"tx": tx, "decision": decision, "csrf_token": csrf(html)})

    def token(self, code: str, verifier: str | None = "__last__", **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier == "__last__":
            verifier = self.last["verifier"]
        if verifier:
            data["code_verifier"] = verifier
        data.update(extra)
        return self.client.post(self.prefix + "/token", data=data, headers=self.basic())


def flow_for(host: Host, *, client_id: str = "expense", secret: str | None = None,
             redirect_uri: str = "https://rp.example.com/callback") -> PrefixFlow:
    flow = PrefixFlow(host.app, host.client(), client_id=client_id, client_secret=secret, redirect_uri=redirect_uri)
    flow.prefix = host.prefix
    return flow
