"""The accounts behind a provisioning client's User resources: matching a
pushed person to an account, creating one, the email address, membership
and roles, deactivation.

Rules:
- A User resource's ``userName`` is the client's own key for the person,
  never the sign-in name. The sign-in address is the primary ``emails``
  value, else the ``work`` one, else the first.
- Matching an unlinked resource to an account, in order: another client of
  the same agreement holding a linked resource with the same ``externalId``
  (never the same ``userName``: that is each system's own key, and two
  systems may give one number to two people); then the account with the
  address, only if it is a member of the agreement already (or was, until
  this agreement's deactivation disabled it: a rehire), or its address is
  verified, in one of the agreement's domains, and in no other agreement (a
  person of another company is that company's). Nothing else links: such an
  address gets an invitation to join the agreement, and accepting it links
  the person (:func:`link_invited`), never a silent takeover.
- No account with the address: a pending account is created, a member of
  the agreement, and gets the activation email. A person pushed without an
  address is kept, unlinked, until one arrives.
- The address of a linked account changes only when this client owns the
  attribute (``sources.py``): a pending account's address is changed and the
  activation email sent to the new one; an activated account gets the same
  confirmation as a person's own change, asked once per address.
- ``active: false`` (or deleting the resource), once no other system of the
  agreement holds the person as active, removes the person from the
  agreement (their roles kept for a reactivation), ends their sessions
  working in it and revokes its tokens. A person left in no agreement has
  their account disabled until a reactivation; a person in other agreements
  keeps it.
- Groups are roles in the agreement, named after the group (``role_of``).
  The person's roles from this client's groups are granted and withdrawn
  as the groups change; a role the person had already (given on the members
  page) is not the client's, and stays when they leave the group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from .. import audit
from ..addresses import AddressError, parse
from ..agreements import service as agreements
from ..config import LOCALES
from ..context import current_idp
from ..storage import Agreement, ProvisioningClient, ScimResource, User, db, queries
from . import sources

_ROLE_CHARS = re.compile(r"[^a-z0-9_:.-]+")
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def role_of(display_name: str) -> str:
    """The agreement role a group stands for: ``Expense approvers`` → ``expense-approvers``."""
    slug = _ROLE_CHARS.sub("-", display_name.strip().lower()).strip("-._:")[:64]
    return slug or "group"


def _pick(items: Any, kinds: Iterable[str] = ("work",)) -> dict[str, Any] | None:
    """The primary item of a multi-valued attribute, else the first of ``kinds``, else the first."""
    if not isinstance(items, list):
        return None
    entries = [item for item in items if isinstance(item, dict) and item.get("value")]
    for kind in kinds:
        entries.sort(key=lambda item: (not item.get("primary"), item.get("type") != kind))
    return entries[0] if entries else None


def email_of(data: Mapping[str, Any]) -> str | None:
    """The sign-in address a resource gives, in its stored spelling; None when it has none that is valid."""
    entry = _pick(data.get("emails"))
    if entry is None:
        return None
    try:
        return parse(str(entry["value"])).email
    except AddressError:
        return None


def values_of(data: Mapping[str, Any]) -> dict[str, str | None]:
    """The person attributes a User resource sets (``sources.PROFILE_ATTRIBUTES``);
    an attribute the resource does not carry is left out, never cleared."""
    from ..account.profile import normalize_phone

    out: dict[str, str | None] = {}
    raw_name = data.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    if name.get("givenName"):
        out["given_name"] = str(name["givenName"])[:100]
    if name.get("familyName"):
        out["family_name"] = str(name["familyName"])[:100]
    display = data.get("displayName") or name.get("formatted") or " ".join(
        part for part in (name.get("givenName"), name.get("familyName")) if part)
    if display:
        out["name"] = str(display)[:200]
    phone = _pick(data.get("phoneNumbers"), ("work", "mobile"))
    if phone is not None:
        normal = normalize_phone(str(phone["value"]))
        if normal is not None:
            out["phone_number"] = normal
    language = str(data.get("preferredLanguage") or "").replace("_", "-").split(",")[0].strip().lower()
    if language:
        base = language.split("-")[0]
        if language in LOCALES:
            out["locale"] = language
        elif base in LOCALES:
            out["locale"] = base
        elif base == "no":
            out["locale"] = "nb"
    return out


def _linked_elsewhere(client: ProvisioningClient, column: Any, value: str | None) -> User | None:
    if not value:
        return None
    row = db.session.scalar(
        select(ScimResource).join(ProvisioningClient, ProvisioningClient.id == ScimResource.client_id)
        .where(ProvisioningClient.agreement_id == client.agreement_id, ScimResource.client_id != client.id,
               ScimResource.kind == "User", column == value, ScimResource.user_id.is_not(None))
        .order_by(ScimResource.id).limit(1))
    return db.session.get(User, row.user_id) if row is not None else None


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def match(client: ProvisioningClient, row: ScimResource, email: str | None) -> User | None:
    """The account an unlinked resource stands for (see the rules), or None."""
    found = _linked_elsewhere(client, ScimResource.external_id, row.external_id)
    if found is not None or email is None:
        return found
    user = queries.user_by_email(email)
    if user is None:
        return None
    agreement = client.agreement
    if agreements.membership(user.id, agreement.id) is not None or user.disabled_by_agreement == agreement.id:
        return user
    domains = {d.lower() for d in agreement.domains or []}
    if user.email_verified and _domain_of(email) in domains and not agreements.memberships_of(user.id):
        return user
    return None


def _invite(client: ProvisioningClient, row: ScimResource, email: str) -> None:
    """Invite an address whose account may not be linked silently, once per address."""
    from ..agreements import invitations

    if row.requested_email == email:
        return
    row.requested_email = email
    try:
        invitations.invite(client.agreement, email, invited_by=None)
    except invitations.InvalidInput:
        return
    audit.record("provisioning_invited", subject=email, agreement=client.agreement.public_id,
                 details={"client": client.name, "resource": row.scim_id})


def link_invited(agreement: Agreement, user: User) -> None:
    """``user`` accepted an invitation to ``agreement``: the records of its
    systems that were waiting for that address (not linked, see the rules)
    are linked to them now, and followed as a push would. The caller commits."""
    rows = db.session.scalars(
        select(ScimResource).join(ProvisioningClient, ProvisioningClient.id == ScimResource.client_id)
        .where(ProvisioningClient.agreement_id == agreement.id, ScimResource.kind == "User",
               ScimResource.user_id.is_(None), ScimResource.email == user.email)).all()
    for row in rows:
        sync_user(row.client, row)


def _create(client: ProvisioningClient, email: str, values: Mapping[str, str | None]) -> User:
    from ..account.activation import send_welcome
    from ..admin.service import create_user

    user = create_user(email, values.get("name") or "", invite=False)
    sources.apply(client, user, values, new=True)
    send_welcome(user)  # after the details: the email is in the person's language
    sources.may_set(client, user, "email", email)  # the client is the first source of the address
    audit.record("provisioning_user_created", user_id=user.id, subject=email,
                 agreement=client.agreement.public_id, details={"client": client.name, "invited": True})
    return user


def change_email(client: ProvisioningClient, row: ScimResource, user: User, email: str) -> None:
    if not sources.may_set(client, user, "email", email):
        return
    if queries.user_by_email(email) is not None:
        audit.record("provisioning_email_taken", outcome="refused", user_id=user.id, subject=user.email,
                     agreement=client.agreement.public_id, details={"client": client.name})
        return
    if user.status == "pending":
        from ..account.activation import send_welcome

        old = user.email
        user.email = email
        user.updated_at = current_idp().clock.now()
        audit.record("email_changed", user_id=user.id, subject=email,
                     details={"old": old, "via_provisioning": client.name}, agreement=client.agreement.public_id)
        send_welcome(user)  # the first mail to this address; the old address's link stops working
        return
    if row.requested_email == email:
        return  # asked already: the person confirms it, or not
    from ..account.email_change import request_change

    row.requested_email = email
    request_change(user, email)


def sync_user(client: ProvisioningClient, row: ScimResource) -> None:
    """Bring the account behind a stored User resource in line with it (see
    the rules); a resource that changed nothing about the person writes nothing.
    The caller commits."""
    data = row.data or {}
    values = values_of(data)
    email = email_of(data)
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is None:
        user = match(client, row, email)
        if user is None:
            if email is None or not row.active:
                return
            if queries.user_by_email(email) is not None:
                _invite(client, row, email)
                return
            user = _create(client, email, values)
        row.user_id = user.id
        audit.record("provisioning_linked", user_id=user.id, subject=user.email,
                     agreement=client.agreement.public_id, details={"client": client.name, "resource": row.scim_id})
    if email is not None and email != user.email:
        change_email(client, row, user, email)
    sources.apply(client, user, values)
    sources.tell_new_conflicts()
    if row.active:
        _reactivate(client, row, user)
    else:
        deactivate(client, row, user)


def _member_roles(client: ProvisioningClient, user: User) -> set[str]:
    """The roles this client's groups give ``user``."""
    wanted = set()
    for group in db.session.scalars(select(ScimResource).where(ScimResource.client_id == client.id,
                                                               ScimResource.kind == "Group")):
        members = {m.get("value") for m in (group.data or {}).get("members") or [] if isinstance(m, dict)}
        if members & set(_resource_ids_of(client, user)):
            wanted.add(group.role or role_of(group.key))
    return wanted


def _resource_ids_of(client: ProvisioningClient, user: User) -> list[str]:
    return list(db.session.scalars(select(ScimResource.scim_id).where(
        ScimResource.client_id == client.id, ScimResource.kind == "User", ScimResource.user_id == user.id)))


def _reactivate(client: ProvisioningClient, row: ScimResource, user: User) -> None:
    agreement = client.agreement
    if user.disabled_by_agreement == agreement.id:
        if not user.is_active:
            user.is_active = True
            audit.record("user_enabled", user_id=user.id, subject=user.email, agreement=agreement.public_id,
                         details={"via_provisioning": client.name})
        user.disabled_by_agreement = None
    if agreements.membership(user.id, agreement.id) is None:
        kept = row.kept_roles or []
        agreements.add_member(agreement, user)
        for client_id in {r.get("client") for r in kept}:
            agreements.set_roles(agreement, user, [r["role"] for r in kept if r.get("client") == client_id], client_id)
        row.kept_roles = None
    sync_roles(client, user)


def sync_roles(client: ProvisioningClient, user: User) -> None:
    """Grant and withdraw the roles this client's groups give ``user`` (a member).

    The client owns (``granted_roles``) only the roles it added: a role the
    person had already, given on the members page, stays when they leave the group."""
    agreement: Agreement = client.agreement
    membership = agreements.membership(user.id, agreement.id)
    if membership is None:
        return
    wanted = _member_roles(client, user)
    rows = list(db.session.scalars(select(ScimResource).where(
        ScimResource.client_id == client.id, ScimResource.kind == "User", ScimResource.user_id == user.id)))
    owned = set().union(*(set(r.granted_roles or []) for r in rows)) if rows else set()
    current = {r["role"] for r in membership.roles or [] if r.get("client") is None}
    to_add, to_remove = wanted - current, owned - wanted
    if to_add or to_remove:
        agreements.set_roles(agreement, user, sorted((current - to_remove) | to_add))
    now_owned = sorted((owned & wanted) | to_add)
    for r in rows:
        if list(r.granted_roles or []) != now_owned:
            r.granted_roles = now_owned


def _active_elsewhere(client: ProvisioningClient, row: ScimResource, user: User) -> bool:
    """Whether another system of the agreement still holds the person as active."""
    return db.session.scalar(
        select(ScimResource.id).join(ProvisioningClient, ProvisioningClient.id == ScimResource.client_id)
        .where(ProvisioningClient.agreement_id == client.agreement_id, ScimResource.kind == "User",
               ScimResource.user_id == user.id, ScimResource.active.is_(True), ScimResource.id != row.id)
        .limit(1)) is not None


def deactivate(client: ProvisioningClient, row: ScimResource, user: User) -> None:
    """Take the person out of the agreement (see the rules); nothing when they
    are out already, or while another system of the agreement holds them as active."""
    agreement = client.agreement
    membership = agreements.membership(user.id, agreement.id)
    if membership is None or _active_elsewhere(client, row, user):
        return
    row.kept_roles = list(membership.roles or [])
    agreements.remove_member(agreement, user)
    now = current_idp().clock.now()
    sessions, tokens = queries.leave_agreement(user.id, agreement.id, now)
    audit.record("provisioning_deactivated", user_id=user.id, subject=user.email, agreement=agreement.public_id,
                 details={"client": client.name, "sessions": sessions, "tokens": tokens})
    if not agreements.memberships_of(user.id) and user.is_active:
        from ..account.sessions import revoke_everything

        user.is_active = False
        user.disabled_by_agreement = agreement.id
        revoke_everything(user.id, reason="deprovisioned")
        audit.record("user_disabled", user_id=user.id, subject=user.email, agreement=agreement.public_id,
                     details={"via_provisioning": client.name})


def forget(client: ProvisioningClient, row: ScimResource) -> None:
    """A User resource is deleted: the person leaves the agreement as on deactivation."""
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if user is not None:
        deactivate(client, row, user)


def group_changed(client: ProvisioningClient, before: set[str], after: set[str]) -> None:
    """A group's members went from ``before`` to ``after`` (resource ids), or
    its name changed: recompute the roles of everyone concerned."""
    ids = before | after
    if not ids:
        return
    users = db.session.scalars(select(ScimResource.user_id).where(
        ScimResource.client_id == client.id, ScimResource.kind == "User", ScimResource.scim_id.in_(ids),
        ScimResource.user_id.is_not(None))).all()
    for user_id in set(users):
        user = db.session.get(User, user_id)
        if user is not None:
            sync_roles(client, user)
