"""Every setting of visma_idp, with its default and a one-line doc.

Settings come from (lowest to highest precedence): the defaults, the
optional TOML settings file named by ``VISMA_IDP_CONFIG``, the environment
(``VISMA_IDP_<NAME>``), and keyword overrides given to :func:`create_app`.
They are parsed and validated once, at start-up; a wrong value raises
:class:`~visma_idp.errors.ConfigError` naming the setting.

Where they are declared: each package lists its own in its ``settings.py``
(``oidc/``, ``login/``, ``password/``, ``factors/``, ``account/``,
``admin/``, ``federation/``, ``notify/``), as rows of :class:`Setting`
built with the parsers below and nothing else; this module holds the ones every part uses (:data:`CORE`) and
those of the top-level operations modules (:data:`OPERATIONS`), gathers them
all in the fixed order of :data:`GROUPS`, and keeps the checks across
settings in :func:`load_settings`. ``docs/configuration.md`` is generated
from :data:`GROUPS` (``python -m visma_idp.config``), one table per group.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .proxy import parse_forwarded_header, parse_trusted_proxies

PREFIX = "VISMA_IDP_"


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def number(minimum: float) -> Callable[[Any], float]:
    """A number of at least ``minimum``."""

    def parse(value: Any) -> float:
        parsed = float(value)
        if not parsed >= minimum:  # also refuses NaN
            raise ValueError(f"must be at least {minimum}")
        return parsed

    return parse


def integer(minimum: int) -> Callable[[Any], int]:
    """A whole number of at least ``minimum``."""

    def parse(value: Any) -> int:
        parsed = int(value)
        if parsed < minimum:
            raise ValueError(f"must be at least {minimum}")
        return parsed

    return parse


def text(value: Any) -> str:
    return str(value)


def optional_text(value: Any) -> str | None:
    stripped = str(value).strip() if value is not None else ""
    return stripped or None


def mode(value: Any) -> str:
    chosen = str(value).strip().lower()
    if chosen not in {"production", "demo"}:
        raise ValueError("must be 'production' or 'demo'")
    return chosen


def one_of(allowed: set[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        chosen = str(value).strip()
        if chosen not in allowed:
            raise ValueError(f"must be one of {', '.join(sorted(allowed))}")
        return chosen

    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str


# The settings every part uses: the issuer, the database, the secret key.
CORE: tuple[Setting, ...] = (
    Setting("MODE", "production", mode,
            "`production` or `demo`. Demo generates and keeps a secret key in the instance folder and seeds a demo user and client."),
    Setting("ISSUER", "http://127.0.0.1:5000", text,
            "The issuer URL; every link and redirect is built from it. Must be https, except http on 127.0.0.1 or localhost."),
    Setting("INSTANCE_PATH", "instance", text,
            "Folder for local state: the SQLite database, the demo secret key."),
    Setting("DATABASE_URL", None, optional_text,
            "SQLAlchemy URL. Default: SQLite at `<INSTANCE_PATH>/visma_idp.db`. PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("SECRET_KEY", None, optional_text,
            "Secret for cookies, client-secret digests and key encryption (at least 32 characters). Required in production."),
    Setting("DATABASE_PING_AFTER_IDLE", 1.0, number(0.0),
            "Seconds a pooled PostgreSQL connection may sit unused before it is checked with a "
            "round trip on its next use (a dead one is replaced, so a database restart costs no "
            "failed request). 0 = check on every use."),
    Setting("REDIS_URL", None, optional_text,
            "Optional Redis URL (`redis://127.0.0.1:6379/0`); login throttling is shared across nodes through it."),
    Setting("DATABASE_CONNECT_TIMEOUT", 5, integer(1),
            "Seconds to wait for a new PostgreSQL connection (libpq counts 1 as 2). A database that does not "
            "answer then fails requests and `/readyz` after this long instead of hanging them."),
    Setting("CONFIG", None, optional_text,
            "Optional path of a TOML settings file; its keys are the setting names without the prefix."),
    Setting("LOG_LEVEL", "INFO", text, "Python log level of the `visma_idp` loggers."),
    Setting("LOG_FORMAT", "text", one_of({"text", "json"}),
            "`text` (`<UTC time> <level> <logger> [<request id>] <message>`) or `json` (one object per line: "
            "`time`, `level`, `logger`, `message`, `request_id` and the record's extra fields). Both redact "
            "secret-looking values. `visma-idp serve` writes the lines to stderr."),
    Setting("ACCESS_LOG", False, boolean,
            "Write one line per request to the `visma_idp.access` logger (method, path with link tokens and "
            "query values redacted, status, time, request id). Off by default: a line costs about as much as "
            "a tenth of a token request; granian and gunicorn write none of their own."),
    Setting("METRICS", True, boolean,
            "Count and time requests and serve Prometheus metrics at `/metrics` (see docs/operations.md)."),
    Setting("METRICS_TOKEN", None, optional_text,
            "A bearer token (16+ characters) the scraper sends to `/metrics`. Not set: `/metrics` answers only "
            "requests straight from `METRICS_ALLOW`, never through a proxy."),
    Setting("METRICS_ALLOW", "127.0.0.1 ::1", text,
            "Addresses and networks that may scrape `/metrics` without a token (space-separated), when "
            "`METRICS_TOKEN` is not set."),
    Setting("DEFAULT_LOCALE", "en", text, "Language when neither the user, `ui_locales` nor the browser chooses one."),
)

# Running it: reverse proxies (proxy.py) and keeping the tables small (maintenance.py).
OPERATIONS: tuple[Setting, ...] = (
    Setting("TRUSTED_PROXIES", None, parse_trusted_proxies,
            "The reverse proxies in front of the server, whose forwarding header tells the client's address "
            "(for the audit log, the throttles and quotas, the sessions): their addresses and networks "
            "(`10.0.0.5 10.1.0.0/16`, or a TOML list), or the number of proxies every request passes "
            "(`2`; then the server must be reachable only through them). Default: none, the header is ignored "
            "and the client is the TCP peer. See docs/operations.md."),
    Setting("FORWARDED_HEADER", "X-Forwarded-For", parse_forwarded_header,
            "The header the trusted proxies write: `X-Forwarded-For` or `Forwarded` (RFC 7239). Only this one "
            "is read."),
    Setting("RETENTION_DAYS", 30, integer(1),
            "Days `visma-idp purge` keeps a row after it stopped being usable: expired or used codes, links and "
            "tokens, ended sessions, sent mail and text messages, given-up enrolments (see docs/operations.md)."),
    Setting("AUDIT_RETENTION_DAYS", 0, integer(0),
            "Days `visma-idp purge` keeps audit events (0 = forever)."),
)

# Each package declares its own settings in its settings.py; they import the
# parsers above, so they are gathered only here, below those.
from .account import settings as _account  # noqa: E402
from .admin import settings as _admin  # noqa: E402
from .factors import settings as _factors  # noqa: E402
from .federation import settings as _federation  # noqa: E402
from .login import settings as _login  # noqa: E402
from .notify import settings as _notify  # noqa: E402
from .oidc import settings as _oidc  # noqa: E402
from .password import settings as _password  # noqa: E402

# Every setting, in this order (the order of docs/configuration.md): a heading and its rows.
GROUPS: tuple[tuple[str, tuple[Setting, ...]], ...] = (
    ("Core", CORE),
    ("Protocol (`oidc/`)", _oidc.SETTINGS),
    ("Sign-in (`login/`)", _login.SETTINGS),
    ("Passwords (`password/`)", _password.SETTINGS),
    ("Second factors (`factors/`)", _factors.SETTINGS),
    ("Account (`account/`)", _account.SETTINGS),
    ("Administration (`admin/`)", _admin.SETTINGS),
    ("Upstream providers and national eID (`federation/`)", _federation.SETTINGS),
    ("Mail and text messages (`notify/`)", _notify.SETTINGS),
    ("Operations (`proxy.py`, `maintenance.py`)", OPERATIONS),
)
SETTINGS: tuple[Setting, ...] = tuple(s for _heading, rows in GROUPS for s in rows)
BY_NAME = {s.name: s for s in SETTINGS}
assert len(BY_NAME) == len(SETTINGS), "a setting is declared twice"

# The languages of our pages and mail (``translations/`` holds all but English),
# in the order the language switcher lists them; discovery's ui_locales_supported.
LOCALES = ("en", "nb", "nn", "da", "sv")


def is_loopback_issuer(issuer: str) -> bool:
    parts = urlsplit(issuer)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}


def _validate_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError("ISSUER", "must be an absolute https URL")
    if parts.query or parts.fragment:
        raise ConfigError("ISSUER", "must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback_issuer(issuer):
        raise ConfigError("ISSUER", "must use https (plain http only on 127.0.0.1 or localhost)")
    return issuer.rstrip("/")


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("CONFIG", f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("CONFIG", f"{path} is not valid TOML: {exc}") from exc
    unknown = [key for key in data if key.upper() not in BY_NAME]
    if unknown:
        raise ConfigError("CONFIG", f"unknown setting(s) in {path}: {', '.join(unknown)}")
    return {key.upper(): value for key, value in data.items()}


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Gather, parse and validate every setting.

    Args:
        overrides: values that win over the environment (used by tests and embedders).
        environ: the environment to read (default ``os.environ``).

    Returns:
        A dict of setting name to parsed value.

    Raises:
        ConfigError: naming the first setting that is wrong or missing.
    """
    environ = os.environ if environ is None else environ
    overrides = {k.upper(): v for k, v in (overrides or {}).items()}
    unknown = [k for k in overrides if k not in BY_NAME]
    if unknown:
        raise ConfigError(unknown[0], "is not a visma_idp setting")
    raw: dict[str, Any] = {}
    config_path = overrides.get("CONFIG") or environ.get(PREFIX + "CONFIG")
    if config_path:
        raw.update(_read_file(config_path))
    for setting in SETTINGS:
        if PREFIX + setting.name in environ:
            raw[setting.name] = environ[PREFIX + setting.name]
    raw.update(overrides)

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = raw.get(setting.name, setting.default)
        if value is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(setting.name, str(exc)) from exc

    values["ISSUER"] = _validate_issuer(values["ISSUER"])
    if values["SECOND_STEP_MAX_LOCK_SECONDS"] < values["THROTTLE_LOCK_SECONDS"]:
        raise ConfigError("SECOND_STEP_MAX_LOCK_SECONDS", "must be at least THROTTLE_LOCK_SECONDS")
    if values["SECOND_STEP_LOCK_MEMORY_SECONDS"] < values["SECOND_STEP_MAX_LOCK_SECONDS"]:
        raise ConfigError("SECOND_STEP_LOCK_MEMORY_SECONDS", "must be at least SECOND_STEP_MAX_LOCK_SECONDS")
    if values["THROTTLE_MAX_FAILURES"] <= values["THROTTLE_FREE_ATTEMPTS"]:
        raise ConfigError("THROTTLE_MAX_FAILURES", "must be greater than THROTTLE_FREE_ATTEMPTS")
    instance = Path(values["INSTANCE_PATH"]).resolve()
    values["INSTANCE_PATH"] = str(instance)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance / 'visma_idp.db'}"
    elif values["DATABASE_URL"].split(":", 1)[0].split("+")[0] not in {"sqlite", "postgresql"}:
        raise ConfigError("DATABASE_URL", "must be a sqlite:// or postgresql+psycopg:// URL")
    if values["PASSWORD_CHARACTER_CLASSES"] > 4:
        raise ConfigError("PASSWORD_CHARACTER_CLASSES", "must be between 0 and 4")
    if values["PASSWORD_MIN_GUESSES_LOG10"] > 20:
        raise ConfigError("PASSWORD_MIN_GUESSES_LOG10", "must be between 0 and 20")
    if values["SMTP_URL"] and not values["SMTP_URL"].startswith(("smtp://", "smtps://")):
        raise ConfigError("SMTP_URL", "must start with smtp:// or smtps://")
    if ":" not in values["CAPTCHA_VERIFIER"]:
        raise ConfigError("CAPTCHA_VERIFIER", "must be module:Class")
    if values["SMS_BACKEND"] not in {"outbox", "http"}:
        raise ConfigError("SMS_BACKEND", "must be outbox or http")
    if values["SMS_BACKEND"] == "http" and not (values["SMS_HTTP_URL"] or "").startswith(("https://", "http://127.0.0.1")):
        raise ConfigError("SMS_HTTP_URL", "is required for the http SMS backend and must be https")
    if values["REDIS_URL"] and not values["REDIS_URL"].startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL", "must start with redis://, rediss:// or unix://")

    secret = values["SECRET_KEY"]
    if secret is None:
        if values["MODE"] != "demo":
            raise ConfigError("SECRET_KEY", "is required in production mode (set VISMA_IDP_SECRET_KEY)")
        values["SECRET_KEY"] = _demo_secret(instance)
    elif len(secret) < 32:
        raise ConfigError("SECRET_KEY", "must be at least 32 characters")
    return values


def _demo_secret(instance: Path) -> str:
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret


def markdown_table() -> str:
    """The settings tables for docs/configuration.md: one per group of :data:`GROUPS`."""
    parts = []
    for heading, rows in GROUPS:
        lines = [f"### {heading}", "", "| Setting | Default | What it does |", "|---|---|---|"]
        for s in rows:
            default = "—" if s.default is None else f"`{s.default}`"
            lines.append(f"| `{PREFIX}{s.name}` | {default} | {s.doc} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
