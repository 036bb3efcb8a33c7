"""The ``visma-idp agreements`` commands: create and list agreements
(companies), add and remove their members, list members and their roles,
invite someone by email (``invitations.py``: the link goes by email only).

Every change goes through ``service.py`` (audited; a change of roles queues
the "your roles have changed" email). Refused input is ``InvalidInput``:
exit status 1 with the reason (``cli.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..cli_support import provider_app, table, when
from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..storage import Agreement, Membership, User


@click.group()
def agreements() -> None:
    """Agreements (companies): create and list them, add and remove members and their roles."""


def _address(value: str) -> str:
    """An address given on the command line, in its stored spelling."""
    from ..addresses import AddressError, parse

    try:
        return parse(value).email
    except AddressError as exc:
        raise InvalidInput(f"--email: not a valid email address: {value!r} ({exc.detail})") from None


def _agreement(value: str) -> Agreement:
    from .service import find

    row = find(value)
    if row is None:
        raise InvalidInput(f"--agreement: no agreement with the id or organisation number {value!r} "
                           "(see `visma-idp agreements list`)")
    return row


def _user(email: str) -> User:
    from ..storage import queries

    user = queries.user_by_email(email)
    if user is None:
        raise InvalidInput(f"--email: no user with email {email} (see `visma-idp users list`)")
    return user


@contextmanager
def _committed(conflict: str) -> Iterator[None]:
    """Run the change and commit it; a unique constraint hit by a concurrent
    command (at the service's flush or at the commit) is refused input."""
    from sqlalchemy.exc import IntegrityError

    from ..storage import db

    try:
        yield
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise InvalidInput(conflict) from None


def _require(acr: str | None) -> str | None:
    """``mfa``/``phr`` for an agreement's required acr (the words of --require-*)."""
    from .service import REQUIRE

    return next((short for short, value in REQUIRE.items() if value == acr), acr)


def as_dict(row: Agreement) -> dict[str, Any]:
    return {"id": row.public_id, "name": row.name, "org_number": row.org_number, "domains": list(row.domains or []),
            "status": row.status, "require_acr": row.require_acr}


def _membership_dict(agreement: Agreement, user: User, row: Membership) -> dict[str, Any]:
    return {"agreement": agreement.public_id, "org_number": agreement.org_number, "email": user.email,
            "roles": list(row.roles or [])}


def _roles_text(roles: list[dict[str, Any]]) -> str:
    """``approver, employee (demo-client)``: a role for one app names it."""
    return ", ".join(r["role"] if r.get("client") is None else f"{r['role']} ({r['client']})" for r in roles)


def _roles_for_app(roles: tuple[str, ...], client_id: str | None) -> None:
    if client_id is not None and not roles:
        raise InvalidInput("--client needs at least one --role")


def _known_app(client_id: str | None) -> None:
    """``--client`` names a registered client (inside the app context)."""
    from ..storage import queries

    if client_id is not None and queries.client_by_id(client_id) is None:
        raise InvalidInput(f"--client: no client {client_id!r} (see `visma-idp clients list`)")


@agreements.command("create")
@click.option("--name", required=True, help="The company's name.")
@click.option("--org-number", required=True, help="Its Norwegian organisation number: nine digits (spaces allowed).")
@click.option("--domain", "domains", multiple=True, help="An email domain of the company, like example.no (repeatable).")
@click.option("--require-mfa", is_flag=True, help="Members must have signed in with two factors to work in it.")
@click.option("--require-phishing-resistant", is_flag=True,
              help="Members must have signed in with a passkey or security key to work in it.")
def agreements_create(name: str, org_number: str, domains: tuple[str, ...], require_mfa: bool,
                      require_phishing_resistant: bool) -> None:
    """Create an agreement and print it as JSON."""
    from .service import create

    if require_mfa and require_phishing_resistant:
        raise InvalidInput("use either --require-mfa or --require-phishing-resistant, not both")
    require = "phr" if require_phishing_resistant else "mfa" if require_mfa else None
    app = provider_app()
    with app.app_context():
        with _committed("an agreement with this organisation number was created at the same time"):
            row = create(name, org_number, domains=domains, require=require)
        click.echo(json.dumps(as_dict(row), indent=2))


@agreements.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def agreements_list(as_json: bool) -> None:
    """List agreements with their number of members and the level they require."""
    from .service import all_agreements, member_counts

    app = provider_app()
    with app.app_context():
        counts = member_counts()
        items = [{**as_dict(a), "members": counts.get(a.id, 0)} for a in all_agreements()]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    table(["id", "name", "org_number", "members", "require"],
          [[i["id"], i["name"], i["org_number"], i["members"], _require(i["require_acr"])] for i in items])


@agreements.command("add-member")
@click.option("--agreement", "agreement_ref", required=True, help="The agreement's id or organisation number.")
@click.option("--email", required=True, help="The user's email address (the user must exist).")
@click.option("--role", "roles", multiple=True,
              help="A role to give (repeatable); added to the roles the member has already.")
@click.option("--client", "client_id", help="Give the roles in this app (client id) only; default: in every app.")
def agreements_add_member(agreement_ref: str, email: str, roles: tuple[str, ...], client_id: str | None) -> None:
    """Make a user a member of an agreement, or give a member more roles; print the membership as JSON."""
    from .service import add_member

    _roles_for_app(roles, client_id)
    email = _address(email)
    app = provider_app()
    with app.app_context():
        agreement = _agreement(agreement_ref)
        user = _user(email)
        _known_app(client_id)
        with _committed(f"{user.email} was added to this agreement at the same time: try again"):
            row = add_member(agreement, user, roles, client_id=client_id)
        out = _membership_dict(agreement, user, row)
    click.echo(json.dumps(out, indent=2))


@agreements.command("remove-member")
@click.option("--agreement", "agreement_ref", required=True, help="The agreement's id or organisation number.")
@click.option("--email", required=True, help="The member's email address.")
def agreements_remove_member(agreement_ref: str, email: str) -> None:
    """End a user's membership of an agreement (they are emailed the roles they lost)."""
    from ..storage import db
    from .service import remove_member

    email = _address(email)
    app = provider_app()
    with app.app_context():
        agreement = _agreement(agreement_ref)
        user = _user(email)
        what = f"{agreement.name} ({agreement.org_number})"
        if not remove_member(agreement, user):
            raise InvalidInput(f"{user.email} is not a member of {what}")
        db.session.commit()
    click.echo(f"removed {email} from {what}")


@agreements.command("members")
@click.option("--agreement", "agreement_ref", required=True, help="The agreement's id or organisation number.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def agreements_members(agreement_ref: str, as_json: bool) -> None:
    """List an agreement's members and their roles (a role for one app names the app)."""
    from .service import members

    app = provider_app()
    with app.app_context():
        agreement = _agreement(agreement_ref)
        items = [{**_membership_dict(agreement, user, row), "name": user.name, "last_used_at": row.last_used_at}
                 for user, row in members(agreement)]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    table(["email", "name", "roles", "last_used"],
          [[i["email"], i["name"], _roles_text(i["roles"]) or None, when(i["last_used_at"])] for i in items])


@agreements.command("invite")
@click.option("--agreement", "agreement_ref", required=True, help="The agreement's id or organisation number.")
@click.option("--email", required=True, help="The person's own email address (with or without an account).")
@click.option("--role", "roles", multiple=True, help="A role the invitation gives (repeatable).")
@click.option("--client", "client_id", help="Give the roles in this app (client id) only; default: in every app.")
def agreements_invite(agreement_ref: str, email: str, roles: tuple[str, ...], client_id: str | None) -> None:
    """Email an invitation to join an agreement (an earlier one to the address stops working); print it as JSON."""
    from .invitations import LIFETIME, invite

    _roles_for_app(roles, client_id)
    email = _address(email)
    app = provider_app()
    with app.app_context():
        agreement = _agreement(agreement_ref)
        _known_app(client_id)
        with _committed(f"{email} was invited to this agreement at the same time: try again"):
            row = invite(agreement, email, roles, invited_by=None, client_id=client_id)
        out = {"id": row.id, "agreement": agreement.public_id, "email": row.email, "roles": list(row.roles),
               "expires_at": when(row.expires_at)}
    click.echo(json.dumps(out, indent=2))
    click.echo(f"the link was emailed to {email}; it works once, for {LIFETIME // 86400} days", err=True)
