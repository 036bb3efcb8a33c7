"""The ``visma-idp users`` and ``visma-idp admin`` commands: create, invite
and list users, issue one-time codes, and grant or revoke admin rights."""

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
    """Admins' rights: who may issue one-time codes, for which email domains."""


def _rights_user(email: str):
    from ..storage import queries

    user = queries.user_by_email(_address(email))
    if user is None:
        raise InvalidInput(f"no user with email {email}")
    return user


@admin_group.command("grant")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", required=True, type=click.Choice(list(RIGHTS)), help="The right.")
@click.option("--domain", "domains", multiple=True, required=True,
              help="Email domain the right covers, like example.no (repeatable). Exact match only: "
                   "subdomains are granted one by one.")
def admin_grant(email: str, right: str, domains: tuple[str, ...]) -> None:
    """Give an admin a right for email domains (added to the domains they hold)."""
    from ..storage import db
    from . import rights

    app = provider_app()
    with app.app_context():
        user = _rights_user(email)
        row = rights.grant(user, right, domains)
        db.session.commit()
        click.echo(f"{user.email} holds {right} for: {', '.join(row.domains)}")


@admin_group.command("revoke")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", required=True, type=click.Choice(list(RIGHTS)), help="The right.")
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable; default: the whole right).")
def admin_revoke(email: str, right: str, domains: tuple[str, ...]) -> None:
    """Take a right from an admin, for some domains or entirely."""
    from ..storage import db
    from . import rights

    app = provider_app()
    with app.app_context():
        user = _rights_user(email)
        removed = rights.revoke(user, right, list(domains) if domains else None)
        db.session.commit()
        click.echo(f"{user.email}: {right} removed for: {', '.join(removed) or 'no domain (none held)'}")


@admin_group.command("list")
def admin_list() -> None:
    """List the rights admins hold."""
    from . import rights

    app = provider_app()
    with app.app_context():
        rows = [[u.email, r.right, " ".join(r.domains or []), when(r.granted_at), u.status]
                for u, r in rights.all_rights()]
    table(["email", "right", "domains", "granted", "account"], rows)
