"""An agreement's audit log: the rows naming the agreement (audit.record's
``agreement``), ``service.audit_log`` (newest first, paged by row id), and the
admins' page /agreements/<id>/audit: who may see it (404 for everyone else),
only this agreement's rows, who did what (one statement for every "by"),
"Newer" and "Older", and the links to and from the members page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from tests.agreements import test_console as console_tests
from tests.agreements.test_console import (
    BERIT,
    KARI,
    NILS,
    NINA,
    OLA,
    PER,
    _members_url,
    _post,
    _signed_in_client,
)
from tests.helpers import path_of
from tests.password.recovery import sign_in

# the members page's fixtures (tests/agreements/test_console.py), named here so pytest finds them
world, kari = console_tests.world, console_tests.kari

ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"


def audit_url(agreement_id: str, before: int | None = None) -> str:
    return f"/agreements/{agreement_id}/audit" + (f"?before={before}" if before is not None else "")


def page(client, url) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp.get_data(as_text=True)


def items(html: str) -> list[str]:
    """The events listed, as their text (label, time, about, by), in the page's order."""
    found = re.findall(r"<li(?: class=\"failed\")?>(.*?)</li>", html.split('class="activity audit-log"', 1)[-1], re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in found]


def link(html: str, text: str) -> str | None:
    match = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(text) + "</a>", html)
    return path_of(match.group(1).replace("&amp;", "&")) if match else None


def rows_of(app, agreement_id):
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.agreement == agreement_id)
                                       .order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


def add_rows(app, agreement_id, count, *, by_email=None, event="agreement_roles_changed"):
    """``count`` rows about the agreement, subjects person0@... oldest first."""
    from visma_idp import audit
    from visma_idp.storage import db, queries

    with app.test_request_context("/"):
        by = queries.user_by_email(by_email).id if by_email else None
        for i in range(count):
            audit.record(event, subject=f"person{i}@example.no", agreement=agreement_id,
                         details={"agreement": agreement_id, **({"by": by} if by else {})})
        db.session.commit()


# -- the rows ------------------------------------------------------------------------------------------


def test_every_change_of_an_agreement_is_a_row_naming_it(app, world):
    rows = rows_of(app, world["A"])
    assert [r.event for r in rows] == [
        "agreement_created",
        "agreement_member_added", "agreement_roles_changed",  # Kari
        "agreement_member_added", "agreement_roles_changed", "agreement_roles_changed",  # Ola, then his app role
        "agreement_member_added", "agreement_roles_changed",  # Per
        "agreement_invitation_sent",  # Nina
    ]
    assert all(r.details["agreement"] == world["A"] for r in rows)
    assert not {r.subject for r in rows} & {BERIT, NILS}  # Fjord's rows name Fjord
    assert {r.event for r in rows_of(app, world["B"])} == {"agreement_created", "agreement_member_added",
                                                          "agreement_roles_changed", "agreement_invitation_sent"}


def test_audit_log_is_newest_first_and_pages_by_row_id(app, world):
    from visma_idp.agreements import service

    with app.app_context():
        agreement = service.find(world["A"])
        every = service.audit_log(agreement, limit=100)
        assert [r.id for r in every] == sorted((r.id for r in every), reverse=True)
        assert {r.agreement for r in every} == {world["A"]}
        first = service.audit_log(agreement, limit=4)
        second = service.audit_log(agreement, limit=4, before=first[-1].id)
        assert [r.id for r in first + second] == [r.id for r in every[:8]]
        assert service.audit_log_newer(agreement, second[0].id + 1, limit=4) is None  # the newest page
        assert service.audit_log_newer(agreement, every[-1].id, limit=4) == every[-5].id  # the 5th oldest


def test_audit_log_is_one_statement(app, world):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        agreement = service.find(world["A"])
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
        event.listen(db.engine, "before_cursor_execute", listen)
        try:
            service.audit_log(agreement, limit=3, before=10**9)
        finally:
            event.remove(db.engine, "before_cursor_execute", listen)
        assert len(statements) == 1 and "audit_events.agreement" in statements[0]


# -- the page -----------------------------------------------------------------------------------------


def test_the_page_lists_the_agreements_events_newest_first(app, kari, world):
    # a change by Kari through the members page: named with who did it
    assert _post(kari, f"/agreements/{world['A']}/members/{world['sub'][PER]}/remove",
                 page_of=world["A"]).status_code == 303
    html = page(kari, audit_url(world["A"]))
    assert "Audit log of Nordlys Regnskap AS" in html and "974760673" in html
    listed = items(html)
    assert len(listed) == len(rows_of(app, world["A"]))
    assert listed[0].startswith("Member removed") and f"About {PER}" in listed[0] and f"By {KARI}" in listed[0]
    assert listed[1].startswith("Invitation sent") and f"About {NINA}" in listed[1] and f"By {KARI}" in listed[1]
    assert "Roles: employee" in listed[1]
    assert listed[-1].startswith("Company created") and "By" not in listed[-1]  # the operator: nobody named
    assert any(item.startswith("Roles changed") and "Roles: employee, approver (expense)" in item
               for item in listed)
    assert "Times are shown in" in html and "<time datetime=" in html
    assert "<script" not in html and "onclick" not in html.lower()
    assert "Newer" not in html and "Older" not in html  # one page
    assert f'href="{ISSUER}{_members_url(world["A"])}"' in html  # back to the members
    members = page(kari, _members_url(world["A"]))
    assert f'href="{ISSUER}{audit_url(world["A"])}"' in members


def test_the_page_never_lists_another_agreements_rows(app, kari, world):
    add_rows(app, world["B"], 3, by_email=BERIT)  # Fjord's rows, by Fjord's admin
    html = page(kari, audit_url(world["A"]))
    for text in (BERIT, NILS, "driver", "person0@example.no", "Fjord"):
        assert text not in html, text
    assert html.count(f"About {NINA}") == 1  # Nina was invited to both: only Nordlys's invitation
    assert len(items(html)) == len(rows_of(app, world["A"]))


def test_events_get_labels_and_refusals_are_marked(app, kari, world):
    from visma_idp import audit
    from visma_idp.storage import db

    with app.test_request_context("/"):
        audit.record("one_time_code_refused", outcome="failure", subject=OLA, agreement=world["A"],
                     details={"reason": "no_right", "via": "agreement_console"})
        audit.record("some_future_event", subject=OLA, agreement=world["A"])
        db.session.commit()
    listed = items(page(kari, audit_url(world["A"])))
    assert listed[0].startswith("Other event") and "some_future_event" not in " ".join(listed)
    assert listed[1].startswith("One-time code refused Refused")
    assert "no_right" not in " ".join(listed)  # details are not shown


def test_not_signed_in_goes_to_sign_in_and_comes_back(app, client, world):
    resp = client.get(audit_url(world["A"]))
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    resp = sign_in(client, KARI, PASSWORD)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]) == audit_url(world["A"])


@pytest.mark.parametrize("who, agreement", [
    (PER, "A"),  # a plain member
    (BERIT, "A"),  # another agreement's admin
    (KARI, "B"),  # Nordlys's admin on Fjord's log
    (KARI, None),  # no such agreement
])
def test_the_same_404_for_everyone_else(app, world, who, agreement):
    client = _signed_in_client(app, who)
    agreement_id = world[agreement] if agreement else "00000000-0000-0000-0000-000000000000"
    resp = client.get(audit_url(agreement_id))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and "There is no such page, or you cannot use it." in html
    assert "Nordlys" not in html and "Fjord" not in html and "About" not in html


def test_an_agreement_requiring_mfa_needs_a_session_at_that_level(app, kari, world):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        service.find(world["A"]).require_acr = service.REQUIRE["mfa"]
        db.session.commit()
    resp = kari.get(audit_url(world["A"]))
    assert resp.status_code == 403 and "requires two-step verification" in resp.get_data(as_text=True)


# -- paging --------------------------------------------------------------------------------------------


def test_newer_and_older(app, kari, world):
    from visma_idp.agreements.service import AUDIT_PAGE

    add_rows(app, world["A"], 2 * AUDIT_PAGE + 7, by_email=KARI)
    every = list(reversed(rows_of(app, world["A"])))  # newest first
    seen: list[str] = []
    url: str | None = audit_url(world["A"])
    pages = []
    while url:
        html = page(kari, url)
        pages.append(url)
        listed = items(html)
        assert 0 < len(listed) <= AUDIT_PAGE
        seen += listed
        url = link(html, "Older")
    assert len(pages) == 3 and len(seen) == len(every)
    expected = [f"About {r.subject}" if r.subject else "Company created" for r in every]
    wrong = [(want, item) for want, item in zip(expected, seen, strict=True) if want not in item]
    assert wrong == []  # in order, none twice
    assert pages[1] == audit_url(world["A"], every[AUDIT_PAGE - 1].id)

    # and back: "Newer" leads to the page before, the newest without ?before
    last = page(kari, pages[2])
    assert link(last, "Newer") == pages[1]
    assert link(page(kari, pages[1]), "Newer") == audit_url(world["A"])
    assert link(page(kari, pages[0]), "Newer") is None


def test_a_bad_before_is_the_newest_page(app, kari, world):
    newest = items(page(kari, audit_url(world["A"])))
    for value in ("abc", "-1", "1e9", "9" * 30, ""):
        assert items(page(kari, f"/agreements/{world['A']}/audit?before={value}")) == newest


def test_who_did_it_is_read_in_one_statement(app, kari, world, make_user):
    """The emails of "by" for a whole page: one statement, however many admins."""
    from visma_idp.storage import db

    def statements_for(url) -> int:
        count = 0

        def counting(*_args):
            nonlocal count
            count += 1

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", counting)
        try:
            page(kari, url)
        finally:
            event.remove(engine, "before_cursor_execute", counting)
        return count

    few = statements_for(audit_url(world["A"]))
    for i in range(12):
        make_user(f"admin{i}@example.no", PASSWORD, f"Admin {i}")
        add_rows(app, world["A"], 2, by_email=f"admin{i}@example.no")
    html = page(kari, audit_url(world["A"]))
    assert "By admin11@example.no" in html and "By admin0@example.no" in html
    assert statements_for(audit_url(world["A"])) == few
