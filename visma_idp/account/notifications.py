"""Telling people what changed in their account.

Rules:
- profile changes ("Changed my account details") are gathered: the first
  change opens a :class:`ProfileChangeNotice` due ``NOTIFY_BATCH_SECONDS``
  later; changes before that moment join it (the union of the field names);
  a change after it opens a new one;
- :func:`flush_due_notices` (run by the mail worker before each delivery
  round) turns each due notice into ONE "profile_changed" message, or into
  nothing when the user opted out; a notice is claimed with a conditional
  UPDATE of ``sent_at`` in the same transaction as its message, so two
  workers never send it twice and a crash sends it zero times, then once;
- with ``NOTIFY_BATCH_SECONDS = 0`` the message is composed at once;
- security changes (password, email address, second factors, national ID,
  roles) are never batched and never subject to the opt-out: their own
  mails are queued by the code that makes the change (see
  :func:`roles_changed`).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from ..context import current_idp
from ..notify.messages import queue
from ..storage import ProfileChangeNotice, User, db

# field name -> label in the message (other modules may add theirs)
FIELD_LABELS = {
    "given_name": _l("Given name"),
    "family_name": _l("Family name"),
    "name": _l("Display name"),
    "phone_number": _l("Phone number"),
    "locale": _l("Language"),
    "zoneinfo": _l("Time zone"),
    "address": _l("Address"),
}

FLUSH_LIMIT = 200



def field_label(name: str) -> str:
    """The translated label of a profile field (in the language being rendered)."""
    label = FIELD_LABELS.get(name)
    return str(label) if label is not None else name


def _union(old: Iterable[str], new: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*old, *new]))


def record_profile_change(user: User, fields: Iterable[str]) -> ProfileChangeNotice | None:
    """Note that ``fields`` of ``user``'s profile changed; the caller commits.

    The change joins the user's open notice (one not yet sent whose
    ``due_at`` is still ahead) or opens a new one. With a batch window of 0
    the message is queued at once.

    Returns:
        The notice the change went into (None when ``fields`` is empty).
    """
    changed = list(dict.fromkeys(fields))
    if not changed:
        return None
    idp = current_idp()
    now = idp.clock.now()
    window = idp.settings["NOTIFY_BATCH_SECONDS"]
    if window > 0:
        open_notice = db.session.scalar(
            select(ProfileChangeNotice)
            .where(ProfileChangeNotice.user_id == user.id, ProfileChangeNotice.sent_at.is_(None),
                   ProfileChangeNotice.due_at > now)
            .order_by(ProfileChangeNotice.id.desc()).limit(1)
        )
        if open_notice is not None:
            merged = _union(open_notice.fields or [], changed)
            # conditional: a worker that claimed the notice meanwhile wins,
            # and the change opens a new notice instead of being lost
            joined = db.session.execute(
                update(ProfileChangeNotice)
                .where(ProfileChangeNotice.id == open_notice.id, ProfileChangeNotice.sent_at.is_(None))
                .values(fields=merged),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
            if joined == 1:
                open_notice.fields = merged
                return open_notice
    notice = ProfileChangeNotice(user_id=user.id, fields=changed, first_at=now, due_at=now + window)
    db.session.add(notice)
    db.session.flush()
    if window == 0:
        _send(notice, user, now)
    return notice


def _claim(notice_id: int, now: int) -> bool:
    result = db.session.execute(
        update(ProfileChangeNotice)
        .where(ProfileChangeNotice.id == notice_id, ProfileChangeNotice.sent_at.is_(None))
        .values(sent_at=now),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _send(notice: ProfileChangeNotice, user: User | None, now: int) -> bool:
    """Claim ``notice`` and queue its message (unless the user opted out).
    Returns whether a message was queued."""
    if not _claim(notice.id, now):
        return False
    notice.sent_at = now
    if user is None or not user.notify_profile_changes or not user.is_active:
        return False
    queue("profile_changed", to=user.email, user=user, fields=list(notice.fields or []),
          field_label=field_label)
    return True


def flush_due_notices(idp) -> int:
    """Turn every due profile-change notice into one message; needs an app
    context. Safe to run from several workers at once.

    Returns:
        How many messages were queued.
    """
    now = idp.clock.now()
    ids = list(db.session.scalars(
        select(ProfileChangeNotice.id)
        .where(ProfileChangeNotice.sent_at.is_(None), ProfileChangeNotice.due_at <= now)
        .order_by(ProfileChangeNotice.id).limit(FLUSH_LIMIT)
    ))
    queued = 0
    for notice_id in ids:
        notice = db.session.get(ProfileChangeNotice, notice_id)
        if notice is None or notice.sent_at is not None:
            continue
        user = db.session.get(User, notice.user_id)
        if _send(notice, user, now):
            queued += 1
        db.session.commit()  # the claim and its message together, one notice at a time
    return queued


def roles_changed(user: User, *, agreement: str, added: list[str], removed: list[str]) -> None:
    """Queue the "Your roles have changed" message (always sent: roles are a
    security matter, the opt-out does not apply); the caller commits.

    Args:
        user: whose roles changed.
        agreement: the company (agreement) name the roles belong to.
        added: names of the roles given.
        removed: names of the roles taken away.
    """
    if not added and not removed:
        return
    queue("roles_changed", to=user.email, user=user, agreement=agreement, added=list(added),
          removed=list(removed))
