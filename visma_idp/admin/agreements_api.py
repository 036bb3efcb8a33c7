"""The admin REST API for agreements: the agreements, their members and
roles, invitations, audit log and one-time codes (``/admin/api/agreements``).

Who (``admin/bearer.py``): a system admin or a service with
``idp:admin:agreements`` reaches every agreement and may create them; an
agreement's admin (the agreement-wide role ``admin``) reaches their own
agreements only, with a token whose sign-in reached the agreement's required
level (``require``).

- ``GET /agreements`` (``?q=`` part of the name or the organisation number)
  lists what the caller may manage; ``POST /agreements`` creates one (system
  only);
- ``GET /agreements/{agreement}`` (the public id or the organisation number);
  ``PATCH`` changes its required level, domains or status (system only);
- ``GET /agreements/{agreement}/members``;
  ``PUT /agreements/{agreement}/members/{sub}/roles`` replaces a member's
  agreement-wide roles, or with ``client`` their roles in one app (a real
  change sends the "roles changed" notice, batched);
  ``DELETE /agreements/{agreement}/members/{sub}`` ends a membership;
- ``GET|POST /agreements/{agreement}/invitations``,
  ``DELETE /agreements/{agreement}/invitations/{invitation_id}``;
- ``GET /agreements/{agreement}/audit`` (``limit``, ``before``: newest first);
- ``POST /agreements/{agreement}/members/{sub}/one-time-code``: a person who
  also holds ``issue_one_time_codes`` for the member's email domain (the code
  is in this answer only; a service never may).

Rules:
- strict isolation: an agreement the caller may not manage is 404
  ``not_found``, exactly as one that does not exist; a member or invitation
  is looked up *within* the agreement of the URL, so another agreement's is
  the same 404;
- an agreement whose required level the person's token lacks is 403
  ``step_up_required`` (they know it exists);
- an admin cannot remove themselves or take away their own agreement-wide
  ``admin`` role (409 ``conflict``): an agreement never loses its last admin
  by accident;
- the changes are made and audited by ``agreements/``, with who made them;
  a refused request changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask_babel import gettext as _
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from .. import addresses
from ..agreements import invitations, service
from ..assurance import at_least
from ..errors import InvalidInput
from ..storage import Agreement, AgreementInvitation, AuditEvent, db, queries
from . import bearer, one_time_codes
from .bearer import AGREEMENTS, Problem, current_actor, error, json_answer

TAG = Tag(name="agreements", description="Agreements (companies), their members, invitations and audit log")
bp = APIBlueprint("admin_agreements_api", __name__, abp_tags=[TAG],
                  abp_security=[{"bearer": []}])
bp.before_request(bearer.require_actor)

# text a person typed: no control characters (PostgreSQL refuses NUL, logs must stay one line)
Text = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
RoleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$",
                                description="A short word: letters, digits and _ - : .")]
ClientId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Level = Literal["mfa", "phr"]

ERRORS: dict[Any, Any] = {400: Problem, 401: Problem, 403: Problem, 404: Problem}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgreementPath(BaseModel):
    agreement: str = Field(pattern=r"^[A-Za-z0-9-]{1,36}$", description="The public id or the organisation number")


class MemberPath(AgreementPath):
    sub: str = Field(pattern=r"^[A-Za-z0-9-]{1,36}$", description="The member's subject identifier")


class InvitationPath(AgreementPath):
    invitation_id: int = Field(ge=1, le=2**53)


class ListQuery(Strict):
    q: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$",
                          description="Part of the name or of a domain, digits of the organisation number, or the id")
    limit: int = Field(200, ge=1, le=1000, description="At most this many (by name); total says how many in all")


class AuditQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    before: int | None = Field(None, ge=1, le=2**53, description="Only events older than this event id")


class Role(BaseModel):
    role: str
    client: str | None = Field(None, description="The app the role holds in; null: every app of the agreement")


class AgreementOut(BaseModel):
    id: str
    name: str
    org_number: str
    domains: list[str]
    status: Literal["active", "closed"]
    require: Level | None


class AgreementList(BaseModel):
    agreements: list[AgreementOut]
    total: int


class AgreementIn(Strict):
    name: Text = Field(min_length=1, max_length=200)
    org_number: str = Field(pattern=r"^[0-9 ]{9,11}$", description="Nine digits with the mod-11 check digit")
    domains: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")]] = Field([], max_length=50)
    require: Level | None = None


class AgreementPatch(Strict):
    require: Level | None = Field(None, description="The level its members must reach; null: none")
    domains: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")]] | None = Field(None, max_length=50)
    status: Literal["active", "closed"] | None = Field(None, description="closed: out of use at once; active: reopened")


class MemberOut(BaseModel):
    sub: str
    email: str
    name: str
    roles: list[Role]


class MemberList(BaseModel):
    members: list[MemberOut]


class RolesIn(Strict):
    roles: list[RoleName] = Field(max_length=50)
    client: ClientId | None = Field(None, description="Only the roles in this app (null: the agreement-wide roles)")


class InvitationIn(Strict):
    email: Text = Field(min_length=1, max_length=320)
    roles: list[RoleName] = Field([], max_length=50)
    client: ClientId | None = None


class InvitationOut(BaseModel):
    id: int
    email: str
    roles: list[Role]
    created_at: int
    expires_at: int


class InvitationList(BaseModel):
    invitations: list[InvitationOut]


class AuditEventOut(BaseModel):
    id: int
    at: int
    event: str
    outcome: str
    subject: str | None = Field(description="Whom the event was about (an email address)")
    by: str | None = Field(description="The admin who did it (an email address), when a person did")
    client_id: str | None


class AuditLog(BaseModel):
    events: list[AuditEventOut]
    next_before: int | None = Field(description="Pass as before= for the next (older) page; null: no more")


class OneTimeCode(BaseModel):
    code: str
    expires_at: int
    email: str


def _agreement_out(row: Agreement) -> dict:
    return {"id": row.public_id, "name": row.name, "org_number": row.org_number, "domains": list(row.domains or []),
            "status": row.status, "require": service.require_of(row)}


def _roles(roles: list[dict]) -> list[dict]:
    return [{"role": r["role"], "client": r.get("client")} for r in roles or []]


def _not_found():
    db.session.rollback()
    return error(404, "not_found", _("There is no such agreement, member or invitation, or you cannot manage it."))


def _manages(agreement: Agreement) -> bool:
    who = current_actor()
    return who.system(AGREEMENTS) or (who.user is not None and invitations.may_invite(who.user, agreement))


def _find(path: AgreementPath) -> Agreement | None:
    """The agreement the URL names by its public id or organisation number (not by row id)."""
    agreement = service.find(path.agreement)
    return agreement if agreement is not None and path.agreement in (agreement.public_id, agreement.org_number) \
        else None


def _agreement(path: AgreementPath):
    """The agreement of the URL when the caller may manage it now, else (None, the refusal)."""
    agreement = _find(path)
    if agreement is None or not _manages(agreement):
        return None, _not_found()
    who = current_actor()
    if who.user is not None and not at_least(who.acr, agreement.require_acr):
        return None, error(403, "step_up_required", _(
            "%(agreement)s requires two-step verification: use a token from a sign-in with your second step.",
            agreement=agreement.name))
    return agreement, None


def _member(path: MemberPath):
    agreement, refused = _agreement(path)
    if refused is not None:
        return None, None, refused
    found = service.member_by_sub(agreement, path.sub)
    if found is None:
        return None, None, _not_found()
    return agreement, found[0], None


def _known_client(client_id: str | None):
    if client_id is not None and queries.client_by_id(client_id) is None:
        return error(400, "invalid_request", _("There is no app with the id %(client)s.", client=client_id),
                     field="client")
    return None


@bp.get("/admin/api/agreements", summary="The agreements the caller may manage",
        responses={200: AgreementList, **ERRORS})
def list_agreements(query: ListQuery):
    who = current_actor()
    if who.system(AGREEMENTS):
        rows, total = service.search(query.q or "", limit=query.limit)
    else:
        mine = sorted((m.agreement for m in service.memberships_of(who.user.id)
                       if invitations.may_invite(who.user, m.agreement)), key=lambda row: row.name) \
            if who.user is not None else []
        found = [row for row in mine if not query.q or service.matches(row, query.q)]
        rows, total = found[:query.limit], len(found)
    return json_answer(200, {"agreements": [_agreement_out(row) for row in rows], "total": total})


@bp.post("/admin/api/agreements", summary="Create an agreement (system admins)",
         responses={201: AgreementOut, 409: Problem, **ERRORS})
def create_agreement(body: AgreementIn):
    if not current_actor().system(AGREEMENTS):
        return error(403, "forbidden", _("Only a system admin may create agreements."))
    if service.find("".join(body.org_number.split())) is not None:
        return error(409, "conflict", _("An agreement with this organisation number exists already."),
                     field="org_number")
    try:
        row = service.create(body.name, body.org_number, domains=body.domains, require=body.require)
    except InvalidInput as exc:
        db.session.rollback()
        field = "org_number" if "org-number" in str(exc) else "domains" if "domain" in str(exc) else "name"
        return error(400, "invalid_request", _("The field %(field)s is missing or not valid.", field=field),
                     field=field, detail=str(exc))
    db.session.commit()
    return json_answer(201, _agreement_out(row))


@bp.get("/admin/api/agreements/<agreement>", summary="One agreement", responses={200: AgreementOut, **ERRORS})
def get_agreement(path: AgreementPath):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    return json_answer(200, _agreement_out(agreement))


@bp.patch("/admin/api/agreements/<agreement>", summary="Change an agreement's level, domains or status (system admins)",
          responses={200: AgreementOut, **ERRORS})
def update_agreement(path: AgreementPath, body: AgreementPatch):
    agreement = _find(path)
    if agreement is None or not current_actor().system(AGREEMENTS):
        return _not_found() if agreement is None or not _manages(agreement) else error(
            403, "forbidden", _("Only a system admin may change an agreement's settings."))
    who = current_actor().user
    try:
        if "require" in body.model_fields_set or body.domains is not None:
            service.update_agreement(
                agreement, by=who,
                require=body.require if "require" in body.model_fields_set else service.require_of(agreement),
                domains=body.domains if body.domains is not None else list(agreement.domains or []))
        if body.status is not None:
            service.set_status(agreement, body.status, by=who)
    except InvalidInput as exc:
        db.session.rollback()
        return error(400, "invalid_request", _("The field %(field)s is missing or not valid.", field="domains"),
                     field="domains", detail=str(exc))
    db.session.commit()
    return json_answer(200, _agreement_out(agreement))


@bp.get("/admin/api/agreements/<agreement>/members", summary="The agreement's members and their roles",
        responses={200: MemberList, **ERRORS})
def list_members(path: AgreementPath):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    return json_answer(200, {"members": [
        {"sub": user.sub, "email": user.email, "name": user.name or "", "roles": _roles(row.roles)}
        for user, row in service.members(agreement)]})


@bp.put("/admin/api/agreements/<agreement>/members/<sub>/roles", summary="Replace a member's roles (agreement-wide or in one app)",
        responses={200: MemberOut, 409: Problem, **ERRORS})
def set_roles(path: MemberPath, body: RolesIn):
    agreement, member, refused = _member(path)
    if refused is not None:
        return refused
    refused = _known_client(body.client)
    if refused is not None:
        return refused
    who = current_actor()
    if invitations.takes_own_admin_role(who.user, member, body.roles, body.client):
        return error(409, "conflict", _("You cannot take away your own %(role)s role. Ask another admin of "
                                        "%(agreement)s to do it.", role=invitations.ADMIN_ROLE,
                                        agreement=agreement.name))
    service.set_roles(agreement, member, body.roles, body.client, by=who.user)
    db.session.commit()
    row = service.membership(member.id, agreement.id)
    return json_answer(200, {"sub": member.sub, "email": member.email, "name": member.name or "",
                             "roles": _roles(row.roles if row is not None else [])})


@bp.delete("/admin/api/agreements/<agreement>/members/<sub>", summary="End a membership",
           responses={204: None, 409: Problem, **ERRORS})
def remove_member(path: MemberPath):
    agreement, member, refused = _member(path)
    if refused is not None:
        return refused
    who = current_actor()
    if who.user is not None and member.id == who.user.id:
        return error(409, "conflict", _("You cannot remove yourself from %(agreement)s. Ask another admin to do it.",
                                        agreement=agreement.name))
    service.remove_member(agreement, member, by=who.user)
    db.session.commit()
    return "", 204, bearer.NO_STORE


def _invitation_out(row: AgreementInvitation) -> dict:
    return {"id": row.id, "email": row.email, "roles": _roles(row.roles), "created_at": row.created_at,
            "expires_at": row.expires_at}


@bp.get("/admin/api/agreements/<agreement>/invitations", summary="The pending invitations",
        responses={200: InvitationList, **ERRORS})
def list_invitations(path: AgreementPath):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    return json_answer(200, {"invitations": [_invitation_out(row) for row in service.pending_invitations(agreement)]})


@bp.post("/admin/api/agreements/<agreement>/invitations", summary="Invite someone by email (the invitation mail is sent)",
         responses={201: InvitationOut, 409: Problem, **ERRORS})
def invite(path: AgreementPath, body: InvitationIn):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    try:
        address = addresses.parse(body.email).email
    except addresses.AddressError as exc:
        return error(400, "bad_email", exc.message, field="email")
    refused = _known_client(body.client)
    if refused is not None:
        return refused
    if body.client is not None and not body.roles:
        return error(400, "invalid_request", _("Give at least one role in the app."), field="roles")
    if agreement.status != "active":
        return error(409, "conflict", _("%(agreement)s is closed.", agreement=agreement.name))
    try:
        row = invitations.invite(agreement, address, body.roles, invited_by=current_actor().user,
                                 client_id=body.client)
    except invitations.AlreadyMember:
        db.session.rollback()
        return error(409, "conflict", _("%(email)s is a member of %(agreement)s already.", email=address,
                                        agreement=agreement.name), field="email")
    except InvalidInput as exc:
        db.session.rollback()
        return error(400, "invalid_request", _("The invitation could not be sent. Check the address and the roles."),
                     detail=str(exc))
    db.session.commit()
    return json_answer(201, _invitation_out(row))


@bp.delete("/admin/api/agreements/<agreement>/invitations/<invitation_id>", summary="Revoke a pending invitation",
           responses={204: None, **ERRORS})
def revoke_invitation(path: InvitationPath):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    row = service.invitation_of(agreement, path.invitation_id)
    if row is None:
        return _not_found()
    invitations.revoke(row, current_actor().user)
    db.session.commit()
    return "", 204, bearer.NO_STORE


@bp.get("/admin/api/agreements/<agreement>/audit", summary="The agreement's audit log, newest first",
        responses={200: AuditLog, **ERRORS})
def audit_log(path: AgreementPath, query: AuditQuery):
    agreement, refused = _agreement(path)
    if refused is not None:
        return refused
    rows: list[AuditEvent] = service.audit_log(agreement, limit=query.limit + 1, before=query.before)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    emails = service.audit_actors(rows)
    events = [{"id": row.id, "at": row.at, "event": row.event, "outcome": row.outcome, "subject": row.subject,
               "by": emails.get(row.details["by"]) if isinstance(row.details, dict)
               and isinstance(row.details.get("by"), int) else None,
               "client_id": row.client_id or (row.details or {}).get("via_client")} for row in rows]
    return json_answer(200, {"events": events, "next_before": rows[-1].id if more and rows else None})


@bp.post("/admin/api/agreements/<agreement>/members/<sub>/one-time-code",
         summary="A one-time code for a member who lost their second factor (shown in this answer only)",
         responses={201: OneTimeCode, 409: Problem, **ERRORS})
def issue_code(path: MemberPath):
    agreement, member, refused = _member(path)
    if refused is not None:
        return refused
    admin = current_actor().user
    if admin is None:
        return error(403, "forbidden", _("Only a person may issue one-time codes."))
    try:
        issued = one_time_codes.issue(admin, member, via="api", agreement=agreement.public_id)
    except one_time_codes.IssueRefused as exc:
        db.session.commit()  # the refusal's audit row
        return error(exc.status, exc.reason, exc.message)
    db.session.commit()
    return json_answer(201, {"code": issued.code, "expires_at": issued.expires_at, "email": issued.target.email})
