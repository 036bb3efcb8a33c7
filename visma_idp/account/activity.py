"""What the Security section of My details shows: the user's live sessions
and their recent security activity, with a readable device name.

Rules:
- a session is listed while it is neither ended nor expired; it is named by
  its ``public_id`` (never by the digest that the cookie maps to);
- ending one session also revokes the tokens issued in it (``Token.sid`` is
  the session's ``public_id``); "sign out of all other sessions" ends every
  other session and revokes every token not issued in this one;
- activity is the user's own audit rows, newest first, each with a
  translated label (an event without one gets a generic label, never a
  raw name in a sentence);
- :func:`parse_user_agent` is pure: no request, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, get_timezone_name
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import audit
from ..context import current_idp
from ..storage import SsoSession, queries
from .sessions import Revoked, revoke_everything

ACTIVITY_LIMIT = 20

# -- devices -----------------------------------------------------------------

# (pattern, name): the first pattern that matches names the browser. Order
# matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), name) for p, name in (
        (r"\bEdg(e|A|iOS)?/", "Edge"),
        (r"\bOPR/|\bOpera\b|\bOPT/", "Opera"),
        (r"\bSamsungBrowser/", "Samsung Internet"),
        (r"\bVivaldi/", "Vivaldi"),
        (r"\bYaBrowser/", "Yandex Browser"),
        (r"\bFirefox/|\bFxiOS/", "Firefox"),
        (r"\bChrome/|\bCriOS/|\bChromium/", "Chrome"),
        (r"\bVersion/[\d.]+.*\bSafari/|\bMobile/\w+ Safari/", "Safari"),
        (r"\bMSIE |\bTrident/", "Internet Explorer"),
        (r"^curl/", "curl"),
        (r"^python-requests/|^python-httpx/|^Python-urllib/", "Python"),
    )
)

_SYSTEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), name) for p, name in (
        (r"\bWindows Phone\b", "Windows Phone"),
        (r"\bWindows\b", "Windows"),
        (r"\biPhone\b|\biPod\b", "iPhone"),
        (r"\biPad\b", "iPad"),
        (r"\bAndroid\b", "Android"),
        (r"\bCrOS\b", "ChromeOS"),
        (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
        (r"\bLinux\b|\bX11\b", "Linux"),
    )
)


@dataclass(frozen=True)
class Device:
    browser: str | None
    system: str | None


def parse_user_agent(user_agent: str | None) -> Device:
    """A rough guess at browser and operating system, for people to recognise
    their own devices (not for any security decision: the header is the
    client's to choose).

    Args:
        user_agent: the User-Agent header as stored (may be empty or None).

    Returns:
        The browser and system names, each None when not recognised.
    """
    ua = (user_agent or "")[:400]
    browser = next((name for pattern, name in _BROWSERS if pattern.search(ua)), None)
    system = next((name for pattern, name in _SYSTEMS if pattern.search(ua)), None)
    return Device(browser, system)


def device_label(user_agent: str | None) -> str:
    """"Firefox on Windows", translated."""
    device = parse_user_agent(user_agent)
    if device.browser and device.system:
        return _("%(browser)s on %(system)s", browser=device.browser, system=device.system)
    if device.browser:
        return device.browser
    if device.system:
        return _("A browser on %(system)s", system=device.system)
    return _("Unknown device")


# -- times -------------------------------------------------------------------

def user_zone(user) -> ZoneInfo:
    name = getattr(user, "zoneinfo", None)
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def format_time(ts: int | None, zone: ZoneInfo) -> str:
    """A time stamp for people, in the page's language and the user's time zone."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    return format_datetime(moment, format="medium", locale=str(get_locale() or "en"))


def iso_time(ts: int | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def zone_name(zone: ZoneInfo) -> str:
    if zone.key == "UTC":
        return "UTC"
    try:
        return get_timezone_name(zone, locale=str(get_locale() or "en"))
    except LookupError:  # pragma: no cover - babel knows every IANA zone
        return zone.key


# -- sessions ----------------------------------------------------------------


def live_sessions(user_id: int) -> list[SsoSession]:
    """The user's sessions that are neither ended nor expired, most recently used first."""
    return queries.live_sessions_of_user(user_id, current_idp().clock.now())


def end_other_session(user_id: int, public_id: str, *, current_id: str) -> bool:
    """End one live session of this user that is not the current one, and
    revoke the tokens issued in it; audited as ``session_ended``. The caller
    commits.

    Returns:
        False when no such session exists for this user (the caller answers 404).
    """
    if not isinstance(public_id, str) or len(public_id) > 64:
        return False
    now = current_idp().clock.now()
    if queries.end_live_session(user_id, public_id, now, except_id=current_id) != 1:
        return False
    tokens = queries.revoke_tokens_of_session(user_id, public_id, now)
    audit.record("session_ended", user_id=user_id, details={"session": public_id, "tokens": tokens})
    return True


def end_all_other_sessions(user_id: int, *, current: SsoSession) -> Revoked:
    """End every other session, revoke every token not issued in this one and
    void every pending link that would change the account (``sessions.py``);
    audited (``sessions_revoked``, reason ``sign_out_others``). The caller
    commits.

    Returns:
        What ended (``tokens`` counts the tokens revoked here).
    """
    tokens = queries.revoke_tokens_outside_session(user_id, current.public_id, current_idp().clock.now())
    done = revoke_everything(user_id, keep_session_id=current.id, tokens=False, reason="sign_out_others")
    return replace(done, tokens=tokens)


# -- security activity -------------------------------------------------------

EVENT_LABELS = {
    "user_created": _l("Account created"),
    "account_activated": _l("Account activated"),
    "login_succeeded": _l("Signed in"),
    "login_failed": _l("Failed sign-in attempt"),
    "login_throttled": _l("Sign-in attempt refused: too many failures"),
    "account_locked": _l("Sign-in paused after too many failed attempts"),
    "login_refused_locked": _l("Sign-in refused: the account is locked"),
    "logout": _l("Signed out"),
    "password_changed": _l("Password changed"),
    "password_change_failed": _l("Wrong current password given when changing the password"),
    "password_reset": _l("Password reset"),
    "password_reset_requested": _l("Password reset requested"),
    "login_link_used": _l("Signed in with a one-time link"),
    "email_change_requested": _l("Change of email address requested"),
    "email_change_failed": _l("Wrong current password given when changing the email address"),
    "email_changed": _l("Email address changed"),
    "email_change_conflict": _l("Email address change refused: the address is taken"),
    "email_restored": _l("Earlier email address restored"),
    "account_locked_by_user": _l("Account locked after a change was reported"),
    "account_unlocked": _l("Account unlocked"),
    "profile_updated": _l("Personal details changed"),
    "notification_settings_changed": _l("Notification settings changed"),
    "sessions_revoked": _l("Sessions ended"),
    "email_change_cancelled": _l("Pending change of email address cancelled"),
    "session_ended": _l("A session was ended"),
    "consent_granted": _l("Access granted to an app"),
    "token_reuse_detected": _l("A reused token was detected and its family revoked"),
}

EVENT_LABELS.update({
    "factor_added": _l("A way to confirm sign-ins was added"),
    "factor_removed": _l("A way to confirm sign-ins was removed"),
    "second_step_failed": _l("Wrong code or key at the second step of a sign-in"),
    "recovery_code_used": _l("Signed in with a recovery code"),
    "recovery_codes_created": _l("New recovery codes made"),
    "one_time_code_issued": _l("An administrator made a one-time code for you"),
    "one_time_code_used": _l("Signed in with a one-time code from an administrator"),
    "password_confirm_failed": _l("Wrong password given to confirm a change"),
    "passkey_login_failed": _l("Failed sign-in with a passkey"),
})
_OTHER = _l("Other security event")


@dataclass(frozen=True)
class ActivityItem:
    label: str
    at: int
    ip: str | None
    device: str
    failed: bool


def recent_activity(user_id: int, *, limit: int = ACTIVITY_LIMIT) -> list[ActivityItem]:
    # the events a person can act on (not every token an app fetched)
    rows = audit.events_of_user(user_id, events=list(EVENT_LABELS), limit=limit)
    return [
        ActivityItem(label=str(EVENT_LABELS.get(row.event, _OTHER)), at=row.at, ip=row.ip,
                     device=device_label(row.user_agent) if row.user_agent else "",
                     failed=row.outcome != "success")
        for row in rows
    ]
