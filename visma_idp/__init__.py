"""visma_idp: an OpenID Connect provider as a Flask extension.

    from visma_idp import IdentityProvider
    IdentityProvider(app)            # or idp = IdentityProvider(); idp.init_app(app)

or a whole app: ``create_app()``. State lives in ``app.extensions["visma_idp"]``;
users, clients, keys and migrations from Python: ``visma_idp.api``
(docs/embedding.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from .clock import Clock
from .config import is_loopback_issuer, load_settings
from .crypto import Secrets
from .errors import ConfigError, DatabaseNotReady

__version__ = "0.1.0"
__all__ = ["ConfigError", "DatabaseNotReady", "IdentityProvider", "__version__", "api", "create_app"]


class IdentityProvider:
    """The Flask extension. Builds every part from the settings, once.

    Args:
        app: the Flask app (or call :meth:`init_app` later).
        url_prefix: where our routes go in the app's URL map. Default: the
            issuer's path (issuer ``https://example.com/idp``: ``/idp/login``,
            ``/idp/token``, ... beside the host's own routes). ``""``: at the
            root of the app, with the issuer's path as the point where the
            whole WSGI app is mounted (``create_app`` does this). Whatever
            the issuer's path has before the prefix is that mount point.
        **overrides: settings that win over ``app.config["VISMA_IDP_*"]``.
    """

    def __init__(self, app: Flask | None = None, *, url_prefix: str | None = None, **overrides: Any) -> None:
        self.app: Flask | None = None
        if app is not None:
            self.init_app(app, url_prefix=url_prefix, **overrides)

    # -- setup steps ---------------------------------------------------------
    def init_app(self, app: Flask, *, url_prefix: str | None = None, **overrides: Any) -> None:
        """Set the provider up on ``app``; see the class for the arguments.

        Raises:
            ConfigError: a wrong setting, or a ``url_prefix`` the issuer's path does not end with.
        """
        from_app = {k[len("VISMA_IDP_"):]: v for k, v in app.config.items() if k.startswith("VISMA_IDP_")}
        self.settings = load_settings({**from_app, **overrides})
        self.app = app
        self.issuer = self.settings["ISSUER"]
        self.clock = Clock()
        self.secrets = Secrets(self.settings["SECRET_KEY"])
        self._setup_flask_config(app)
        self._setup_url_prefix(url_prefix)
        for _name, step in self.setup_steps(app):
            step()
        app.extensions["visma_idp"] = self

    def setup_steps(self, app: Flask) -> tuple[tuple[str, Callable[[], None]], ...]:
        """The parts of the provider, set up on ``app`` in this order by :meth:`init_app`.

        Each package registers its own blueprints, CSRF exemptions and hooks
        in its ``init_app(app, idp)``. The order matters where parts meet:
        the database before anything that reads it; security's hooks first
        (its ``after_request`` runs last and writes the headers and cookies);
        blueprints in the order of their routes; the mail flush after every
        other ``after_request`` hook.
        """
        from . import (
            account,
            admin,
            agreements,
            assets,
            factors,
            federation,
            health,
            login,
            notify,
            observability,
            oidc,
            provisioning,
            proxy,
        )

        return (
            ("database", partial(self._setup_database, app)),
            ("security", partial(self._setup_security, app)),
            ("protocol", self._setup_protocol),
            ("password hashing and throttle", partial(self._setup_login, app)),
            ("languages", partial(self._setup_i18n, app)),
            ("templates and static files", partial(assets.init_app, app, self)),
            ("oidc", partial(oidc.init_app, app, self)),  # the protocol, and its half of the hand-over
            ("login", partial(login.init_app, app, self)),  # the sign-in, and its half
            ("account", partial(account.init_app, app, self)),
            ("factors", partial(factors.init_app, app, self)),
            ("admin", partial(admin.init_app, app, self)),
            ("agreements", partial(agreements.init_app, app, self)),  # the invitation link's pages
            ("federation", partial(federation.init_app, app, self)),  # upstream providers, national eID
            ("provisioning", partial(provisioning.init_app, app, self)),  # SCIM for payroll systems
            ("trusted proxies", partial(proxy.init_app, app, self.settings)),
            # request ids, metrics, access log: its middleware goes outside the proxies' (it sees the TCP peer)
            ("observability", partial(observability.init_app, app, self)),
            ("health", partial(health.init_app, app)),
            ("mail", partial(notify.init_app, app, self)),
            ("logging", self._setup_logging),
        )

    def _setup_url_prefix(self, url_prefix: str | None) -> None:
        prefix = self.issuer_path if url_prefix is None else url_prefix.rstrip("/")
        if prefix and (not prefix.startswith("/") or not self.issuer_path.endswith(prefix)):
            raise ConfigError("ISSUER", f"its path {self.issuer_path or '/'!r} must end with the url_prefix {prefix!r}")
        # our routes in the URL map; the rest of the issuer's path is where the WSGI app is mounted
        self.url_prefix = prefix
        self.script_root = self.issuer_path[: len(self.issuer_path) - len(prefix)]

    def _setup_flask_config(self, app: Flask) -> None:
        from .browser import cookies

        self.sid_cookie = cookies.name(cookies.SSO, secure=not is_loopback_issuer(self.issuer))
        https = not is_loopback_issuer(self.issuer)
        self.secure_cookies = https
        parts = urlsplit(self.issuer)
        self.issuer_origin = f"{parts.scheme}://{parts.netloc}"
        self.issuer_path = parts.path.rstrip("/")
        app.config.update(
            SECRET_KEY=self.settings["SECRET_KEY"],
            SESSION_COOKIE_NAME=cookies.name(cookies.STATE, secure=https),
            SESSION_COOKIE_SECURE=https,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_PATH="/",
            SESSION_COOKIE_DOMAIN=None,
            PERMANENT_SESSION_LIFETIME=3600,
            SQLALCHEMY_DATABASE_URI=self.settings["DATABASE_URL"],
            SQLALCHEMY_ENGINE_OPTIONS=self._engine_options(),
            WTF_CSRF_TIME_LIMIT=3600,
            WTF_CSRF_SSL_STRICT=False,  # we check Origin ourselves against the issuer
            MAX_CONTENT_LENGTH=256 * 1024,
            JSON_SORT_KEYS=False,
        )

    def _engine_options(self) -> dict[str, Any]:
        url = self.settings["DATABASE_URL"]
        if url.startswith("sqlite"):
            return {"connect_args": {"timeout": 30, "check_same_thread": False}}
        return {"pool_size": 10, "max_overflow": 10,  # liveness: storage/pool.py
                "connect_args": {"connect_timeout": self.settings["DATABASE_CONNECT_TIMEOUT"]}}

    def _setup_database(self, app: Flask) -> None:
        from . import storage

        storage.init_app(app, settings=self.settings, secrets=self.secrets)

    def _setup_security(self, app: Flask) -> None:
        from .browser.cookies import StateCookieInterface
        from .security import install_security

        app.session_interface = StateCookieInterface()
        self.csrf = CSRFProtect(app)
        install_security(app, self)

    def _setup_protocol(self) -> None:
        from .browser.interaction import Handoff
        from .oidc.clients import ClientCache
        from .oidc.keys import KeyStore
        from .oidc.revocations import IntrospectionCache, RevocationCounter
        from .oidc.revocations import install as install_revocation_counter
        from .oidc.server import IdpAuthorizationServer

        self.keys = KeyStore(self)
        self.clients = ClientCache(self)
        self.introspection_cache = IntrospectionCache(
            RevocationCounter(self.settings["REDIS_URL"]) if self.settings["REDIS_URL"] else None,
            self.settings["INTROSPECTION_CACHE_SECONDS"])
        install_revocation_counter()
        self.server = IdpAuthorizationServer(self)
        self.handoff = Handoff()  # oidc/ and login/ each register their half (their init_app)

    def _setup_login(self, app: Flask) -> None:
        from .login.throttle import Throttle
        from .password.hashing import Hasher

        s = self.settings
        self.hasher = Hasher(time_cost=s["ARGON2_TIME_COST"], memory_kib=s["ARGON2_MEMORY_KIB"],
                             parallelism=s["ARGON2_PARALLELISM"], concurrency=s["ARGON2_CONCURRENCY"])
        self.throttle = Throttle(s, self.clock, app=app)

    def _setup_i18n(self, app: Flask) -> None:
        from . import i18n

        i18n.init_app(app, self.settings["DEFAULT_LOCALE"])

    def _setup_logging(self) -> None:
        logging.getLogger("visma_idp").setLevel(self.settings["LOG_LEVEL"].upper())

    def register_blueprints(self, app: Flask, *blueprints: Blueprint) -> None:
        """Register our ``blueprints`` on ``app``, under the provider's URL prefix."""
        for blueprint in blueprints:
            app.register_blueprint(blueprint, url_prefix=self.url_prefix or None)

    def url(self, endpoint: str, **values: Any) -> str:
        """An absolute URL built from the configured issuer (never the Host header);
        values that are None or empty are left out (``url("login.email", tx=None)``)."""
        values = {k: v for k, v in values.items() if v is not None and v != ""}
        assert self.app is not None, "init_app() first"
        adapter = self.app.url_map.bind("issuer.invalid", script_name=self.script_root or "/")
        path = adapter.build(endpoint, values, force_external=False)
        return self.issuer_origin + path

    def check_database(self) -> None:
        """Raise DatabaseNotReady unless the schema is at the newest migration."""
        from .migrate import current_revision, head_revision

        assert self.app is not None, "init_app() first"
        with self.app.app_context():
            current, head = current_revision(self.app), head_revision()
        if current != head:
            raise DatabaseNotReady(
                f"the database is at migration {current or 'none'}, this release needs {head}: "
                "run `visma-idp db upgrade`"
            )


def create_app(overrides: dict[str, Any] | None = None, *, check_db: bool = False) -> Flask:
    """Build the standalone provider app.

    Args:
        overrides: settings that win over the environment (names without prefix).
        check_db: refuse to start on a database that is not migrated to head.
    """
    settings_preview = load_settings(overrides)
    # templates and static files come from our blueprint (assets.py), as in a host app
    app = Flask("visma_idp", instance_path=settings_preview["INSTANCE_PATH"], instance_relative_config=False,
                static_folder=None, template_folder=None)
    idp = IdentityProvider(app, url_prefix="", **(overrides or {}))
    if check_db:
        idp.check_database()
    if idp.settings["FAST_LANE"]:
        from . import observability
        from .oidc import fastlane

        observability.watch_fast_lane(app, fastlane.install(app, idp))
    return app


from . import api  # noqa: E402  (the public Python API; it needs the names above)
