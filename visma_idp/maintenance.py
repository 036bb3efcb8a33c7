"""Purging rows that have done their work (``visma-idp purge``, at the end).

Nothing in the request path deletes old rows, so without this the tables of
codes, tokens, links, sessions and mail grow with every sign-in. The rules:

- a row is purged ``RETENTION_DAYS`` after it stopped being usable (expired,
  used, ended, sent), never while it can still be used or still guards
  against a replay: an authorization code, an access token (revoked or not)
  or a refresh token stays until its own expiry has passed (a rotated
  refresh token expires with its family, so reuse detection keeps working
  for the whole family), a one-time link or an invitation to an agreement
  until its expiry, a session until
  it has ended or expired;
- mail is purged only once sent (a failed message stays for ``mail retry``),
  back-channel logout deliveries likewise (``logout retry``); throttle counts
  kept in the database while Redis was down go by their last count;
- unconfirmed factors (an enrolment given up) and used recovery codes go by
  their creation and use times; confirmed factors and unused codes never;
- audit events are kept forever unless ``AUDIT_RETENTION_DAYS`` is set;
- rows go in batches of ``batch`` per statement and transaction, oldest
  first, so a large backlog never holds long locks; the counts are returned
  per table (``dry_run`` only counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy import and_, delete, func, or_, select

from .cli_support import provider_app, table
from .context import current_idp
from .storage import (
    AccountToken,
    AgreementInvitation,
    AuditEvent,
    AuthorizationCode,
    Factor,
    LogoutDelivery,
    MailOutbox,
    OneTimeCode,
    ProfileChangeNotice,
    RecoveryCode,
    RoleChangeNotice,
    SeenJti,
    SmsCode,
    SmsOutbox,
    SsoSession,
    ThrottleCount,
    Token,
    db,
)

DAY = 86400
BATCH = 5000


@dataclass(frozen=True)
class Rule:
    table: str
    model: Any
    key: Any  # the primary key column (batches are chosen by it)
    where: Callable[[int, int], Any]  # (cutoff, now) -> the rows that may go


RULES: tuple[Rule, ...] = (
    Rule("authorization_codes", AuthorizationCode, AuthorizationCode.id,
         lambda cutoff, now: AuthorizationCode.expires_at < cutoff),
    Rule("tokens", Token, Token.id, lambda cutoff, now: Token.expires_at < cutoff),
    Rule("sso_sessions", SsoSession, SsoSession.id,
         lambda cutoff, now: or_(SsoSession.expires_at < cutoff, SsoSession.ended_at < cutoff)),
    Rule("account_tokens", AccountToken, AccountToken.id, lambda cutoff, now: AccountToken.expires_at < cutoff),
    Rule("sms_codes", SmsCode, SmsCode.id, lambda cutoff, now: SmsCode.expires_at < cutoff),
    Rule("one_time_codes", OneTimeCode, OneTimeCode.id, lambda cutoff, now: OneTimeCode.expires_at < cutoff),
    # an invitation's link works until its expiry; accepted or revoked ones go by that time too
    Rule("agreement_invitations", AgreementInvitation, AgreementInvitation.id,
         lambda cutoff, now: AgreementInvitation.expires_at < cutoff),
    Rule("factors", Factor, Factor.id,
         lambda cutoff, now: and_(Factor.confirmed_at.is_(None), Factor.created_at < cutoff)),
    Rule("recovery_codes", RecoveryCode, RecoveryCode.id, lambda cutoff, now: RecoveryCode.used_at < cutoff),
    Rule("mail_outbox", MailOutbox, MailOutbox.id,
         lambda cutoff, now: and_(MailOutbox.status == "sent", MailOutbox.sent_at < cutoff)),
    Rule("profile_change_notices", ProfileChangeNotice, ProfileChangeNotice.id,
         lambda cutoff, now: ProfileChangeNotice.sent_at < cutoff),
    Rule("role_change_notices", RoleChangeNotice, RoleChangeNotice.id,
         lambda cutoff, now: RoleChangeNotice.sent_at < cutoff),
    Rule("sms_outbox", SmsOutbox, SmsOutbox.id, lambda cutoff, now: SmsOutbox.created_at < cutoff),
    # a delivered logout token, like sent mail (a failed one stays for `logout retry`)
    Rule("logout_deliveries", LogoutDelivery, LogoutDelivery.id,
         lambda cutoff, now: and_(LogoutDelivery.status == "sent", LogoutDelivery.sent_at < cutoff)),
    # throttle counts kept while Redis was down: long past any throttle window or lock memory
    Rule("throttle_counts", ThrottleCount, ThrottleCount.key, lambda cutoff, now: ThrottleCount.last < cutoff),
    # a replay guard is worthless once the assertion or challenge it guards has expired
    Rule("seen_jtis", SeenJti, SeenJti.jti_digest, lambda cutoff, now: SeenJti.expires_at < now),
)
AUDIT_RULE = Rule("audit_events", AuditEvent, AuditEvent.id, lambda cutoff, now: AuditEvent.at < cutoff)



def purge(*, dry_run: bool = False, batch: int = BATCH) -> dict[str, int]:
    """Delete (or, with ``dry_run``, count) what the rules allow; return the
    number of rows per table. Runs in the app context; commits each batch."""
    idp = current_idp()
    now = idp.clock.now()
    plan = [(rule, now - idp.settings["RETENTION_DAYS"] * DAY) for rule in RULES]
    audit_days = idp.settings["AUDIT_RETENTION_DAYS"]
    if audit_days:
        plan.append((AUDIT_RULE, now - audit_days * DAY))
    counts: dict[str, int] = {}
    for rule, cutoff in plan:
        where = rule.where(cutoff, now)
        if dry_run:
            counts[rule.table] = db.session.scalar(select(func.count()).select_from(rule.model).where(where)) or 0
            continue
        counts[rule.table] = _delete_in_batches(rule, where, batch)
    if not dry_run:
        from . import audit

        audit.record("rows_purged", details={k: v for k, v in counts.items() if v})
        db.session.commit()
    else:
        db.session.rollback()
    return counts


def _delete_in_batches(rule: Rule, where: Any, batch: int) -> int:
    """Delete in key order, each batch starting after the last key of the one
    before: every batch reads the key index from where the last one stopped
    instead of from its start again, past the rows already deleted (not yet
    vacuumed) and the rows that stay. At ten million tokens a batch otherwise
    re-read up to a million live rows and took over a second (docs/scale.md)."""
    total = 0
    after = None
    while True:
        query = select(rule.key).where(where)
        if after is not None:
            query = query.where(rule.key > after)
        ids = list(db.session.scalars(query.order_by(rule.key).limit(batch)))
        if not ids:
            return total
        result = db.session.execute(delete(rule.model).where(rule.key.in_(ids)),
                                    execution_options={"synchronize_session": False})
        db.session.commit()
        total += result.rowcount  # type: ignore[attr-defined]
        if len(ids) < batch:
            return total
        after = ids[-1]


# -- visma-idp purge -----------------------------------------------------------------


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1),
              help="Rows per DELETE statement and transaction.")
def purge_command(dry_run: bool, batch: int) -> None:
    """Delete rows that have done their work: expired or used codes, links
    and tokens, ended sessions, sent mail, old text messages, given-up
    enrolments; audit events only with AUDIT_RETENTION_DAYS. Each is kept
    RETENTION_DAYS after it stopped being usable. Run it daily (cron or a
    systemd timer); it is safe beside running servers and workers."""
    app = provider_app()
    with app.app_context():
        counts = purge(dry_run=dry_run, batch=batch)
    table(["table", "would go" if dry_run else "deleted"], [[name, n] for name, n in counts.items()])
