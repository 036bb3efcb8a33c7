"""Settings: issuer rules, the secret key, the TOML settings file, and the
cookie names and flags that follow from the issuer."""

from __future__ import annotations

import stat

import pytest

from visma_idp import ConfigError, create_app
from visma_idp.config import load_settings

SECRET = "s" * 40


def load(environ=None, **overrides):
    """Settings from only the given environment (never the real one)."""
    base = {"SECRET_KEY": SECRET, "INSTANCE_PATH": overrides.pop("INSTANCE_PATH", "/nonexistent/instance")}
    return load_settings({**base, **overrides}, environ=environ or {})


def refused(setting, environ=None, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        load(environ, **overrides)
    assert info.value.setting == setting
    assert str(info.value).startswith(f"VISMA_IDP_{setting}: ")
    return info.value.message


# -- issuer --------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer, expected",
    [
        ("https://login.example.com", "https://login.example.com"),
        ("https://login.example.com/tenant/", "https://login.example.com/tenant"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://localhost:8080/", "http://localhost:8080"),
    ],
)
def test_issuer_accepted(issuer, expected):
    assert load(ISSUER=issuer)["ISSUER"] == expected


@pytest.mark.parametrize(
    "issuer",
    [
        "http://example.com",
        "http://login.example.com:5000",
        "http://10.0.0.1:5000",
        "ftp://login.example.com",
        "login.example.com",
        "https://login.example.com/?tenant=1",
        "https://login.example.com/#x",
    ],
)
def test_issuer_refused(issuer):
    refused("ISSUER", ISSUER=issuer)


def test_issuer_from_the_environment():
    assert load({"VISMA_IDP_ISSUER": "https://idp.example.no"})["ISSUER"] == "https://idp.example.no"
    assert "https" in refused("ISSUER", {"VISMA_IDP_ISSUER": "http://idp.example.no"})


# -- other values --------------------------------------------------------------


def test_values_are_parsed_and_checked():
    values = load({"VISMA_IDP_CODE_LIFETIME": "30", "VISMA_IDP_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert values["CODE_LIFETIME"] == 30
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    refused("CODE_LIFETIME", {"VISMA_IDP_CODE_LIFETIME": "soon"})
    refused("ARGON2_TIME_COST", {"VISMA_IDP_ARGON2_TIME_COST": "0"})
    refused("MODE", {"VISMA_IDP_MODE": "staging"})
    refused("DATABASE_URL", {"VISMA_IDP_DATABASE_URL": "mysql://db/idp"})
    refused("REDIS_URL", {"VISMA_IDP_REDIS_URL": "http://cache"})
    refused("NOPE", NOPE=1)


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    values = load(INSTANCE_PATH=str(tmp_path))
    assert values["DATABASE_URL"] == f"sqlite:///{tmp_path / 'visma_idp.db'}"


# -- secret key ----------------------------------------------------------------


def test_secret_key_required_in_production(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert info.value.setting == "SECRET_KEY"
    assert not (tmp_path / "secret_key").exists()
    refused("SECRET_KEY", SECRET_KEY="too-short")


def test_secret_key_generated_and_kept_in_demo(tmp_path):
    environ = {"VISMA_IDP_MODE": "demo", "VISMA_IDP_INSTANCE_PATH": str(tmp_path)}
    first = load_settings(environ=environ)["SECRET_KEY"]
    second = load_settings(environ=environ)["SECRET_KEY"]
    assert len(first) >= 32
    assert first == second
    path = tmp_path / "secret_key"
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = load_settings(environ={**environ, "VISMA_IDP_INSTANCE_PATH": str(tmp_path / "other")})
    assert other["SECRET_KEY"] != first


def test_given_secret_key_wins_in_demo(tmp_path):
    values = load_settings({"MODE": "demo", "SECRET_KEY": SECRET, "INSTANCE_PATH": str(tmp_path)}, environ={})
    assert values["SECRET_KEY"] == SECRET
    assert not (tmp_path / "secret_key").exists()


# -- settings file -------------------------------------------------------------


def test_toml_file_values(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text(f'issuer = "https://login.example.com"\nCODE_LIFETIME = 45\nsecret_key = "{SECRET}"\n')
    values = load_settings(environ={"VISMA_IDP_CONFIG": str(path)})
    assert values["ISSUER"] == "https://login.example.com"
    assert values["CODE_LIFETIME"] == 45
    assert values["SECRET_KEY"] == SECRET
    # the environment wins over the file, overrides win over both
    environ = {"VISMA_IDP_CONFIG": str(path), "VISMA_IDP_CODE_LIFETIME": "20"}
    assert load_settings(environ=environ)["CODE_LIFETIME"] == 20
    assert load_settings({"CODE_LIFETIME": 10}, environ=environ)["CODE_LIFETIME"] == 10


def test_toml_file_refuses_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text('issuer = "https://login.example.com"\nissuer_url = "https://x"\n')
    assert "issuer_url" in refused("CONFIG", {"VISMA_IDP_CONFIG": str(path)})
    path.write_text("issuer = \n")
    assert "not valid TOML" in refused("CONFIG", {"VISMA_IDP_CONFIG": str(path)})
    path.write_text('issuer = "http://login.example.com"\n')
    refused("ISSUER", {"VISMA_IDP_CONFIG": str(path)})
    assert "cannot read" in refused("CONFIG", {"VISMA_IDP_CONFIG": str(tmp_path / "missing.toml")})


# -- cookies -------------------------------------------------------------------


@pytest.fixture
def cookie_app(settings):
    """Build an app for an issuer (no database use); closed afterwards."""
    from visma_idp.storage import db

    apps = []

    def make(issuer):
        app = create_app({**settings, "ISSUER": issuer})
        apps.append(app)
        return app, app.extensions["visma_idp"]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_loopback_issuer_cookies_have_no_host_prefix(cookie_app):
    app, idp = cookie_app("http://127.0.0.1:5000")
    assert idp.sid_cookie == "visma_idp_sid"
    assert app.config["SESSION_COOKIE_NAME"] == "visma_idp_tx"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert idp.secure_cookies is False


def test_https_issuer_cookies_are_host_prefixed_and_secure(cookie_app):
    app, idp = cookie_app("https://login.example.com")
    assert idp.sid_cookie == "__Host-visma_idp_sid"
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-visma_idp_tx"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_PATH"] == "/" and app.config["SESSION_COOKIE_DOMAIN"] is None


@pytest.mark.parametrize(
    "issuer, name, secure",
    [
        ("http://127.0.0.1:5000", "visma_idp_sid", False),
        ("https://login.example.com", "__Host-visma_idp_sid", True),
    ],
)
def test_login_sets_the_session_cookie(request, settings, issuer, name, secure):
    settings["ISSUER"] = issuer
    flow = request.getfixturevalue("flow")
    if issuer.startswith("https"):
        flow.client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "login.example.com"})
    resp = flow.login(flow.start())  # the password step starts the SSO session
    headers = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, resp.headers.getlist("Set-Cookie")
    attrs = [a.strip().lower() for a in headers[0].split(";")]
    assert ("secure" in attrs) is secure
    assert "httponly" in attrs and "path=/" in attrs and "samesite=lax" in attrs
    assert not any(a.startswith("domain=") for a in attrs)
