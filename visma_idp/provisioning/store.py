"""One provisioning client's SCIM resources, as scim2-server's storage
(``scim2_server.storage.ScimStorage``): every statement is scoped to the
client, so a client never reads, finds or changes another client's
resources, nor a person only another agreement holds.

Rules:
- A resource is kept as the client sent it (``ScimResource.data``), without
  ``id``, ``meta`` or a password (which is never stored: provisioning sets
  no passwords, the person does on activation). The client reads back what
  it wrote, and a group member's ``$ref`` (the member's URL, made from its
  ``value`` on reading); the account behind it follows ``people.py`` and
  ``sources.py``. A group has a member once: adding one it has (Entra does)
  changes nothing.
- A deleted User is no member of the client's groups any more (each such
  group's version moves).
- ``userName`` (Users) and ``displayName`` (Groups) are unique per client,
  whatever their case (``uniqueness: server``, ``caseExact: false``).
- ``meta.version`` is a counter: a write that changes the resource moves
  it; scim2-server compares it with ``If-Match`` (412 when stale) and skips
  the write of a request that changes nothing, so a nightly push of the same
  data writes nothing.
- A value holding a NUL character is refused (``invalidValue``): a database
  may not store it.
- A listing without a filter is paged in SQL. Searches filter in SQL on
  ``userName``, ``externalId`` and ``displayName`` equality and apply the
  full filter to what remains, so every filter that
  scim2-models can evaluate works, and ``totalResults`` is exact.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Union

from scim2_models import (
    InvalidValueException,
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    SearchRequest,
    UniquenessException,
)
from scim2_models.path.expressions import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import func, select

from .. import audit
from ..context import current_idp
from ..storage import ProvisioningClient, ScimResource, User, db
from . import people, sources

if TYPE_CHECKING:
    from scim2_server.service import ScimService

#: never kept: provisioning does not set passwords
_DROPPED = ("id", "meta", "password")


def _when(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def _has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character anywhere (PostgreSQL's text cannot)."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _etag(version: int) -> str:
    return f'W/"{version}"'


def _version_of(expected: str | None) -> int | None:
    if expected is None:
        return None
    text = expected.removeprefix("W/").strip('"')
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else -1


class ClientStorage(ScimStorage):
    """The resources of one provisioning client."""

    def __init__(self, client: ProvisioningClient, service: ScimService) -> None:
        self.client = client
        self.service = service
        self.settled = False  # whether this request's write, or its lack, was dealt with

    def unchanged(self, resource_id: str) -> None:
        """A PUT or PATCH left the resource as it was: the values it carries
        that the client does not own are conflicts, new or seen again
        (``sources.revisit``), and a person not linked yet is matched again
        (an account may have come meanwhile); nothing else is written."""
        row = db.session.scalar(self._rows("User").where(ScimResource.scim_id == str(resource_id)))
        if row is not None and row.user_id is None:
            people.sync_user(self.client, row)  # a person waiting for their account may have one now
            return
        user = db.session.get(User, row.user_id) if row is not None and row.user_id is not None else None
        if row is not None and user is not None:
            values = {**people.values_of(row.data or {}), "email": people.email_of(row.data or {})}
            sources.revisit(self.client, user, values)

    # -- reading ---------------------------------------------------------
    def _rows(self, kind: str | None):
        stmt = select(ScimResource).where(ScimResource.client_id == self.client.id)
        return stmt if kind is None else stmt.where(ScimResource.kind == kind)

    def _row(self, resource_type: ResourceType, resource_id: str | None) -> ScimResource:
        wanted = self._rows(resource_type.name).where(ScimResource.scim_id == str(resource_id))
        row = None if "\0" in str(resource_id) else db.session.scalar(wanted)
        if row is None:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return row

    def _resource(self, resource_type: ResourceType, row: ScimResource) -> Resource[Any]:
        model = self.service.get_model(resource_type)
        body = {**(row.data or {}), "id": row.scim_id}
        if row.kind == "Group" and isinstance(body.get("members"), list):
            body["members"] = self._located(body["members"])
        resource = model.model_validate(body)
        resource.meta = Meta(resource_type=resource_type.name, created=_when(row.created_at),
                             last_modified=_when(row.updated_at), version=_etag(row.version))
        return resource

    def _located(self, members: list[Any]) -> list[Any]:
        """Group members with the ``$ref`` of those that are this client's
        resources, relative to the SCIM root (the server makes it a URL)."""
        ids = {str(m["value"]) for m in members if isinstance(m, dict) and m.get("value")}
        kinds: dict[str, str] = {}
        if ids:
            kinds.update(db.session.execute(select(ScimResource.scim_id, ScimResource.kind).where(
                ScimResource.client_id == self.client.id, ScimResource.scim_id.in_(ids))).tuples().all())
        return [{**m, "$ref": f"{kinds[str(m['value'])]}s/{m['value']}"}
                if isinstance(m, dict) and str(m.get("value")) in kinds else m for m in members]

    def get(self, resource_type: ResourceType, resource_id: str, *,
            response_parameters: ResponseParameters[Any] | None = None) -> Resource[Any]:
        return self._resource(resource_type, self._row(resource_type, resource_id))

    def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *,
               position: Any = None) -> SearchPage:
        names = list(dict.fromkeys(str(rt.name) for rt in resource_types))
        by_name = {str(rt.name): rt for rt in resource_types}
        scim_filter = search_request.filter
        stmt = self._rows(None).where(ScimResource.kind.in_(names)).order_by(ScimResource.id)
        start = search_request.start_index_0 or 0
        if scim_filter is None:  # a plain listing (Okta's connection test, paging): the page alone, in SQL
            total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
            if search_request.count is not None:
                stmt = stmt.limit(search_request.count)
            rows = db.session.scalars(stmt.offset(start)).all()
            return SearchPage(total, [self._resource(by_name[row.kind], row) for row in rows])
        stmt = self._narrow(stmt, scim_filter)
        found = [self._resource(by_name[row.kind], row) for row in db.session.scalars(stmt)]
        if scim_filter is not None:
            if not scim_filter.models and found:
                models = tuple(dict.fromkeys(type(r) for r in found))
                scim_filter = ScimFilter[Union[models]](str(scim_filter))  # type: ignore[valid-type]  # noqa: UP007
            found = [r for r in found if scim_filter.match(r)]
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    @staticmethod
    def _narrow(stmt, scim_filter: ScimFilter[Any] | None):
        """Let SQL find the rows of a plain equality on a key column; the filter still decides."""
        node = getattr(scim_filter, "ast", None)
        if (not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str)
                or "\0" in node.value):
            return stmt
        attribute = str(node.attr_path).rpartition(":")[2].lower()
        if attribute in ("username", "displayname"):
            return stmt.where(ScimResource.key == node.value.casefold()[:255])
        if attribute == "externalid":
            return stmt.where(ScimResource.external_id == node.value[:255])
        return stmt

    # -- writing ---------------------------------------------------------
    @staticmethod
    def _data(resource: Resource[Any]) -> dict[str, Any]:
        data = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name in _DROPPED:
            data.pop(name, None)
        if _has_nul(data):
            raise InvalidValueException(detail="A value holds a NUL character")
        if isinstance(data.get("members"), list):
            members: dict[str, dict[str, Any]] = {}
            for member in data["members"]:
                member.pop("$ref", None)  # the server's own URL of the member, made on reading
                members.setdefault(str(member.get("value")), member)
            data["members"] = list(members.values())
        return data

    @staticmethod
    def _key(kind: str, data: dict[str, Any]) -> str:
        key = data.get("userName") if kind == "User" else data.get("displayName")
        return str(key or "").casefold()[:255]

    def _check_unique(self, kind: str, key: str, own_id: int | None) -> None:
        stmt = self._rows(kind).where(ScimResource.key == key)
        if own_id is not None:
            stmt = stmt.where(ScimResource.id != own_id)
        if db.session.scalar(stmt.limit(1)) is not None:
            name = "userName" if kind == "User" else "displayName"
            raise UniquenessException(detail=f"{name} is already taken")

    def _fill(self, row: ScimResource, data: dict[str, Any]) -> None:
        row.data = data
        row.key = self._key(row.kind, data)
        external = data.get("externalId")
        row.external_id = str(external)[:255] if external else None
        if row.kind == "User":
            row.active = data.get("active") is not False
            row.email = people.email_of(data)
        else:
            row.role = people.role_of(str(data.get("displayName") or ""))

    @staticmethod
    def _members(row: ScimResource) -> set[str]:
        return {str(m.get("value")) for m in (row.data or {}).get("members") or [] if isinstance(m, dict)}

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        kind = str(resource_type.name)
        data = self._data(resource)
        now = current_idp().clock.now()
        row = ScimResource(client_id=self.client.id, kind=kind, version=1, created_at=now, updated_at=now,
                           granted_roles=[])
        self._fill(row, data)
        self._check_unique(kind, row.key, None)
        row.client = self.client
        db.session.add(row)
        db.session.flush()
        audit.record("scim_created", subject=row.key, agreement=self.client.agreement.public_id,
                     details={"client": self.client.name, "type": kind, "resource": row.scim_id})
        self._sync(row, set())
        return self._resource(resource_type, row)

    def update(self, resource_type: ResourceType, resource: Resource[Any], *,
               expected_version: str | None = None) -> Resource[Any]:
        row = self._row(resource_type, resource.id)
        self._check_version(row, expected_version)
        data = self._data(resource)
        self.settled = True
        if data == row.data:
            self.unchanged(row.scim_id)
            return self._resource(resource_type, row)
        before = self._members(row)
        self._check_unique(row.kind, self._key(row.kind, data), row.id)  # before the row changes: no autoflush
        self._fill(row, data)
        row.version += 1
        row.updated_at = current_idp().clock.now()
        audit.record("scim_updated", subject=row.key, agreement=self.client.agreement.public_id,
                     details={"client": self.client.name, "type": row.kind, "resource": row.scim_id})
        self._sync(row, before)
        return self._resource(resource_type, row)

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        row = self._row(resource_type, resource_id)
        self._check_version(row, expected_version)
        audit.record("scim_deleted", subject=row.key, agreement=self.client.agreement.public_id,
                     details={"client": self.client.name, "type": row.kind, "resource": row.scim_id})
        before = self._members(row)
        if row.kind == "User":
            people.forget(self.client, row)
        self._leave_groups(row.scim_id)
        db.session.delete(row)
        db.session.flush()
        if row.kind == "Group":
            people.group_changed(self.client, before, set())

    def _leave_groups(self, scim_id: str) -> None:
        """A deleted resource is a member of none of this client's groups any more."""
        now = current_idp().clock.now()
        for group in db.session.scalars(self._rows("Group")):
            members = (group.data or {}).get("members") or []
            kept = [m for m in members if not (isinstance(m, dict) and str(m.get("value")) == scim_id)]
            if len(kept) == len(members):
                continue
            data = {key: value for key, value in group.data.items() if key != "members"}
            group.data = {**data, "members": kept} if kept else data
            group.version += 1
            group.updated_at = now

    @staticmethod
    def _check_version(row: ScimResource, expected: str | None) -> None:
        wanted = _version_of(expected)
        if wanted is not None and wanted != row.version:
            raise PreconditionFailedException(detail="the resource changed since that version")

    def _sync(self, row: ScimResource, before: set[str]) -> None:
        db.session.flush()
        if row.kind == "User":
            people.sync_user(self.client, row)
        else:
            people.group_changed(self.client, before, self._members(row))
        db.session.flush()


def stored(client: ProvisioningClient) -> int:
    """How many resources a client holds (the CLI's list)."""
    return db.session.scalar(select(func.count()).where(ScimResource.client_id == client.id)) or 0

