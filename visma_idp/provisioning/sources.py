"""Who owns a person's attribute, and what happens to a value from a source
that does not: the rule that keeps several payroll systems and the person
from overwriting each other every night.

Rules:
- Each attribute of ``ATTRIBUTES`` has one authoritative source: the
  provisioning client configured for it (``--authoritative-for``) among the
  clients that hold the person; else the first source that set it (its
  ``AttributeSource`` row); else nobody yet, and the first source to push a
  value takes it.
- A person's own change on My details makes them the source of those
  attributes (:func:`person_changed`); it wins over payroll unless a client is
  configured as the authority.
- A value from the owner is applied. A value equal to the current one changes
  nothing and writes nothing (once the attribute has its owner).
- A different value from any other source is not applied: it is kept as a
  conflict (both values, both sources, first and last seen). One row per
  (person, attribute, source, value): pushing the same value again only moves
  ``last_seen``, so the agreement's admins are told once per conflict (one
  email each and the console's list), never once per night.
- Resolving a conflict picks a source: it becomes the attribute's owner, and
  its value is applied. A configured authority cannot be overruled in the
  console (change the configuration instead).

The accounts themselves (matching, creating, email changes, deactivation) are
``people.py``'s; this module only decides and records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import select

from .. import audit
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import AttributeSource, Membership, ProvisioningClient, ProvisioningConflict, ScimResource, User, db

if TYPE_CHECKING:
    from ..storage import Agreement

#: the person attributes a provisioning client may set, in the order the console lists them
ATTRIBUTES = ("email", "name", "given_name", "family_name", "phone_number", "locale")
#: what My details may change of them (the email has its own confirmation)
PROFILE_ATTRIBUTES = ("name", "given_name", "family_name", "phone_number", "locale")
SELF = "self"


def _now() -> int:
    return current_idp().clock.now()


def configured_owners(user_id: int, attributes) -> dict[str, ProvisioningClient]:
    """Of ``attributes``, those a provisioning client holding the person is
    configured as the authority for, each with that client (the oldest, if
    several are); one query for them all."""
    rows = db.session.scalars(
        select(ProvisioningClient).join(ScimResource, ScimResource.client_id == ProvisioningClient.id)
        .where(ScimResource.user_id == user_id, ScimResource.kind == "User")
        .order_by(ProvisioningClient.id)
    ).unique()
    owners: dict[str, ProvisioningClient] = {}
    for row in rows:
        for attribute in attributes:
            if attribute in (row.authoritative_for or []):
                owners.setdefault(attribute, row)
    return owners


def configured_owner(user_id: int, attribute: str) -> ProvisioningClient | None:
    """The provisioning client configured as the authority for ``attribute``
    among those holding the person (the oldest, if several are)."""
    return configured_owners(user_id, (attribute,)).get(attribute)


def _row(user_id: int, attribute: str) -> AttributeSource | None:
    return db.session.get(AttributeSource, (user_id, attribute))


def owner(user_id: int, attribute: str) -> str | None:
    """The source that owns ``attribute`` of the person (``self``,
    ``scim:<id>``), or None when nobody has set it yet."""
    configured = configured_owner(user_id, attribute)
    if configured is not None:
        return configured.source
    row = _row(user_id, attribute)
    return row.source if row is not None else None


def _take(user_id: int, attribute: str, source: str) -> None:
    row = _row(user_id, attribute)
    if row is None:
        db.session.add(AttributeSource(user_id=user_id, attribute=attribute, source=source, set_at=_now()))
    elif row.source != source:
        row.source = source
        row.set_at = _now()


def may_set(client: ProvisioningClient, user: User, attribute: str, value: str | None) -> bool:
    """Whether ``client`` may set ``attribute`` of ``user`` to ``value`` now;
    when it may not and the value differs, the conflict is recorded (see the
    rules). Taking an attribute nobody owned records ``client`` as its source."""
    current = getattr(user, attribute)
    own = owner(user.id, attribute)
    if own is None:
        _take(user.id, attribute, client.source)
        return current != value
    if own == client.source:
        return current != value
    if current != value:
        _conflict(client, user, attribute, own, current, value)
    return False


def apply(client: ProvisioningClient, user: User, values: Mapping[str, str | None], *, new: bool = False
          ) -> list[str]:
    """Set the attributes of ``values`` (all but ``email``, which is
    ``people.py``'s) that ``client`` owns and that differ; return the names
    that changed. Audited (unless the account is ``new``: its creation is),
    and told to an activated person in the batched "your details have
    changed" email. The caller commits."""
    from ..account.notifications import record_profile_change

    changed = []
    for name in PROFILE_ATTRIBUTES:
        if name in values and may_set(client, user, name, values[name]):
            setattr(user, name, values[name])
            changed.append(name)
    if not changed:
        return []
    if "phone_number" in changed:
        user.phone_number_verified = False
    user.updated_at = _now()
    if not new:
        audit.record("profile_updated", user_id=user.id, subject=user.email,
                     details={"fields": changed, "via_provisioning": client.name},
                     agreement=client.agreement.public_id)
    if user.activated_at is not None:
        record_profile_change(user, changed)
    return changed


def person_changed(user: User, fields: Iterable[str]) -> None:
    """The person changed ``fields`` on My details: they own them from now on
    (a configured authority still comes first). The caller commits."""
    for name in fields:
        if name in PROFILE_ATTRIBUTES:
            _take(user.id, name, SELF)


def _text(value: object) -> str | None:
    return None if value is None else str(value)[:320]


def _conflict(client: ProvisioningClient, user: User, attribute: str, own: str, current: object,
              value: object) -> None:
    now = _now()
    other = _text(value)
    row = db.session.scalar(select(ProvisioningConflict).where(
        ProvisioningConflict.user_id == user.id, ProvisioningConflict.attribute == attribute,
        ProvisioningConflict.other_source == client.source, ProvisioningConflict.other_value == other,
        ProvisioningConflict.agreement_id == client.agreement_id))
    if row is not None:
        if now - row.last_seen >= SEEN_AGAIN_EVERY:
            row.last_seen = now
        return
    row = ProvisioningConflict(agreement_id=client.agreement_id, user_id=user.id, attribute=attribute,
                               current_source=own, current_value=_text(current), other_source=client.source,
                               other_value=other, first_seen=now, last_seen=now, notified_at=now)
    db.session.add(row)
    db.session.flush()
    audit.record("provisioning_conflict", user_id=user.id, subject=user.email, agreement=client.agreement.public_id,
                 details={"attribute": attribute, "kept": own, "refused": client.source, "client": client.name})
    db.session.info.setdefault(_NEW, []).append(row.id)


_NEW = "visma_idp.new_provisioning_conflicts"
#: a conflict's value seen again moves its ``last_seen`` at most this often
SEEN_AGAIN_EVERY = 12 * 3600


def revisit(client: ProvisioningClient, user: User, values: Mapping[str, str | None]) -> None:
    """A push from ``client`` that changed nothing of its resource still
    carries ``values``: a value that differs from the account and that the
    client does not own is a conflict, new (recorded and told once) or seen
    again (its ``last_seen`` moves, at most every ``SEEN_AGAIN_EVERY``).
    Nothing is applied, and nothing else is written, audited or sent."""
    for name in ATTRIBUTES:
        value = values.get(name)
        if value is None or getattr(user, name) == value:
            continue
        own = owner(user.id, name)
        if own is not None and own != client.source:
            _conflict(client, user, name, own, getattr(user, name), value)
    tell_new_conflicts()


def tell_new_conflicts() -> None:
    """Tell the agreement's admins of the conflicts this transaction found:
    one email per person and source, naming every attribute that differs
    (a family name that differs makes the display name differ too)."""
    ids = db.session.info.pop(_NEW, [])
    if not ids:
        return
    rows = [row for row in (db.session.get(ProvisioningConflict, i) for i in ids) if row is not None]
    groups: dict[tuple[int, str, str], list[ProvisioningConflict]] = {}
    for row in rows:
        groups.setdefault((row.user_id, row.other_source, row.current_source), []).append(row)
    for group in groups.values():
        _tell_admins(group)


def _admins(agreement_id: int) -> list[User]:
    from ..agreements.invitations import ADMIN_ROLE

    rows = db.session.execute(
        select(User, Membership).join(Membership, Membership.user_id == User.id)
        .where(Membership.agreement_id == agreement_id, User.is_active.is_(True))).tuples()
    return [user for user, membership in rows
            if any(r["role"] == ADMIN_ROLE and r.get("client") is None for r in membership.roles or [])]


def _tell_admins(rows: list[ProvisioningConflict]) -> None:
    """One email to each admin of the agreement about new conflicts of one person and source."""
    from ..notify.messages import queue
    from ..storage import Agreement

    first = rows[0]
    agreement = db.session.get(Agreement, first.agreement_id)
    if agreement is None:
        return
    link = current_idp().url("provisioning_console.conflicts", public_id=agreement.public_id)
    differences = [{"attribute": row.attribute, "current_value": row.current_value or "",
                    "other_value": row.other_value or ""} for row in rows]
    for admin in _admins(agreement.id):
        queue("provisioning_conflict", to=admin.email, user=admin, agreement=agreement.name, person=first.user.email,
              current_source=client_name(first.current_source), other_source=client_name(first.other_source),
              differences=differences, link=link)


def client_name(source: str) -> str | None:
    """How pages and emails name a source: the client's name; None for the
    person themself (the page and the email say so in their language)."""
    if source == SELF:
        return None
    from .clients import by_source

    client = by_source(source)
    return client.name if client is not None else source


def open_conflicts(agreement: Agreement) -> list[ProvisioningConflict]:
    return list(db.session.scalars(select(ProvisioningConflict).where(
        ProvisioningConflict.agreement_id == agreement.id, ProvisioningConflict.resolved_at.is_(None))
        .order_by(ProvisioningConflict.first_seen, ProvisioningConflict.id)))


def conflict_of(agreement: Agreement, conflict_id: int) -> ProvisioningConflict | None:
    row = db.session.get(ProvisioningConflict, conflict_id)
    return row if row is not None and row.agreement_id == agreement.id else None


def resolve(row: ProvisioningConflict, chosen: str, *, by: User | None) -> None:
    """Settle a conflict with the source ``chosen`` (one of its two): it owns
    the attribute from now on, and its value is applied. The caller commits.

    An email address (the sign-in name) is never swapped in here: it takes
    the way of the chosen client's own push (``people.py``): an activated
    account gets the email-change confirmation at the chosen address (the
    address changes when the person opens the link; asked once per address),
    a pending account's address changes with its activation email sent there,
    and an address another account has changes nothing.

    Raises:
        InvalidInput: ``chosen`` is neither source, the conflict is settled, or
            another client is configured as the attribute's authority.
    """
    if row.resolved_at is not None:
        raise InvalidInput("this conflict is already resolved")
    if chosen not in (row.current_source, row.other_source):
        raise InvalidInput("choose one of the two sources")
    configured = configured_owner(row.user_id, row.attribute)
    if configured is not None and configured.source != chosen:
        raise InvalidInput(f"{configured.name} is configured as the authority for {row.attribute}")
    user = row.user
    _take(user.id, row.attribute, chosen)
    value = row.other_value if chosen == row.other_source else row.current_value
    changed = row.attribute != "email" and getattr(user, row.attribute) != value
    if changed:
        from ..account.notifications import record_profile_change

        setattr(user, row.attribute, value)
        if row.attribute == "phone_number":
            user.phone_number_verified = False
        user.updated_at = _now()
        if user.activated_at is not None:
            record_profile_change(user, [row.attribute])
    now = _now()
    # the other open conflicts of this attribute (a third source, an older value) are settled with it
    for other in db.session.scalars(select(ProvisioningConflict).where(
            ProvisioningConflict.user_id == row.user_id, ProvisioningConflict.attribute == row.attribute,
            ProvisioningConflict.agreement_id == row.agreement_id, ProvisioningConflict.resolved_at.is_(None))):
        other.resolved_at = now
        other.resolved_by = by.id if by is not None else None
        other.chosen = chosen
    from ..agreements.service import by_details

    audit.record("provisioning_conflict_resolved", user_id=user.id, subject=user.email,
                 agreement=_agreement_public_id(row),
                 details={"attribute": row.attribute, "chosen": chosen, "changed": changed, **by_details(by)})
    if row.attribute == "email" and value and value != user.email:
        _move_address(chosen, user, value)


def _move_address(chosen: str, user: User, address: str) -> None:
    """The chosen client's address for ``user``, as its own push would bring
    it (``people.py``) now that the client owns the attribute."""
    from . import people
    from .clients import by_source

    client = by_source(chosen)
    resource = None if client is None else db.session.scalar(
        select(ScimResource).where(ScimResource.client_id == client.id, ScimResource.kind == "User",
                                   ScimResource.user_id == user.id).order_by(ScimResource.id).limit(1))
    if client is not None and resource is not None:
        people.change_email(client, resource, user, address)
    elif user.status == "active":  # the client no longer holds the person: the confirmation all the same
        from ..account.email_change import request_change

        request_change(user, address)


def _agreement_public_id(row: ProvisioningConflict) -> str | None:
    from ..storage import Agreement

    agreement = db.session.get(Agreement, row.agreement_id)
    return agreement.public_id if agreement is not None else None
