"""Travel with a per diem and mileage with passengers added one at a time."""

from __future__ import annotations

import re

import pytest

from examples.relying_party.app import MAX_TRIP_DAYS, PER_DIEM_NOK, per_diem_nok, trip_days
from tests.examples.conftest import AGREEMENT, signed_in


def _travel(client, start="2026-03-12", end="2026-03-14", **fields):
    return client.post("/claims", data={"kind": "travel", "start_date": start, "end_date": end,
                                        "destination": "Bergen", "purpose": "Conference", **fields})


def _mileage(client):
    resp = client.post("/claims", data={"kind": "mileage", "km": "42", "route": "Oslo - Drammen",
                                        "spent_on": "2026-03-14", "purpose": "Client visit"})
    assert resp.status_code == 303
    return resp.headers["Location"]


def _passengers(page: str) -> list[str]:
    listed = re.search(r'<ul id="passengers">(.*?)</ul>', page, re.S).group(1)
    return [name.strip() for name in re.findall(r"<li>([^<]*)", listed)]


def test_the_per_diem_is_days_from_and_to_inclusive_times_the_rate():
    assert trip_days("2026-03-12", "2026-03-14") == 3
    assert trip_days("2026-03-12", "2026-03-12") == 1
    assert trip_days("2026-02-27", "2026-03-02") == 4  # across the month's end
    assert per_diem_nok(3, abroad=False) == 3 * PER_DIEM_NOK["domestic"]
    assert per_diem_nok(3, abroad=True) == 3 * PER_DIEM_NOK["abroad"]


@pytest.mark.parametrize(("fields", "per_diem"), [({}, 3 * PER_DIEM_NOK["domestic"]),
                                                  ({"abroad": "yes"}, 3 * PER_DIEM_NOK["abroad"])])
def test_a_travel_claim_stores_and_shows_its_per_diem(expense, fields, per_diem):
    client = signed_in(expense)
    resp = _travel(client, **fields)
    assert resp.status_code == 303
    assert f"3 days: {per_diem:.2f} NOK" in client.get(resp.headers["Location"]).text
    assert f'class="per-diem">{per_diem:.2f} NOK' in client.get("/").text


@pytest.mark.parametrize(("start", "end", "en", "nb"), [
    ("2026-03-14", "2026-03-12", "must end on or after the day it starts", "samme dag som den starter"),
    ("2026-01-01", "2026-04-01", f"at most {MAX_TRIP_DAYS} days", f"høyst {MAX_TRIP_DAYS} dager"),
])
def test_a_bad_trip_period_is_refused_with_a_translated_error(expense, start, end, en, nb):
    client = signed_in(expense)
    resp = _travel(client, start, end)
    assert resp.status_code == 400 and en in resp.text
    resp = client.post("/claims?lang=nb", data={"kind": "travel", "start_date": start, "end_date": end,
                                                 "destination": "Bergen", "purpose": "Konferanse"})
    assert resp.status_code == 400 and nb in resp.text
    assert "Bergen" not in client.get("/").text  # nothing saved


def test_ninety_days_is_the_longest_trip(expense):
    client = signed_in(expense)
    assert trip_days("2026-01-01", "2026-03-31") == MAX_TRIP_DAYS
    assert _travel(client, "2026-01-01", "2026-03-31").status_code == 303


def test_passengers_are_added_and_removed_one_by_one(expense):
    client = signed_in(expense)
    claim_url = _mileage(client)
    for name in ("Ola Nordmann", "Per Hansen"):
        resp = client.post(claim_url + "/passengers", data={"name": name})
        assert resp.status_code == 303 and resp.headers["Location"].endswith(claim_url)
    page = client.get(claim_url).text
    assert _passengers(page) == ["Ola Nordmann", "Per Hansen"]
    assert 'class="passenger-count">2<' in client.get("/").text

    assert client.post(claim_url + "/passengers", data={"name": "  "}).status_code == 303
    assert "Fill in every field." in client.get(claim_url).text

    ola_id = re.search(r'/passengers/(\d+)/remove', page).group(1)
    assert client.post(f"{claim_url}/passengers/{ola_id}/remove").status_code == 303
    assert _passengers(client.get(claim_url).text) == ["Per Hansen"]
    assert 'class="passenger-count">1<' in client.get("/").text


def test_a_submitted_claims_passengers_cannot_change(expense):
    client = signed_in(expense)
    claim_url = _mileage(client)
    client.post(claim_url + "/passengers", data={"name": "Ola Nordmann"})
    passenger_id = re.search(r'/passengers/(\d+)/remove', client.get(claim_url).text).group(1)
    client.post(claim_url + "/submit")

    page = client.get(claim_url).text
    assert "Add passenger" not in page and "/remove" not in page
    client.post(claim_url + "/passengers", data={"name": "Per Hansen"})
    client.post(f"{claim_url}/passengers/{passenger_id}/remove")
    page = client.get(claim_url).text
    assert _passengers(page) == ["Ola Nordmann"]
    assert "only be changed while the claim is your draft" in page


def test_only_the_owner_changes_passengers(expense):
    claim_url = _mileage(signed_in(expense))
    approver = signed_in(expense, sub="ola", roles=("approver",))
    approver.post(claim_url + "/passengers", data={"name": "Someone"})
    assert _passengers(approver.get(claim_url).text) == []


def test_another_agreements_claim_is_not_found(expense):
    kari = signed_in(expense)
    claim_url = _mileage(kari)
    kari.post(claim_url + "/passengers", data={"name": "Ola Nordmann"})
    passenger_id = re.search(r'/passengers/(\d+)/remove', kari.get(claim_url).text).group(1)
    other = signed_in(expense, sub="kari", agreement=dict(AGREEMENT, id="a-2", name="Fjord Transport AS"))
    assert other.get(claim_url).status_code == 404
    assert other.post(claim_url + "/passengers", data={"name": "Per Hansen"}).status_code == 404
    assert other.post(f"{claim_url}/passengers/{passenger_id}/remove").status_code == 404
    assert _passengers(kari.get(claim_url).text) == ["Ola Nordmann"]


def test_passengers_need_the_csrf_token(make_expense):
    app = make_expense("http://127.0.0.1:9")
    client = signed_in(app)
    assert client.post("/claims/1/passengers", data={"name": "Ola"}).status_code == 400
