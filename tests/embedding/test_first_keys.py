"""The first signing keys: ``db upgrade`` (``api.upgrade_database``) makes
them, and so does the first request that needs them on a database that has
none (one migrated by an older release), so ``/jwks`` and ``/token`` never
fail for want of a key. Workers or nodes starting at once on one database
end with one active key per algorithm (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import text

from tests.embedding.conftest import Host, flow_for
from visma_idp import api
from visma_idp.oidc.keys import ALGORITHMS

ROUNDS = 3


def active_by_alg(app) -> Counter:
    return Counter(k.alg for k in api.list_keys(app) if k.retired_at is None)


def drop_keys(app) -> None:
    from visma_idp.storage import db

    with app.app_context():
        db.session.execute(text("DELETE FROM signing_keys"))
        db.session.commit()


def test_upgrade_creates_one_key_per_algorithm_once(make_host):
    app = make_host(migrate=False)
    created = api.upgrade_database(app)
    assert len(created) == len(ALGORITHMS)
    assert active_by_alg(app) == Counter(ALGORITHMS)
    assert api.upgrade_database(app) == []  # the next start changes nothing
    assert active_by_alg(app) == Counter(ALGORITHMS)


def test_jwks_on_a_database_without_keys(make_host):
    app = make_host()
    drop_keys(app)
    other = make_host(migrate=False)  # another worker, started on the empty key table
    resp = other.test_client().get("/jwks")
    assert resp.status_code == 200
    assert sorted(k["alg"] for k in resp.get_json()["keys"]) == sorted(ALGORITHMS)
    assert active_by_alg(app) == Counter(ALGORITHMS)


def test_a_workers_first_request_is_the_token_endpoint(make_host):
    """The sign-in runs on one worker; the code is redeemed on another that has
    never seen a key, while the key table is empty: it creates the keys before
    the token endpoint's own transaction writes (on SQLite it would otherwise
    wait for itself), and signs."""
    app = make_host()
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="correct horse battery")
    created = api.create_client(app, "expense", redirect_uris=["https://rp.example.com/callback"])
    flow = flow_for(Host(app, ""), secret=created.secret)
    params = flow.authorize()
    drop_keys(app)

    worker = make_host(migrate=False)
    flow.client = worker.test_client()
    resp = flow.token(params["code"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["id_token"]
    assert active_by_alg(app) == Counter(ALGORITHMS)


def race(apps, action) -> list:
    """Run ``action(app)`` for every app in its own thread, released together."""
    barrier = threading.Barrier(len(apps))
    results: list = [None] * len(apps)
    errors: list = []

    def run(i, app):
        try:
            barrier.wait(10)
            results[i] = action(app)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, app)) for i, app in enumerate(apps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def ensure_keys(app) -> list[str]:
    with app.app_context():  # as `visma-idp serve` calls it
        return app.extensions["visma_idp"].keys.ensure_keys()


def test_two_processes_creating_the_first_keys_at_once(make_host):
    first = make_host()
    second = make_host(migrate=False)  # its own engine and connections: another process, as the database sees it
    for _ in range(ROUNDS):
        drop_keys(first)
        made = race([first, second], ensure_keys)
        assert active_by_alg(first) == Counter(ALGORITHMS), made
        assert sorted(len(m) for m in made) == [0, len(ALGORITHMS)]  # one made them all, the other none


def test_two_workers_first_requests_at_once(make_host):
    first = make_host()
    second = make_host(migrate=False)
    for _ in range(ROUNDS):
        drop_keys(first)
        for app in (first, second):
            app.extensions["visma_idp"].keys.invalidate()  # as a worker that starts now
        answers = race([first, second], lambda app: app.test_client().get("/jwks").get_json())
        assert active_by_alg(first) == Counter(ALGORITHMS)
        assert answers[0] == answers[1]  # both publish the same keys


def test_rotating_at_once_leaves_one_active_key_per_algorithm(make_host):
    first = make_host()
    second = make_host(migrate=False)
    race([first, second], api.rotate_keys)
    assert active_by_alg(first) == Counter(ALGORITHMS)
