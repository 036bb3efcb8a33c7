"""Invitations to an agreement: a superuser invites colleagues, each with
their own email address (Visma Connect).

Rules:
- an invitation is for one address (``addresses.parse``, its stored
  spelling) and one active agreement, with the roles it gives (for every app,
  or for one app with ``client_id``); an address whose account is a member
  already is refused;
- only the newest link works: inviting an address to an agreement again
  revokes its pending earlier invitation there;
- the link carries 32 random bytes; only their SHA-256 digest is stored; it
  works for :data:`LIFETIME` (7 days) and once;
- who may invite: a member of the agreement with the agreement-wide role
  :data:`ADMIN_ROLE` (:func:`may_invite`); the operator's CLI always may;
- only the account with the invited address accepts it (:func:`accept`),
  never another signed-in account; the membership gets the invitation's roles
  through ``service.add_member`` (whose "roles changed" email is the only
  one sent), and the invitation is marked accepted by a conditional UPDATE,
  so of two clicks racing exactly one wins;
- a person without an account (or with one never activated) makes it from
  the link (:func:`create_account`): a password under the policy, the email
  verified (the link proved the mailbox); they sign in afterwards as usual;
- sending, accepting and revoking are audited in the agreement's log (the
  rows name the agreement, and who did it in ``by``), and so is the account
  made or activated from the link; the caller commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from .. import addresses, audit
from ..account import tokens
from ..context import current_idp
from ..crypto import digest, random_token
from ..errors import InvalidInput, VismaIdpError
from ..notify import messages
from ..password.service import NewPasswordRefused, set_new_password
from ..storage import Agreement, AgreementInvitation, User, db, queries
from . import service

ADMIN_ROLE = "admin"  # the agreement-wide role that may invite
LIFETIME = 7 * 24 * 3600  # seconds a link works
MAIL_KIND = "agreement_invitation"

LIVE, EXPIRED, USED, REVOKED = "live", "expired", "used", "revoked"


class AlreadyMember(InvalidInput):
    """The invited address's account is a member of the agreement already."""


def takes_own_admin_role(by: User | None, member: User, roles: Iterable[str], client_id: str | None) -> bool:
    """Whether ``by`` setting ``member``'s roles (agreement-wide when ``client_id``
    is None) to ``roles`` would take away their own agreement-wide ``admin`` role:
    refused on the console and the API, so an agreement never loses its last admin by accident."""
    return by is not None and member.id == by.id and client_id is None and ADMIN_ROLE not in roles


class InvitationRefused(VismaIdpError):
    """The invitation cannot be accepted. ``reason``: ``expired``, ``used``,
    ``revoked``, ``wrong_account`` (another address's account) or
    ``account_exists`` (make no second account: sign in instead)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _now() -> int:
    return current_idp().clock.now()


# -- who may invite, and inviting ------------------------------------------------------


def may_invite(user: User | None, agreement: Agreement) -> bool:
    """Whether ``user`` may invite people to ``agreement``: an active member
    with the agreement-wide role ``admin`` (an app's own ``admin`` role does not count)."""
    if user is None or user.status != "active" or agreement.status != "active":
        return False
    row = service.membership(user.id, agreement.id)
    return row is not None and any(r["role"] == ADMIN_ROLE and r.get("client") is None for r in row.roles or [])


def invite(agreement: Agreement, email: str, roles: Iterable[str] = (), *, invited_by: User | None,
           client_id: str | None = None) -> AgreementInvitation:
    """Invite ``email`` to ``agreement`` with ``roles`` and queue the mail with
    the link; the caller commits (and has checked :func:`may_invite` for a
    person who invites; ``invited_by=None`` is the operator).

    Raises:
        InvalidInput: a bad address or role, or a closed agreement;
            AlreadyMember (an InvalidInput) for an address whose account is a member already.
    """
    try:
        address = addresses.parse(email).email
    except addresses.AddressError as exc:
        raise InvalidInput(f"not a valid email address: {email!r} ({exc.detail})") from None
    wanted = service.check_roles(sorted(set(roles)), client_id)  # the checks add_member makes
    if agreement.status != "active":
        raise InvalidInput(f"the agreement {agreement.name} is {agreement.status}")
    account = queries.user_by_email(address)
    if account is not None and service.membership(account.id, agreement.id) is not None:
        raise AlreadyMember(f"{address} is a member of {agreement.name} already")

    now = _now()
    replaced = db.session.execute(  # only the newest link works
        update(AgreementInvitation)
        .where(AgreementInvitation.agreement_id == agreement.id, AgreementInvitation.email == address,
               AgreementInvitation.accepted_at.is_(None), AgreementInvitation.revoked_at.is_(None))
        .values(revoked_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    raw = random_token(32)
    row = AgreementInvitation(agreement_id=agreement.id, email=address, roles=wanted, digest=digest(raw),
                              invited_by=invited_by.id if invited_by is not None else None,
                              created_at=now, expires_at=now + LIFETIME)
    row.agreement = agreement
    db.session.add(row)
    db.session.flush()

    idp = current_idp()
    messages.queue(MAIL_KIND, to=address, user=account, agreement=agreement.name,
                   inviter=inviter_label(invited_by), roles=role_labels(wanted),
                   accept_url=idp.url("agreements.invitation", token=raw), days=LIFETIME // 86400)
    audit.record("agreement_invitation_sent", user_id=invited_by.id if invited_by is not None else None,
                 subject=address, details={"agreement": agreement.public_id, "invitation": row.id,
                                           "roles": wanted, "replaced": replaced, **service.by_details(invited_by)},
                 agreement=agreement.public_id)
    return row


def revoke(invitation: AgreementInvitation, by: User | None) -> bool:
    """Stop a pending invitation's link from working; False when it was
    accepted or revoked already. The caller commits."""
    now = _now()
    done = db.session.execute(
        update(AgreementInvitation)
        .where(AgreementInvitation.id == invitation.id, AgreementInvitation.accepted_at.is_(None),
               AgreementInvitation.revoked_at.is_(None))
        .values(revoked_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount == 1  # type: ignore[attr-defined]
    if done:
        set_committed_value(invitation, "revoked_at", now)
        audit.record("agreement_invitation_revoked", user_id=by.id if by is not None else None,
                     subject=invitation.email,
                     details={"agreement": invitation.agreement.public_id, "invitation": invitation.id,
                              **service.by_details(by)}, agreement=invitation.agreement.public_id)
    return done


# -- the link ------------------------------------------------------------------------


def find(token: object) -> AgreementInvitation | None:
    """The invitation of a link, whatever its state (a lookup by digest: the
    time it takes says nothing about the token)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    return db.session.scalar(select(AgreementInvitation).where(AgreementInvitation.digest == digest(token)))


def state(invitation: AgreementInvitation) -> str:
    """``live``, or why the link no longer works: ``used``, ``revoked`` or ``expired``."""
    if invitation.accepted_at is not None:
        return USED
    if invitation.revoked_at is not None:
        return REVOKED
    if invitation.expires_at <= _now():
        return EXPIRED
    return LIVE


def inviter(invitation: AgreementInvitation) -> User | None:
    return db.session.get(User, invitation.invited_by) if invitation.invited_by is not None else None


def inviter_label(user: User | None) -> str | None:
    """``Kari Nordmann (kari@example.no)``, or None for the operator (the CLI)."""
    if user is None:
        return None
    return f"{user.name} ({user.email})" if user.name else user.email


def role_labels(roles: list[dict[str, Any]]) -> list[str]:
    """``approver``, or ``approver (Expenses)`` for a role in one app (its name, else its id)."""
    out = []
    for r in roles:
        client = queries.client_by_id(r["client"]) if r.get("client") else None
        app_name = (client.name or client.client_id) if client is not None else r.get("client")
        out.append(f"{r['role']} ({app_name})" if app_name else r["role"])
    return out


# -- accepting -----------------------------------------------------------------------


def accept(invitation: AgreementInvitation, user: User) -> None:
    """``user`` (the account of the invited address) joins the agreement with
    the invitation's roles; the invitation is used up. The caller commits.

    Raises:
        InvitationRefused: another address's account, or the link is no
            longer live (also when another click used it meanwhile).
    """
    if user.email != invitation.email or not user.is_active:
        raise InvitationRefused("wrong_account")
    now = _now()
    claimed = db.session.execute(  # of two clicks, exactly one gets here
        update(AgreementInvitation)
        .where(AgreementInvitation.id == invitation.id, AgreementInvitation.accepted_at.is_(None),
               AgreementInvitation.revoked_at.is_(None), AgreementInvitation.expires_at > now)
        .values(accepted_at=now, accepted_by=user.id),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        db.session.refresh(invitation)
        raise InvitationRefused(state(invitation) if state(invitation) != LIVE else USED)
    set_committed_value(invitation, "accepted_at", now)  # written by the UPDATE: nothing more to flush
    set_committed_value(invitation, "accepted_by", user.id)
    agreement = invitation.agreement
    roles = invitation.roles or []
    if not roles:
        service.add_member(agreement, user, by=user)
    # add_member takes the roles of one app (or of every app) at a time
    for client_id, group in groupby(sorted(roles, key=lambda r: r.get("client") or ""), key=lambda r: r.get("client")):
        service.add_member(agreement, user, [r["role"] for r in group], client_id=client_id, by=user)
    audit.record("agreement_invitation_accepted", user_id=user.id, subject=user.email,
                 details={"agreement": agreement.public_id, "invitation": invitation.id, "by": user.id},
                 agreement=agreement.public_id)
    for joined in _on_accept.values():
        joined(agreement, user)


_on_accept: dict[str, Callable[[Agreement, User], None]] = {}


def on_accept(name: str, joined: Callable[[Agreement, User], None]) -> None:
    """Call ``joined(agreement, user)`` after each accepted invitation, in its
    transaction (``provisioning/`` links the person's pushed records: this
    package never imports it); by name, so registering again replaces."""
    _on_accept[name] = joined


def create_account(invitation: AgreementInvitation, name: str, password: str, repeated: str
                   ) -> User | NewPasswordRefused:
    """The invited address has no account (or one never activated): make it
    (or activate it) with ``name`` and a password under the policy, and
    accept the invitation with it. Returns the account, or why the password
    was refused (nothing changed). The caller commits.

    Raises:
        InvitationRefused: the address has an activated account (sign in
            instead), or the link is no longer live.
    """
    now = _now()
    user = queries.user_by_email(invitation.email)
    if user is not None and user.status != "pending":
        raise InvitationRefused("account_exists")
    created = user is None
    if user is None:
        user = User(email=invitation.email, name=name, created_at=now, updated_at=now)
    earlier_name, user.name = user.name, name  # the policy compares the password with the new name
    refused = set_new_password(user, password, repeated)
    if refused is not None:
        user.name = earlier_name
        return refused
    user.email_verified = True  # the link in the mail proved the mailbox
    user.activated_at = now
    user.updated_at = now
    if created:
        db.session.add(user)
        db.session.flush()
        audit.record("user_created", user_id=user.id, subject=user.email,
                     details={"invitation": invitation.id, "by": user.id}, agreement=invitation.agreement.public_id)
    else:
        tokens.void(user.id, (tokens.ACTIVATION,), now=now)  # the Welcome link has nothing left to do
        audit.record("account_activated", user_id=user.id, subject=user.email,
                     details={"invitation": invitation.id, "by": user.id}, agreement=invitation.agreement.public_id)
    accept(invitation, user)
    return user
