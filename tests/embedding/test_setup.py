"""Setting up a host app as docs/embedding.md says (the guide's own code runs
in test_docs_example.py): migrate with the ``visma-idp`` script and the same
settings, ``init_app`` later, the URL prefix and where it must agree with the
issuer, a host mounted below a path of its own, and the cookies under a
prefix."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from tests.embedding.conftest import Host, close_database, flow_for
from visma_idp import ConfigError, IdentityProvider, api
from visma_idp.migrate import current_revision, head_revision


def test_the_visma_idp_script_migrates_the_hosts_database(make_host, fresh_database):
    from visma_idp.cli import main

    env = {f"VISMA_IDP_{key}": str(value) for key, value in fresh_database.items()}
    env["VISMA_IDP_ISSUER"] += "/idp"
    first = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert "database at migration" in first.stdout and "created 4 signing keys" in first.stdout
    again = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert again.exit_code == 0 and "created" not in again.stdout

    app = make_host(prefix="/idp", migrate=False)
    assert current_revision(app) == head_revision()
    app.extensions["visma_idp"].check_database()  # does not raise
    assert len(app.test_client().get("/idp/jwks").get_json()["keys"]) == 4


def test_init_app_later(host_package, fresh_database):
    app = Flask("another_host")
    app.config.update({"VISMA_IDP_" + k: v for k, v in fresh_database.items()})
    idp = IdentityProvider()
    idp.init_app(app)
    api.upgrade_database(app)
    assert app.extensions["visma_idp"] is idp
    assert app.test_client().get("/login").status_code == 200
    close_database(app)


@pytest.mark.parametrize("issuer, prefix, problem", [
    ("http://127.0.0.1:5000/idp", "/other", "must end with the url_prefix '/other'"),
    ("http://127.0.0.1:5000", "/idp", "must end with the url_prefix '/idp'"),
    ("http://127.0.0.1:5000/myidp", "/idp", "must end with the url_prefix '/idp'"),
    ("http://127.0.0.1:5000/idp", "idp", "must end with the url_prefix 'idp'"),
])
def test_the_prefix_must_be_the_end_of_the_issuers_path(host_package, fresh_database, issuer, prefix, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        host_package.create_app({**fresh_database, "ISSUER": issuer}, url_prefix=prefix)
    assert caught.value.setting == "ISSUER"


def test_a_host_mounted_below_a_path_of_its_own(make_host):
    """The host app is mounted at /portal (SCRIPT_NAME) and the provider at
    /idp inside it: issuer https://.../portal/idp, ``url_prefix="/idp"``."""
    app = make_host(prefix="/portal/idp", options={"url_prefix": "/idp"})
    idp = app.extensions["visma_idp"]
    assert (idp.script_root, idp.url_prefix) == ("/portal", "/idp")
    site = DispatcherMiddleware(Flask("front"), {"/portal": app})
    created = api.create_client(app, "expense", redirect_uris=["https://rp.example.com/callback"])
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="correct horse battery")

    flow = flow_for(Host(app, "/portal/idp"), secret=created.secret)
    flow.client = Client(site, use_cookies=True)
    meta = flow.client.get("/portal/idp/.well-known/openid-configuration").get_json()
    assert meta["token_endpoint"] == idp.issuer + "/token"
    assert urlsplit(flow.start().headers["Location"]).path == "/portal/idp/login"
    tokens = flow.tokens()
    assert tokens["id_token"]
    assert flow.client.get("/portal/").status_code == 200  # the host's own front page, mounted too


def test_cookies_under_a_prefix_stay_on_the_whole_host(make_host):
    """`__Host-` cookies must have Path=/ (browsers refuse them otherwise);
    a prefix changes none of our cookies' paths."""
    app = make_host(prefix="/idp", ISSUER="https://login.example.com")
    app.config["PREFERRED_URL_SCHEME"] = "https"
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="correct horse battery")
    created = api.create_client(app, "expense", redirect_uris=["https://rp.example.com/callback"])
    flow = flow_for(Host(app, "/idp"), secret=created.secret)
    set_cookies: list[str] = []
    inner = app.wsgi_app

    def keep_cookies(environ, start_response):  # what leaves the app, after every hook of ours
        def start(status, headers, exc_info=None):
            set_cookies.extend(value for name, value in headers if name.lower() == "set-cookie")
            return start_response(status, headers, exc_info)
        return inner(environ, start)

    app.wsgi_app = keep_cookies

    flow.tokens()
    names = {c.split("=", 1)[0] for c in set_cookies}
    assert {"__Host-visma_idp_sid", "__Host-visma_idp_tx"} <= names, names
    for cookie in set_cookies:
        attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
        assert "path=/" in attrs and "secure" in attrs, cookie
        assert not any(a.startswith("domain=") for a in attrs), cookie


class RecordingProvider(IdentityProvider):
    """Notes which blueprints, CSRF exemptions and request hooks each setup step adds."""

    def setup_steps(self, app):
        self.added: dict[str, tuple[set[str], set[str], list[str]]] = {}
        csrf_exempt = lambda: ({*app.extensions["csrf"]._exempt_views,  # noqa: E731
                                *(bp.name for bp in app.extensions["csrf"]._exempt_blueprints)}
                               if "csrf" in app.extensions else set())
        hooks = lambda: [f.__qualname__ for f in app.after_request_funcs.get(None, [])]  # noqa: E731

        def recorded(name, step):
            def run():
                blueprints, exempt, after = set(app.blueprints), csrf_exempt(), hooks()
                step()
                self.added[name] = (set(app.blueprints) - blueprints, csrf_exempt() - exempt, hooks()[len(after):])
            return run

        return tuple((name, recorded(name, step)) for name, step in super().setup_steps(app))


def test_each_package_sets_up_its_own_parts(fresh_database):
    app = Flask("steps_host")
    app.config.update({"VISMA_IDP_" + k: v for k, v in fresh_database.items()})
    idp = RecordingProvider(app, MAIL_FLUSH_AFTER_REQUEST=True)
    blueprints = {name: added[0] for name, added in idp.added.items() if added[0]}
    assert blueprints == {
        "templates and static files": {"visma_idp"},
        "oidc": {"oidc"},
        "login": {"login", "second_step"},  # the sign-in registers both of its blueprints
        "account": {"activation", "account", "password", "password_api"},  # recovery.py, password_check.py
        "factors": {"factors", "totp", "sms", "webauthn", "recovery"},
        # not the second step's any more; the pages, the system console, the API and its document
        "admin": {"admin", "admin_console", "admin_api", "admin_agreements_api", "admin_system_api", "admin_openapi",
                  "agreement_codes"},
        "agreements": {"agreements", "agreement_console"},  # the invitation link's pages, the admins' members page
        "federation": {"federation"},  # the upstream callback, our JWKS for upstreams, linking on My details
        "provisioning": {"scim", "provisioning_console"},  # the SCIM endpoints, the admins' conflicts page
        "observability": {"observability"},  # /metrics
        "health": {"health"},
        "mail": {"dev_outbox"},
    }
    # the admin API takes bearer tokens only: its blueprints, whole
    assert idp.added["admin"][1] == {"admin_api", "admin_agreements_api", "admin_system_api"}
    assert idp.added["provisioning"][1] == {"scim"}  # SCIM takes bearer tokens only
    assert {name for name, added in idp.added.items() if added[1]} == {"oidc", "admin", "provisioning"}
    # the response hooks of the whole app, in the order they were added (Flask runs them backwards)
    assert [hook for added in idp.added.values() for hook in added[2]] == [
        "install_security.<locals>._headers", "save_if_changed", "install_flush.<locals>._flush_mail"]
    assert list(idp.added) == [name for name, _step in idp.setup_steps(app)]
    close_database(app)
