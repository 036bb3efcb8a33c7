"""The lookups every part uses (a user, a client, a code, a token, a
session, a consent) and every statement on the tables of the sign-in and the
protocol (sessions, codes, tokens, consents, seen client-assertion ids):
the atomic claims, the revocations, ending sessions. Callers commit."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from .models import (
    Agreement,
    AuthorizationCode,
    Client,
    Consent,
    Membership,
    SeenJti,
    SsoSession,
    Token,
    Upstream,
    User,
    db,
)


def _exec(stmt) -> CursorResult[Any]:
    """Run a DML statement; its result has ``rowcount``.

    No ``synchronize_session``: these statements change rows by condition and
    the callers do not read the changed columns back from objects they hold,
    so the ORM's evaluation of the criteria against the identity map is pure
    cost (a third of the token endpoint's time in statements).
    """
    return cast(CursorResult[Any], db.session.execute(stmt, execution_options={"synchronize_session": False}))


def _revoked(rowcount: int) -> int:
    """Mark the session when a statement revoked tokens: after its commit the
    revocation counter is raised (``oidc/revocations.py``), so every node's
    kept introspection answers are checked again."""
    if rowcount:
        db.session.info["tokens_revoked"] = True
    return rowcount


def client_by_id(client_id: str) -> Client | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        return None
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def memberships_of(user_id: int) -> list[Membership]:
    """The user's memberships of active agreements, the last used first, then by name
    (the agreement chooser, UserInfo's ``agreements``, the protocol's choice)."""
    rows = db.session.scalars(select(Membership).join(Agreement).where(
        Membership.user_id == user_id, Agreement.status == "active"))
    return sorted(rows, key=lambda m: (-(m.last_used_at or 0), m.agreement.name.lower()))


def membership_of(user_id: int, agreement_id: int | None) -> Membership | None:
    """The user's membership of an active agreement (None when they left it, or it closed)."""
    if agreement_id is None:
        return None
    return db.session.scalar(select(Membership).join(Agreement).where(
        Membership.user_id == user_id, Membership.agreement_id == agreement_id, Agreement.status == "active"))


def national_upstream_acr_values() -> list[list[str]]:
    """The ``acr_values`` of each enabled national eID upstream (discovery names their levels)."""
    return [list(v or []) for v in db.session.scalars(
        select(Upstream.acr_values).where(Upstream.enabled.is_(True), Upstream.national_id_claim.is_not(None)))]


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def user_by_sub(sub: str) -> User | None:
    return db.session.scalar(select(User).where(User.sub == sub))


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.id)))


def all_clients() -> list[Client]:
    return list(db.session.scalars(select(Client).order_by(Client.id)))


def code_by_digest(code_digest: str, client_id: str) -> AuthorizationCode | None:
    return db.session.scalar(
        select(AuthorizationCode).where(
            AuthorizationCode.code_digest == code_digest, AuthorizationCode.client_id == client_id
        )
    )


def claim_code(code_id: int, now: int) -> bool:
    """Mark a code used. Exactly one of several concurrent callers gets True:
    the UPDATE takes the row lock and re-checks ``used_at IS NULL``."""
    result = _exec(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def revoke_tokens_of_code(code_id: int, now: int) -> int:
    families = select(Token.family_id).where(Token.code_id == code_id).scalar_subquery()
    result = _exec(
        update(Token).where(Token.family_id.in_(families), Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    return _revoked(result.rowcount)


def token_by_digest(token_digest: str, kind: str | None = None) -> Token | None:
    stmt = select(Token).where(Token.digest == token_digest)
    if kind:
        stmt = stmt.where(Token.kind == kind)
    return db.session.scalar(stmt)


def token_state(token_digest: str) -> tuple[bool, int | None]:
    """(whether a row exists, its ``revoked_at``): one narrow read, outside any
    transaction. A single SELECT needs no BEGIN and COMMIT around it, and
    those were two of its three round trips to PostgreSQL."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        found = conn.execute(select(Token.revoked_at).where(Token.digest == token_digest)).first()
    return (found is not None, found[0] if found is not None else None)


def claim_refresh_token(token_id: int, now: int) -> bool:
    """Rotate a refresh token: only one caller can move it from live to rotated."""
    result = _exec(
        update(Token)
        .where(Token.id == token_id, Token.rotated_at.is_(None), Token.revoked_at.is_(None))
        .values(rotated_at=now)
    )
    return result.rowcount == 1


def revoke_family(family_id: str, now: int) -> int:
    result = _exec(
        update(Token).where(Token.family_id == family_id, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    return _revoked(result.rowcount)


def revoke_token(token_id: int, now: int) -> None:
    _revoked(_exec(update(Token).where(Token.id == token_id, Token.revoked_at.is_(None)).values(revoked_at=now)).rowcount)


def remember_jti(jti_digest: str, expires_at: int, now: int) -> bool:
    """Store a client-assertion jti; False if it was seen before (replay)."""
    db.session.execute(delete(SeenJti).where(SeenJti.expires_at < now))
    try:
        with db.session.begin_nested():
            db.session.add(SeenJti(jti_digest=jti_digest, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def session_by_digest(session_digest: str) -> SsoSession | None:
    return db.session.get(SsoSession, session_digest)


def end_sessions_of_user(user_id: int, now: int, except_id: str | None = None) -> int:
    stmt = update(SsoSession).where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
    if except_id:
        stmt = stmt.where(SsoSession.id != except_id)
    return _exec(stmt.values(ended_at=now)).rowcount


def live_sessions_of_user(user_id: int, now: int) -> list[SsoSession]:
    """The user's sessions that are neither ended nor expired, most recently used first."""
    return list(db.session.scalars(
        select(SsoSession)
        .where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None), SsoSession.expires_at > now)
        .order_by(SsoSession.last_seen_at.desc(), SsoSession.created_at.desc())
    ))


def end_live_session(user_id: int, public_id: str, now: int, *, except_id: str) -> int:
    """End the user's live session named ``public_id`` unless it is ``except_id``; 1 when it ended."""
    return _exec(
        update(SsoSession)
        .where(SsoSession.public_id == public_id, SsoSession.user_id == user_id, SsoSession.id != except_id,
               SsoSession.ended_at.is_(None), SsoSession.expires_at > now)
        .values(ended_at=now)
    ).rowcount


def revoke_tokens_of_session(user_id: int, sid: str, now: int) -> int:
    """Revoke the user's live tokens issued in the session ``sid`` (its ``public_id``)."""
    return _revoked(_exec(
        update(Token).where(Token.user_id == user_id, Token.sid == sid, Token.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount)


def revoke_tokens_outside_session(user_id: int, sid: str, now: int) -> int:
    """Revoke the user's live tokens not issued in the session ``sid`` (its ``public_id``)."""
    return _revoked(_exec(
        update(Token)
        .where(Token.user_id == user_id, Token.revoked_at.is_(None), or_(Token.sid.is_(None), Token.sid != sid))
        .values(revoked_at=now)
    ).rowcount)


def consent_for(user_id: int, client_id: str) -> Consent | None:
    return db.session.scalar(select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))


def revoke_tokens_of_user(user_id: int, now: int) -> int:
    """Revoke every live refresh and access token of a user (password reset or change)."""
    result = _exec(update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None)).values(revoked_at=now))
    return _revoked(result.rowcount)


def leave_agreement(user_id: int, agreement_id: int, now: int) -> tuple[int, int]:
    """End the user's sessions working in an agreement and revoke the tokens
    issued for it (a deprovisioned member); their sessions and tokens in other
    agreements stay. Returns (sessions, tokens)."""
    sessions = _exec(update(SsoSession).where(SsoSession.user_id == user_id, SsoSession.agreement_id == agreement_id,
                                              SsoSession.ended_at.is_(None)).values(ended_at=now)).rowcount
    tokens = _revoked(_exec(update(Token).where(Token.user_id == user_id, Token.agreement_id == agreement_id,
                                                Token.revoked_at.is_(None)).values(revoked_at=now)).rowcount)
    return sessions, tokens


def sessions_to_tell(now: int, *, limit: int) -> list[SsoSession]:
    """Sessions that ended or expired and whose logout tokens were not queued yet (oldest first)."""
    return list(db.session.scalars(
        select(SsoSession).where(SsoSession.logout_queued_at.is_(None),
                                 or_(SsoSession.ended_at.is_not(None), SsoSession.expires_at <= now))
        .order_by(SsoSession.created_at).limit(limit)))


def claim_session_logout(session_id: str, now: int) -> bool:
    """Mark a session's logout tokens as queued; True for the one caller that
    does it first (several workers or nodes never queue them twice)."""
    return _exec(update(SsoSession).where(SsoSession.id == session_id, SsoSession.logout_queued_at.is_(None))
                 .values(logout_queued_at=now)).rowcount == 1


def clients_of_session(sid: str) -> set[str]:
    """The clients that took part in a session: those it gave a code or a token (by ``sid``)."""
    codes = db.session.scalars(select(AuthorizationCode.client_id).where(AuthorizationCode.sid == sid).distinct())
    tokens = db.session.scalars(select(Token.client_id).where(Token.sid == sid).distinct())
    return set(codes) | set(tokens)


def touch_session(session_id: str, now: int) -> None:
    """Note that a session was used. Its own autocommit statement: a page that
    only reads (and commits nothing) still counts as activity."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(update(SsoSession).where(SsoSession.id == session_id).values(last_seen_at=now))
