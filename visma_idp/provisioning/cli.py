"""The ``visma-idp provisioning`` commands: register a payroll or HR system
as a SCIM provisioning client of one agreement (its base URL and bearer token
are printed once), list them, rotate a token, change which attributes a
client is the authority for, remove one. Refused input is ``InvalidInput``:
exit status 1 with the reason (``cli.py``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ..cli_support import provider_app, table, when
from ..errors import InvalidInput
from .sources import ATTRIBUTES

if TYPE_CHECKING:
    from ..storage import ProvisioningClient

# checked by clients.check_attributes, so an unknown one is refused input (exit status 1) like the rest
_ATTRIBUTE_HELP = f"one of {', '.join(ATTRIBUTES)}"


@click.group()
def provisioning() -> None:
    """SCIM provisioning clients (payroll and HR systems): create, list, rotate, update, remove."""


def _client(name: str) -> ProvisioningClient:
    from .clients import by_name

    row = by_name(name)
    if row is None:
        raise InvalidInput(f"NAME: no provisioning client {name!r} (see `visma-idp provisioning list`)")
    return row


def _as_dict(row: ProvisioningClient) -> dict[str, Any]:
    from .store import stored

    return {"name": row.name, "agreement": row.agreement.public_id, "org_number": row.agreement.org_number,
            "authoritative_for": list(row.authoritative_for or []), "resources": stored(row),
            "created_at": when(row.created_at), "rotated_at": when(row.rotated_at),
            "last_used_at": when(row.last_used_at)}


def _print_token(row: ProvisioningClient, token: str) -> None:
    from .scim import base_url

    click.echo(f"SCIM base URL: {base_url()}")
    click.echo(f"Bearer token:  {token}")
    click.echo("The token is shown only now: store it in the provisioning system. "
               "`visma-idp provisioning rotate` gives a new one.")


@provisioning.command("create")
@click.option("--agreement", "agreement_ref", required=True, help="The agreement's id or organisation number.")
@click.option("--name", required=True, help="A name for the system, like payroll or entra (unique).")
@click.option("--authoritative-for", "attributes", multiple=True, metavar="ATTR",
              help=f"An attribute this system is the authority for in the agreement ({_ATTRIBUTE_HELP}; repeatable).")
def provisioning_create(agreement_ref: str, name: str, attributes: tuple[str, ...]) -> None:
    """Register a provisioning client of an agreement; print its SCIM base URL and bearer token once."""
    from sqlalchemy.exc import IntegrityError

    from ..agreements.service import find
    from ..storage import db
    from .clients import create

    app = provider_app()
    with app.app_context():
        agreement = find(agreement_ref)
        if agreement is None:
            raise InvalidInput(f"--agreement: no agreement with the id or organisation number {agreement_ref!r} "
                               "(see `visma-idp agreements list`)")
        issued = create(agreement, name, authoritative_for=attributes)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise InvalidInput(f"--name: a provisioning client named {name!r} was created at the same time") from None
        _print_token(issued.client, issued.token)


@provisioning.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def provisioning_list(as_json: bool) -> None:
    """List provisioning clients, their agreement, authority and resources (never a token)."""
    from .clients import all_clients

    app = provider_app()
    with app.app_context():
        items = [_as_dict(row) for row in all_clients()]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    table(["name", "org_number", "authoritative_for", "resources", "last_used_at"],
          [[i["name"], i["org_number"], ",".join(i["authoritative_for"]) or None, i["resources"], i["last_used_at"]]
           for i in items])


@provisioning.command("rotate")
@click.argument("name")
def provisioning_rotate(name: str) -> None:
    """Give a provisioning client a new bearer token (the old one stops working at once); print it once."""
    from ..storage import db
    from .clients import rotate

    app = provider_app()
    with app.app_context():
        issued = rotate(_client(name))
        db.session.commit()
        _print_token(issued.client, issued.token)


@provisioning.command("update")
@click.argument("name")
@click.option("--authoritative-for", "attributes", multiple=True, metavar="ATTR",
              help=f"An attribute this system is the authority for ({_ATTRIBUTE_HELP}; repeatable); replaces the list.")
@click.option("--no-authority", is_flag=True, help="Make the system the authority for no attribute.")
def provisioning_update(name: str, attributes: tuple[str, ...], no_authority: bool) -> None:
    """Change which attributes a provisioning client is the authority for."""
    from ..storage import db
    from .clients import set_authority

    if bool(attributes) == no_authority:
        raise InvalidInput("give --authoritative-for (repeatable) or --no-authority")
    app = provider_app()
    with app.app_context():
        row = _client(name)
        set_authority(row, attributes)
        db.session.commit()
        click.echo(json.dumps(_as_dict(row), indent=2))


@provisioning.command("remove")
@click.argument("name")
def provisioning_remove(name: str) -> None:
    """Remove a provisioning client and its resources; the people and memberships it made stay."""
    from ..storage import db
    from .clients import remove

    app = provider_app()
    with app.app_context():
        remove(_client(name))
        db.session.commit()
        click.echo(f"removed provisioning client {name}")
