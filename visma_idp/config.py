"""Every setting of visma_idp, with its default and a one-line doc.

Settings come from (lowest to highest precedence): the defaults below, the
optional TOML settings file named by ``VISMA_IDP_CONFIG``, the environment
(``VISMA_IDP_<NAME>``), and keyword overrides given to :func:`create_app`.
They are parsed and validated once, at start-up; a wrong value raises
:class:`~visma_idp.errors.ConfigError` naming the setting. ``docs/configuration.md``
is generated from this table (``python -m visma_idp.config``).
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


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _float(minimum: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = float(value)
        if not number >= minimum:  # also refuses NaN
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = int(value)
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def _str(value: Any) -> str:
    return str(value)


def _optional_str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in {"production", "demo"}:
        raise ValueError("must be 'production' or 'demo'")
    return text


def _algs(allowed: set[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(sorted(allowed))}")
        return text

    return parse


SIGNING_ALGS = {"RS256", "PS256", "ES256", "EdDSA"}


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("MODE", "production", _mode,
            "`production` or `demo`. Demo generates and keeps a secret key in the instance folder and seeds a demo user and client."),
    Setting("ISSUER", "http://127.0.0.1:5000", _str,
            "The issuer URL; every link and redirect is built from it. Must be https, except http on 127.0.0.1 or localhost."),
    Setting("INSTANCE_PATH", "instance", _str,
            "Folder for local state: the SQLite database, the demo secret key."),
    Setting("DATABASE_URL", None, _optional_str,
            "SQLAlchemy URL. Default: SQLite at `<INSTANCE_PATH>/visma_idp.db`. PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("SECRET_KEY", None, _optional_str,
            "Secret for cookies, client-secret digests and key encryption (at least 32 characters). Required in production."),
    Setting("DATABASE_PING_AFTER_IDLE", 1.0, _float(0.0),
            "Seconds a pooled PostgreSQL connection may sit unused before it is checked with a "
            "round trip on its next use (a dead one is replaced, so a database restart costs no "
            "failed request). 0 = check on every use."),
    Setting("REDIS_URL", None, _optional_str,
            "Optional Redis URL (`redis://127.0.0.1:6379/0`); login throttling is shared across nodes through it."),
    Setting("TRUSTED_PROXIES", None, parse_trusted_proxies,
            "The reverse proxies in front of the server, whose forwarding header tells the client's address "
            "(for the audit log, the throttles and quotas, the sessions): their addresses and networks "
            "(`10.0.0.5 10.1.0.0/16`, or a TOML list), or the number of proxies every request passes "
            "(`2`; then the server must be reachable only through them). Default: none, the header is ignored "
            "and the client is the TCP peer. See docs/operations.md."),
    Setting("FORWARDED_HEADER", "X-Forwarded-For", parse_forwarded_header,
            "The header the trusted proxies write: `X-Forwarded-For` or `Forwarded` (RFC 7239). Only this one "
            "is read."),
    Setting("DATABASE_CONNECT_TIMEOUT", 5, _int(1),
            "Seconds to wait for a new PostgreSQL connection (libpq counts 1 as 2). A database that does not "
            "answer then fails requests and `/readyz` after this long instead of hanging them."),
    Setting("SMTP_URL", None, _optional_str,
            "Optional SMTP URL for outgoing mail: `smtp://user:pass@host:587` (STARTTLS when the server offers it; "
            "`?starttls=require` refuses to send without it, `?starttls=never` never tries), `smtps://host:465` "
            "(TLS from the start); `?ca_file=/path.pem` trusts a private CA. A password is never sent without TLS "
            "unless the URL says `starttls=never`. Without it mail stays in the outbox table, readable at "
            "`/dev/outbox` in demo mode and with `visma-idp mail list` / `mail show`. See docs/mail.md."),
    Setting("MAIL_FROM", None, _optional_str,
            "The From address of every message. Default: `no-reply@<issuer host>`."),
    Setting("SMTP_TIMEOUT", 10.0, _float(0.5), "Seconds to wait for the SMTP server before a try counts as failed."),
    Setting("MAIL_MAX_ATTEMPTS", 10, _int(1),
            "Tries per message before it is marked failed (it stays in the outbox; `visma-idp mail retry` sends it again)."),
    Setting("MAIL_RETRY_SECONDS", 30, _int(1),
            "Wait after the first failed try; it doubles with every further failure, up to one hour."),
    Setting("MAIL_FLUSH_AFTER_REQUEST", False, _bool,
            "Send due mail right after each request that queued some, or every 30 s at most (the dev server and "
            "demo mode turn it on; production runs `visma-idp mail worker`)."),
    Setting("NOTIFY_BATCH_SECONDS", 900, _int(0),
            "Profile changes within this many seconds of the first are told to the user in one email."),
    Setting("ACTIVATION_LIFETIME", 7 * 24 * 3600, _int(60), "Seconds an activation link stays valid (7 days)."),
    Setting("RESET_LIFETIME", 1800, _int(60),
            "Seconds a password-reset or one-time login link stays valid (30 minutes)."),
    Setting("EMAIL_CHANGE_LIFETIME", 24 * 3600, _int(60),
            "Seconds the link that confirms a new email address stays valid."),
    Setting("EMAIL_CHANGE_CANCEL_LIFETIME", 14 * 24 * 3600, _int(3600),
            "Seconds the \"this wasn't me\" link sent to the old address stays valid (14 days: an old mailbox "
            "may be read late)."),
    Setting("EMAIL_CHANGES_PER_HOUR", 5, _int(1), "Requests to change the email address one user may make in an hour."),
    Setting("FORGOT_PER_EMAIL", 3, _int(1),
            "Forgot-password emails one address gets in an hour; more requests get the same answer and no email."),
    Setting("FORGOT_PER_IP", 30, _int(1),
            "Forgot-password requests one client IP may make in an hour; more get the same answer and no email."),
    Setting("ACTIVATION_RESEND_PER_EMAIL", 3, _int(1), "New activation links one address may ask for in an hour."),
    Setting("ACTIVATION_RESEND_PER_IP", 20, _int(1), "Requests for a new activation link one client IP may make in an hour."),
    Setting("PASSWORD_MIN_LENGTH", 12, _int(8),
            "Fewest characters (Unicode code points) in a password. 8 is allowed when a second factor is enforced."),
    Setting("PASSWORD_CHARACTER_CLASSES", 0, _int(0),
            "Optional: how many of lower case, upper case, digits and symbols a password must mix (0 = no rule, up to 4)."),
    Setting("PASSWORD_FORBID_SPACES", False, _bool, "Optional: refuse passwords with spaces."),
    Setting("PASSWORD_HISTORY", 0, _int(0), "Optional: a new password must differ from the last N (0 = no rule)."),
    Setting("PASSWORD_MIN_GUESSES_LOG10", 10, _int(0),
            "Refuse a password that zxcvbn (with Nordic words and the person's own details) estimates takes fewer "
            "than 10^N guesses (0-20; 10 = zxcvbn's top score, 4; 0 = no rule). See docs/password-policy.md."),
    Setting("CAPTCHA_VERIFIER", "visma_idp.password.challenge:ProofOfWork", _str,
            "`module:Class` of the human check on the forgot-password form. The default is a self-hosted "
            "proof-of-work; a deployment may plug in hCaptcha or Turnstile (see docs/security.md)."),
    Setting("POW_DIFFICULTY", 16, _int(1),
            "Leading zero bits the proof-of-work must find (each bit doubles the browser's work; 16 ≈ 65,000 hashes)."),
    Setting("CONFIG", None, _optional_str,
            "Optional path of a TOML settings file; its keys are the setting names without the prefix."),
    Setting("ARGON2_TIME_COST", 2, _int(1), "Argon2id iterations (OWASP: 2)."),
    Setting("ARGON2_MEMORY_KIB", 19456, _int(1024), "Argon2id memory in KiB (OWASP: 19 MiB = 19456)."),
    Setting("ARGON2_PARALLELISM", 1, _int(1), "Argon2id lanes (OWASP: 1)."),
    Setting("ARGON2_CONCURRENCY", 0, _int(0),
            "Password hashes one worker process computes at once; further logins wait their turn. "
            "0 = the number of CPUs the process may run on. More at once only thrash the CPU caches "
            "(19 MiB each) and memory."),
    Setting("CODE_LIFETIME", 60, _int(1), "Seconds an authorization code stays redeemable."),
    Setting("ACCESS_TOKEN_LIFETIME", 600, _int(1), "Seconds an access token (RFC 9068 JWT) is valid."),
    Setting("ID_TOKEN_LIFETIME", 3600, _int(1), "Seconds an ID token is valid."),
    Setting("REFRESH_TOKEN_LIFETIME", 30 * 24 * 3600, _int(60),
            "Absolute lifetime in seconds of a refresh-token family, counted from the login that started it."),
    Setting("SESSION_LIFETIME", 12 * 3600, _int(60), "Seconds a single sign-on session lasts after login."),
    Setting("ID_TOKEN_SIGNING_ALG", "RS256", _algs(SIGNING_ALGS),
            "Default ID-token algorithm; a client may choose another with `id_token_signed_response_alg`."),
    Setting("ID_TOKEN_SCOPE_CLAIMS", True, _bool,
            "Put the user claims of the granted scopes (profile, email, phone, address) in the ID token too, "
            "not only in UserInfo (as Keycloak does; many client libraries read the profile from the ID token). "
            "A client may override it (`visma-idp clients create --id-token-claims/--no-id-token-claims`)."),
    Setting("CLIENT_ASSERTION_MAX_LIFETIME", 300, _int(10),
            "Longest a private_key_jwt client assertion may live, in seconds (`exp` - `iat`, or `exp` - now "
            "without `iat`); 300 is Auth0's documented maximum."),
    Setting("ACCESS_TOKEN_SIGNING_ALG", "ES256", _algs(SIGNING_ALGS), "Algorithm of JWT access tokens."),
    Setting("KEY_CACHE_SECONDS", 30, _int(1),
            "How often (seconds) a process looks for rotated signing keys; parsed keys are cached between looks."),
    Setting("CLIENT_CACHE_SECONDS", 10, _int(0),
            "How long a process keeps a client's registration in memory; changes reach other processes within it (0: off)."),
    Setting("THROTTLE_FREE_ATTEMPTS", 3, _int(0), "Failed logins per account before a growing delay applies."),
    Setting("THROTTLE_MAX_FAILURES", 10, _int(1), "Failed logins per account before a temporary lock."),
    Setting("THROTTLE_LOCK_SECONDS", 900, _int(1), "Length of the temporary account lock, in seconds."),
    Setting("THROTTLE_IP_MAX_FAILURES", 50, _int(1), "Failed logins from one client IP before that IP is locked."),
    Setting("THROTTLE_WINDOW_SECONDS", 900, _int(1), "How long failed attempts are remembered."),
    Setting("SECOND_STEP_MAX_LOCK_SECONDS", 86400, _int(1),
            "Longest lock of the second step: each lock of one account's second step within "
            "SECOND_STEP_LOCK_MEMORY_SECONDS of the last lasts twice as long as the one before, from "
            "THROTTLE_LOCK_SECONDS up to this (password locks stay at THROTTLE_LOCK_SECONDS). "
            "With the defaults a guesser gets at most 70 codes on the first day and 10 a day after."),
    Setting("SECOND_STEP_LOCK_MEMORY_SECONDS", 7 * 86400, _int(1),
            "How long the second step remembers its last lock (the next one within it is longer)."),
    Setting("MFA_REQUIRED", False, _bool,
            "Everyone must use two-step verification: a user without a second factor enrols one right after the password."),
    Setting("RECENT_PASSWORD_SECONDS", 300, _int(30),
            "Enrolling or removing a factor, or viewing recovery codes, needs the password entered within this many seconds."),
    Setting("REMEMBER_BROWSER_DAYS", 30, _int(0),
            "Days a browser may skip the second step after \"Remember this browser\" (0 = not offered). "
            "Void after a password or factor change."),
    Setting("TOTP_ISSUER", "Visma IdP", _str, "The account label's issuer that authenticator apps show."),
    Setting("SMS_BACKEND", "outbox", _str,
            "`outbox` (kept in the database, shown at /dev/outbox in demo mode) or `http` (JSON POST to SMS_HTTP_URL)."),
    Setting("SMS_HTTP_URL", None, _optional_str, "The SMS provider's endpoint for the `http` backend (https)."),
    Setting("SMS_HTTP_TOKEN", None, _optional_str, "Bearer token sent to SMS_HTTP_URL."),
    Setting("SMS_SENDER", "VismaIdP", _str, "Sender name or number of text messages."),
    Setting("SMS_HTTP_TIMEOUT", 10.0, _float(0.5), "Seconds to wait for the SMS provider before a send counts as failed."),
    Setting("SMS_PER_NUMBER", 3, _int(1),
            "Text messages one phone number gets in 10 minutes, across all accounts (against toll fraud)."),
    Setting("SMS_PER_ACCOUNT_DAY", 10, _int(1), "Text messages one account may have sent in a day."),
    Setting("WEBAUTHN_RP_ID", None, _optional_str, "WebAuthn relying-party id. Default: the issuer's host name."),
    Setting("WEBAUTHN_RP_NAME", "Visma IdP", _str, "The name security-key and passkey dialogs show."),
    Setting("WEBAUTHN_ORIGINS", None, _optional_str,
            "Space-separated origins WebAuthn responses may come from. Default: the issuer's origin."),
    Setting("ONE_TIME_CODE_LIFETIME", 600, _int(60), "Seconds an admin-issued one-time code stays valid (10 minutes)."),
    Setting("RETENTION_DAYS", 30, _int(1),
            "Days `visma-idp purge` keeps a row after it stopped being usable: expired or used codes, links and "
            "tokens, ended sessions, sent mail and text messages, given-up enrolments (see docs/operations.md)."),
    Setting("AUDIT_RETENTION_DAYS", 0, _int(0),
            "Days `visma-idp purge` keeps audit events (0 = forever)."),
    Setting("LOG_LEVEL", "INFO", _str, "Python log level of the `visma_idp` loggers."),
    Setting("DEFAULT_LOCALE", "en", _str, "Language when neither the user, `ui_locales` nor the browser chooses one."),
)

BY_NAME = {s.name: s for s in SETTINGS}
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
    """The settings table for docs/configuration.md."""
    lines = ["| Setting | Default | What it does |", "|---|---|---|"]
    for s in SETTINGS:
        default = "—" if s.default is None else f"`{s.default}`"
        lines.append(f"| `{PREFIX}{s.name}` | {default} | {s.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
