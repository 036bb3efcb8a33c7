"""Two concurrent redemptions of one authorization code, against a real
threaded HTTP server: exactly one wins, the other gets invalid_grant, and the
loser's attempt revokes everything the winner got (RFC 6749 §4.1.2, RFC 9700
§4.2.4: a code used twice means it leaked)."""

from __future__ import annotations

import threading

import pytest
import requests

ROUNDS = 3


def redeem_concurrently(base_url: str, form: dict, auth: tuple[str, str]) -> list[requests.Response]:
    barrier = threading.Barrier(2)
    results: list[requests.Response | BaseException] = [None, None]  # type: ignore[list-item]

    def worker(i: int) -> None:
        with requests.Session() as http:
            try:
                barrier.wait(timeout=10)
                results[i] = http.post(base_url + "/token", data=form, auth=auth, timeout=30)
            except BaseException as exc:  # noqa: BLE001 - reported below
                results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def introspect(flow, token: str) -> dict:
    resp = flow.client.post("/introspect", data={"token": token}, headers=flow.basic())
    assert resp.status_code == 200
    return resp.get_json()


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_one_code_two_redemptions(flow, live_server, audit_rows, round_no):
    params = flow.authorize(scope="openid offline_access")
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.last["verifier"]}
    responses = redeem_concurrently(live_server, form, (flow.client_id, flow.client_secret))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 400).json()
    assert loser["error"] == "invalid_grant"
    assert "access_token" not in loser
    assert {"access_token", "refresh_token", "id_token"} <= set(winner)

    # the loser's attempt revoked what the winner received
    resp = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + winner["access_token"]})
    assert resp.status_code == 401
    assert introspect(flow, winner["access_token"]) == {"active": False}
    assert introspect(flow, winner["refresh_token"]) == {"active": False}
    refreshed = flow.client.post("/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": winner["refresh_token"]}, headers=flow.basic())
    assert refreshed.status_code == 400
    assert refreshed.get_json()["error"] == "invalid_grant"
    assert [row["event"] for row in audit_rows("code_reuse_detected")] == ["code_reuse_detected"]


def test_sequential_reuse_also_revokes(flow, audit_rows):
    params = flow.authorize(scope="openid offline_access")
    first = flow.token(params["code"])
    assert first.status_code == 200
    tokens = first.get_json()
    assert flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 200
    again = flow.token(params["code"])
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    assert flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 401
    assert introspect(flow, tokens["refresh_token"]) == {"active": False}
    assert len(audit_rows("code_reuse_detected")) == 1
