"""The ``visma-idp users`` and ``visma-idp admin`` commands: create, invite
and list users, issue one-time codes, and grant or revoke admin rights:
rights for email domains, system admins (``--system``) and roles in an
agreement (``--agreement ... --role admin``: an agreement admin, through
``agreements/service.py``)."""

from __future__ import annotations

import sys

import click

from ..cli_support import provider_app, table, when
from ..errors import InvalidInput
from .rights import RIGHTS


@click.group()
def users() -> None:
    """Create (or invite) and list users."""


def _address(value: str, option: str = "--email") -> str:
    """An address given on the command line, in its stored spelling (``addresses.py``).

    Raises:
        InvalidInput: not exactly one valid address (exit status 1, the reason in plain English).
    """
    from .service import parse_email

    try:
        return parse_email(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {exc}") from None


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users.command("create")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option("--name", required=True, help="Full name.")
@click.option("--password", help="Password (default: prompted, or one line read from stdin).")
@click.option("--invite", is_flag=True,
              help="Set no password: create a pending account and email its owner a Welcome message with an "
                   "activation link (the mail worker sends it).")
def users_create(email: str, name: str, password: str | None, invite: bool) -> None:
    """Create a user.

    With --invite the account waits for activation: its owner gets a Welcome
    email whose link (single use, ACTIVATION_LIFETIME) lets them choose a
    password. Otherwise the password comes from --password, a prompt, or one
    line on stdin, and must satisfy the password policy.
    """
    from ..storage import db
    from .service import create_user, invite_user

    if invite and password is not None:
        raise InvalidInput("use either --password or --invite, not both")
    email = _address(email)
    app = provider_app()
    if invite:
        with app.app_context():
            user = invite_user(email, name)
            db.session.commit()
            click.echo(f"created user {user.id} {user.email} (pending: activation email queued)")
        return
    if password is None:
        password = _read_password()
    if not password:
        raise InvalidInput("a password is required")
    with app.app_context():
        user = create_user(email, name, password)
        db.session.commit()
        click.echo(f"created user {user.id} {user.email}")


@users.command("resend-activation")
@click.option("--email", required=True, help="Email address of the pending account.")
def users_resend_activation(email: str) -> None:
    """Email a pending user a new activation link; earlier links stop working."""
    from ..account.activation import resend_activation
    from ..storage import db, queries

    app = provider_app()
    with app.app_context():
        user = queries.user_by_email(_address(email))
        if user is None:
            raise InvalidInput(f"no user with email {email}")
        resend_activation(user)
        db.session.commit()
        click.echo(f"activation email queued for {user.email}")


@users.command("list")
def users_list() -> None:
    """List users; `active` is yes, no (disabled), pending (not activated yet) or locked."""
    from .service import list_users

    app = provider_app()
    shown = {"active": "yes", "disabled": "no"}
    with app.app_context():
        rows = [[u.id, u.email, u.name, shown.get(u.status, u.status)] for u in list_users()]
    table(["id", "email", "name", "active"], rows)


@users.command("one-time-code")
@click.option("--email", required=True, help="Email address of the user who lost their second factor.")
@click.option("--admin", "admin_email",
              help="Issue as this admin (their right for the user's domain is checked). "
                   "Without it the command runs as the operator and may issue for anyone.")
def users_one_time_code(email: str, admin_email: str | None) -> None:
    """Create a one-time code that lets a user pass the second step of a sign-in once.

    The code is printed once (it is stored only as a keyed digest), lives
    ONE_TIME_CODE_LIFETIME seconds (10 minutes), works once and voids the
    user's older codes. After using it the user must set up a new factor
    before the sign-in ends. The user is emailed when the code is created and
    when it is used; both are audited. Give the code to the user yourself
    (phone, in person), never by email.
    """
    from ..storage import db, queries
    from .one_time_codes import IssueRefused, issue_for_email

    app = provider_app()
    with app.app_context():
        admin = None
        email = _address(email)
        if admin_email is not None:
            admin = queries.user_by_email(_address(admin_email, "--admin"))
            if admin is None:
                raise InvalidInput(f"no user with email {admin_email}")
        try:
            issued = issue_for_email(admin, email, via="cli")
        except IssueRefused as exc:
            db.session.commit()  # the refusal is audited
            raise InvalidInput(f"refused ({exc.reason}): {exc.message}") from None
        db.session.commit()
        click.echo(f"one-time code for {issued.target.email}: {issued.code}")
        click.echo(f"valid until {when(issued.expires_at)}, single use; it is not shown again")


@click.group("admin")
def admin_group() -> None:
    """Admins' rights: system admins, agreement roles, and who may issue one-time codes for which email domains."""


def _rights_user(email: str):
    from ..storage import queries

    user = queries.user_by_email(_address(email))
    if user is None:
        raise InvalidInput(f"no user with email {email}")
    return user


def _which(right: str | None, system: bool, agreement: str | None) -> str:
    """Which kind of grant or revoke the options ask for: ``right``, ``system`` or ``agreement``.

    Raises:
        click.UsageError: none or more than one (exit status 2).
    """
    given = [name for name, value in (("right", right), ("system", system), ("agreement", agreement)) if value]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --right, --system and --agreement")
    return given[0]


def _check_options(kind: str, domains: tuple[str, ...], roles: tuple[str, ...], client_id: str | None,
                   *, domains_needed: bool) -> None:
    if kind != "right" and domains:
        raise click.UsageError("--domain goes with --right only")
    if kind != "agreement" and (roles or client_id):
        raise click.UsageError("--role and --client go with --agreement only")
    if kind == "right" and domains_needed and not domains:
        raise click.UsageError("--right needs at least one --domain")
    if kind == "agreement" and not roles:
        raise click.UsageError("--agreement needs at least one --role")


def _agreement(value: str):
    from ..agreements import service

    row = service.find(value)
    if row is None:
        raise InvalidInput(f"--agreement: no agreement with the id or organisation number {value!r} "
                           "(see `visma-idp agreements list`)")
    return row


def _known_client(client_id: str | None) -> None:
    from ..storage import queries

    if client_id is not None and queries.client_by_id(client_id) is None:
        raise InvalidInput(f"--client: no client {client_id!r} (see `visma-idp clients list`)")


def _roles_text(roles: list[dict]) -> str:
    """``admin, approver (expense)``: a role in one app names the app."""
    return ", ".join(r["role"] if r.get("client") is None else f"{r['role']} ({r['client']})" for r in roles) \
        or "no roles"


@admin_group.command("grant")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", type=click.Choice(list(RIGHTS)), help="A right held for email domains (with --domain).")
@click.option("--domain", "domains", multiple=True,
              help="Email domain the right covers, like example.no (repeatable). Exact match only: "
                   "subdomains are granted one by one.")
@click.option("--system", is_flag=True,
              help="Make the user a system admin: the console at /admin (agreements, clients, upstreams, keys).")
@click.option("--agreement", "agreement_ref",
              help="Give roles in this agreement (its id or organisation number), with --role; the user becomes a "
                   "member if they are not one. --role admin makes an agreement admin.")
@click.option("--role", "roles", multiple=True, help="A role in the agreement (repeatable), like admin.")
@click.option("--client", "client_id", help="With --agreement: the roles hold in this app (client id) only.")
def admin_grant(email: str, right: str | None, domains: tuple[str, ...], system: bool, agreement_ref: str | None,
                roles: tuple[str, ...], client_id: str | None) -> None:
    """Give an admin a right for email domains (added to the domains they hold),
    make them a system admin (--system), or give them roles in an agreement
    (--agreement ... --role admin: an agreement admin). Audited."""
    from sqlalchemy.exc import IntegrityError

    from ..storage import db
    from . import rights

    kind = _which(right, system, agreement_ref)
    _check_options(kind, domains, roles, client_id, domains_needed=True)
    app = provider_app()
    with app.app_context():
        user = _rights_user(email)
        if kind == "right":
            assert right is not None
            row = rights.grant(user, right, domains)
            db.session.commit()
            click.echo(f"{user.email} holds {right} for: {', '.join(row.domains)}")
            return
        if kind == "system":
            rights.grant(user, rights.SYSTEM_ADMIN, [])
            db.session.commit()
            click.echo(f"{user.email} is a system admin")
            return
        from ..agreements import service

        assert agreement_ref is not None
        agreement = _agreement(agreement_ref)
        _known_client(client_id)
        try:
            membership = service.add_member(agreement, user, roles, client_id=client_id)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise InvalidInput(f"{user.email} was added to this agreement at the same time: try again") from None
        click.echo(f"{user.email} holds in {agreement.name} ({agreement.org_number}): "
                   f"{_roles_text(membership.roles or [])}")


@admin_group.command("revoke")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", type=click.Choice(list(RIGHTS)), help="A right held for email domains.")
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable; default: the whole right).")
@click.option("--system", is_flag=True, help="The user is no longer a system admin.")
@click.option("--agreement", "agreement_ref",
              help="Take roles in this agreement (its id or organisation number), with --role; their other roles stay.")
@click.option("--role", "roles", multiple=True, help="A role to take away (repeatable), like admin.")
@click.option("--client", "client_id", help="With --agreement: the roles in this app (client id), not every app's.")
def admin_revoke(email: str, right: str | None, domains: tuple[str, ...], system: bool, agreement_ref: str | None,
                 roles: tuple[str, ...], client_id: str | None) -> None:
    """Take a right from an admin (for some domains or entirely), end a system
    admin (--system), or take roles in an agreement (--agreement ... --role). Audited."""
    from ..storage import db
    from . import rights

    kind = _which(right, system, agreement_ref)
    _check_options(kind, domains, roles, client_id, domains_needed=False)
    app = provider_app()
    with app.app_context():
        user = _rights_user(email)
        if kind == "right":
            assert right is not None
            removed = rights.revoke(user, right, list(domains) if domains else None)
            db.session.commit()
            click.echo(f"{user.email}: {right} removed for: {', '.join(removed) or 'no domain (none held)'}")
            return
        if kind == "system":
            was = user.id in {u.id for u in rights.system_admins()}
            rights.revoke(user, rights.SYSTEM_ADMIN)
            db.session.commit()
            click.echo(f"{user.email} is no longer a system admin" if was else f"{user.email} was no system admin")
            return
        from ..agreements import service

        assert agreement_ref is not None
        agreement = _agreement(agreement_ref)
        membership = service.membership(user.id, agreement.id)
        if membership is None:
            raise InvalidInput(f"{user.email} is not a member of {agreement.name} ({agreement.org_number})")
        before = {r["role"] for r in membership.roles or [] if r.get("client") == client_id}
        service.set_roles(agreement, user, sorted(before - set(roles)), client_id)
        db.session.commit()
        taken = sorted(before & set(roles))
        click.echo(f"{user.email}: removed in {agreement.name} ({agreement.org_number}): "
                   f"{', '.join(taken) or 'no role (none held)'}; holds: {_roles_text(membership.roles or [])}")


@admin_group.command("list")
def admin_list() -> None:
    """List the rights admins hold (system admins too), then the agreement admins."""
    from ..agreements import service
    from ..agreements.invitations import ADMIN_ROLE
    from . import rights

    app = provider_app()
    with app.app_context():
        rows = [[u.email, r.right, " ".join(r.domains or []) or None, when(r.granted_at), u.status]
                for u, r in rights.all_rights()]
        agreement_admins = sorted(
            [[u.email, a.name, a.org_number, a.public_id, a.status, u.status]
             for a in service.all_agreements() for u, m in service.members(a)
             if any(r["role"] == ADMIN_ROLE and r.get("client") is None for r in m.roles or [])],
            key=lambda row: (row[0], row[1]))
    table(["email", "right", "domains", "granted", "account"], rows)
    if agreement_admins:
        click.echo("")
        click.echo("agreement admins:")
        table(["email", "agreement", "org_number", "id", "status", "account"], agreement_admins)
