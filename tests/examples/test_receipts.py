"""Receipt uploads: the type from the file's first bytes, the size limit, and
the upload route keeping claims inside the person's agreement."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from examples.relying_party.receipts import MAX_BYTES, ReceiptRejected, check_receipt
from tests.examples.conftest import AGREEMENT, signed_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"\x00" * 64


@pytest.mark.parametrize(("data", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (PDF, "application/pdf")])
def test_png_jpeg_and_pdf_are_taken(data, media_type):
    assert check_receipt(data) == media_type


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "receipt_empty"),
    (b"GIF89a" + b"\x00" * 10, "receipt_type"),
    (b"<html><script>alert(1)</script>", "receipt_type"),  # whatever its name or Content-Type said
    (b"\x89PNG\r\n", "receipt_type"),  # a cut-off signature
    (b" %PDF-1.7", "receipt_type"),
    (PNG + b"\x00" * MAX_BYTES, "receipt_too_large"),
])
def test_everything_else_is_refused(data, reason):
    with pytest.raises(ReceiptRejected) as refused:
        check_receipt(data)
    assert refused.value.reason == reason


def test_exactly_five_megabytes_is_fine():
    assert check_receipt(PNG + b"\x00" * (MAX_BYTES - len(PNG))) == "image/png"


def _outlay(client, data: bytes, filename="receipt.png", **fields):
    form = {"kind": "outlay", "amount": "249,90", "currency": "NOK", "spent_on": "2026-03-14",
            "purpose": "Taxi to the client", "receipt": FileStorage(io.BytesIO(data), filename, content_type="image/png"), **fields}
    # encoded in memory: the test client would spool a large body to a temporary file it never closes
    stream, length, boundary = stream_encode_multipart(form, use_tempfile=False)
    return client.post("/claims", data=stream.read(), content_type=f"multipart/form-data; boundary={boundary}")


def test_an_outlay_with_a_png_receipt_is_saved_as_a_draft(expense):
    client = signed_in(expense)
    resp = _outlay(client, PNG)
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"])
    assert "249.90 NOK" in page.text and "Draft" in page.text
    receipt = client.get(resp.headers["Location"] + "/receipt")
    assert receipt.data == PNG and receipt.mimetype == "image/png"
    assert receipt.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("data", "message"), [
    (b"<svg onload=alert(1)>", "must be a PNG or JPEG image or a PDF"),
    (PNG + b"\x00" * MAX_BYTES, "larger than 5 MB"),
])
def test_a_bad_receipt_saves_nothing_and_says_why(expense, data, message):
    client = signed_in(expense)
    resp = _outlay(client, data, filename="receipt.png")
    assert resp.status_code == 400  # the home page again, saying what is wrong
    assert message in resp.text and "Taxi to the client" not in resp.text
    assert "Taxi to the client" not in client.get("/").text


def test_a_bad_amount_is_refused(expense):
    client = signed_in(expense)
    resp = _outlay(client, PNG, amount="-5")
    assert resp.status_code == 400 and "Enter an amount above zero" in resp.text


def test_claims_stay_in_their_agreement(expense):
    kari = signed_in(expense)
    location = _outlay(kari, PNG).headers["Location"]
    other = dict(AGREEMENT, id="a-2", name="Fjord Transport AS")
    assert signed_in(expense, sub="kari", agreement=other).get(location).status_code == 404
    # an approver of another agreement does not see it either; one of the same does
    assert signed_in(expense, sub="ola", agreement=other, roles=("approver",)).get(location).status_code == 404
    assert signed_in(expense, sub="ola", roles=("approver",)).get(location).status_code == 200
    # a colleague who is no approver does not
    assert signed_in(expense, sub="per").get(location).status_code == 404


def test_mileage_and_travel_claims(expense):
    client = signed_in(expense)
    resp = client.post("/claims", data={"kind": "mileage", "km": "42,5", "route": "Oslo - Drammen",
                                        "spent_on": "2026-03-14", "purpose": "Client visit"})
    assert resp.status_code == 303 and "Oslo - Drammen" in client.get(resp.headers["Location"]).text
    resp = client.post("/claims", data={"kind": "travel", "start_date": "2026-03-14", "end_date": "2026-03-12",
                                        "destination": "Bergen", "purpose": "Conference"})
    assert resp.status_code == 400 and "must end on or after the day it starts" in resp.text
    resp = client.post("/claims", data={"kind": "travel", "start_date": "2026-03-12", "end_date": "2026-03-14",
                                        "destination": "Bergen", "purpose": "Conference"})
    assert "Bergen" in client.get(resp.headers["Location"]).text


def test_forms_need_the_csrf_token(make_expense):
    app = make_expense("http://127.0.0.1:9")
    client = signed_in(app)
    assert _outlay(client, PNG).status_code == 400


def test_norwegian_from_the_browser_or_the_link(expense):
    client = expense.test_client()
    assert "Logg inn" in client.get("/", headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"}).text
    assert "Sign in" in client.get("/", headers={"Accept-Language": "de"}).text
    assert "Logg inn" in client.get("/?lang=nb").text
    assert "Logg inn" in client.get("/").text  # remembered
    assert "Sign in" in client.get("/?lang=en").text


def test_the_session_cookie_holds_only_a_key(expense):
    client = signed_in(expense)
    cookie = client.get_cookie("expense_session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert "kari" not in cookie.value and len(cookie.value) < 64
