"""Telling people what changed in their account.

Rules:
- profile changes ("Changed my account details") are gathered: the first
  change opens a :class:`ProfileChangeNotice` due ``NOTIFY_BATCH_SECONDS``
  later; changes before that moment join it (the union of the field names);
  a change after it opens a new one;
- changes of a person's roles in an agreement are gathered the same way, one
  :class:`RoleChangeNotice` per person and agreement (:func:`roles_changed`):
  the notice keeps the *net* change, so a role given and taken away again
  within the window cancels out, and a notice whose net change is nothing
  sends no mail;
- :func:`flush_due_notices` (run by the mail worker before each delivery
  round) turns each due notice into ONE message: "profile_changed" (or
  nothing when the user opted out), "roles_changed" (never subject to the
  opt-out: roles are a security matter). A notice is claimed with a
  conditional UPDATE of ``sent_at`` in the same transaction as its message,
  and read again after the claim, so two workers never send it twice, a
  crash sends it zero times, then once, and a change that joined it just
  before the claim is in the mail;
- a change joins an open notice by a conditional UPDATE too (the row locked
  first where the database can): once a worker has claimed the notice, the
  change opens a new one instead of being lost;
- with ``NOTIFY_BATCH_SECONDS = 0`` the message is composed at once;
- the other security changes (password, email address, second factors,
  national ID) are never batched and never subject to the opt-out: their own
  mails are queued by the code that makes the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..context import current_idp
from ..notify.messages import queue
from ..storage import Agreement, ProfileChangeNotice, RoleChangeNotice, User, db

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

FLUSH_LIMIT = 200  # notices of each kind per round


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


def _claim(model: type[ProfileChangeNotice] | type[RoleChangeNotice], notice_id: int, now: int) -> bool:
    """Mark the notice sent unless a worker did already (the conditional UPDATE)."""
    result = db.session.execute(
        update(model).where(model.id == notice_id, model.sent_at.is_(None)).values(sent_at=now),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _send(notice: ProfileChangeNotice, user: User | None, now: int) -> bool:
    """Claim ``notice`` and queue its message (unless the user opted out).
    Returns whether a message was queued."""
    if not _claim(ProfileChangeNotice, notice.id, now):
        return False
    db.session.refresh(notice)  # what joined it up to the claim
    if user is None or not user.notify_profile_changes or not user.is_active:
        return False
    queue("profile_changed", to=user.email, user=user, fields=list(notice.fields or []),
          field_label=field_label)
    return True


def flush_due_notices(idp) -> int:
    """Turn every due notice (profile changes, then changes of roles) into
    one message each; needs an app context. Safe to run from several workers
    at once.

    Returns:
        How many messages were queued.
    """
    now = idp.clock.now()
    return _flush(ProfileChangeNotice, _send, now) + _flush(RoleChangeNotice, _send_roles, now)


Notice = TypeVar("Notice", ProfileChangeNotice, RoleChangeNotice)


def _flush(model: type[Notice], send: Callable[[Notice, User | None, int], bool], now: int) -> int:
    ids = list(db.session.scalars(
        select(model.id).where(model.sent_at.is_(None), model.due_at <= now).order_by(model.id).limit(FLUSH_LIMIT)
    ))
    queued = 0
    for notice_id in ids:
        notice = db.session.get(model, notice_id)
        if notice is None or notice.sent_at is not None:
            continue
        if send(notice, db.session.get(User, notice.user_id), now):
            queued += 1
        db.session.commit()  # the claim and its message together, one notice at a time
    return queued


# -- changes of roles ------------------------------------------------------------------


def net_change(added: Sequence[str], removed: Sequence[str], more_added: Iterable[str],
               more_removed: Iterable[str]) -> tuple[list[str], list[str]]:
    """The net change of roles after (``added``, ``removed``) and then
    (``more_added``, ``more_removed``): a role taken away after it was given
    (or given back after it was taken away) is in neither list. Sorted."""
    plus, minus = set(added), set(removed)
    for role in more_added:
        if role in minus:
            minus.discard(role)
        else:
            plus.add(role)
    for role in more_removed:
        if role in plus:
            plus.discard(role)
        else:
            minus.add(role)
    return sorted(plus), sorted(minus)


def roles_changed(user: User, *, agreement: Agreement, added: Iterable[str], removed: Iterable[str]
                  ) -> RoleChangeNotice | None:
    """Note that ``user``'s roles in ``agreement`` changed; the "Your roles have
    changed" message follows when the window closes (always sent: roles are a
    security matter, the opt-out does not apply). The caller commits.

    The change joins the open notice of this user and agreement (one not yet
    sent whose ``due_at`` is still ahead) or opens a new one. With a batch
    window of 0 the message is queued at once.

    Args:
        user: whose roles changed.
        agreement: the agreement (company) the roles belong to.
        added: labels of the roles given (``approver``, ``approver (expense)``).
        removed: labels of the roles taken away.

    Returns:
        The notice the change went into (None when nothing changed).
    """
    added, removed = net_change([], [], added, removed)
    if not added and not removed:
        return None
    idp = current_idp()
    now = idp.clock.now()
    window = idp.settings["NOTIFY_BATCH_SECONDS"]
    if window > 0:
        open_notice = db.session.scalar(
            select(RoleChangeNotice)
            .where(RoleChangeNotice.user_id == user.id, RoleChangeNotice.agreement == agreement.public_id,
                   RoleChangeNotice.sent_at.is_(None), RoleChangeNotice.due_at > now)
            .order_by(RoleChangeNotice.id.desc()).limit(1)
            .with_for_update()  # PostgreSQL: two admins' changes join one after the other
        )
        if open_notice is not None:
            net_added, net_removed = net_change(open_notice.added or [], open_notice.removed or [], added, removed)
            # conditional: a worker that claimed the notice meanwhile wins,
            # and the change opens a new notice instead of being lost
            joined = db.session.execute(
                update(RoleChangeNotice)
                .where(RoleChangeNotice.id == open_notice.id, RoleChangeNotice.sent_at.is_(None))
                .values(added=net_added, removed=net_removed, agreement_name=agreement.name),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
            if joined == 1:  # written by the UPDATE: nothing more to flush
                set_committed_value(open_notice, "added", net_added)
                set_committed_value(open_notice, "removed", net_removed)
                set_committed_value(open_notice, "agreement_name", agreement.name)
                return open_notice
    notice = RoleChangeNotice(user_id=user.id, agreement=agreement.public_id, agreement_name=agreement.name,
                              added=added, removed=removed, first_at=now, due_at=now + window)
    db.session.add(notice)
    db.session.flush()
    if window == 0:
        _send_roles(notice, user, now)
    return notice


def _send_roles(notice: RoleChangeNotice, user: User | None, now: int) -> bool:
    """Claim ``notice`` and queue its message, unless its net change is
    nothing. Returns whether a message was queued."""
    if not _claim(RoleChangeNotice, notice.id, now):
        return False
    db.session.refresh(notice)  # what joined it up to the claim
    if user is None or not (notice.added or notice.removed):
        return False
    queue("roles_changed", to=user.email, user=user, agreement=notice.agreement_name,
          added=list(notice.added or []), removed=list(notice.removed or []))
    return True
