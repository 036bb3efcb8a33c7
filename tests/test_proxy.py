"""Behind reverse proxies: the client's address comes from the forwarding
header only when the request arrives from a trusted proxy (TRUSTED_PROXIES),
and then the throttles, the audit log and the sessions all see the client,
not the proxy. From anyone else the headers change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import csrf
from visma_idp import ConfigError
from visma_idp.config import load_settings

PROXY = "10.0.0.5"  # the nginx in front of the server
LB = "10.1.1.1"  # a load balancer in front of the nginx
ALICE = "198.51.100.7"
BOB = "203.0.113.80"
STRANGER = "192.0.2.66"  # talks to the server directly, not through the proxy
PASSWORD = "correct horse battery"


def browser(app, peer: str, **headers: str):
    """A test client whose TCP peer is ``peer``, sending ``headers`` with every request."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = peer
    for name, value in headers.items():
        c.environ_base["HTTP_" + name.upper().replace("-", "_")] = value
    return c


def login(c, email: str, password: str):
    page = c.get("/login").get_data(as_text=True)
    c.post("/login", data={"email": email, "csrf_token": csrf(page)})
    page = c.get("/login/password").get_data(as_text=True)
    return c.post("/login/password", data={"password": password, "csrf_token": csrf(page)})


def audit_ips(app, event: str) -> list[str | None]:
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        return [r.ip for r in db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))]


def session_ips(app) -> list[str | None]:
    from visma_idp.storage import SsoSession, db

    with app.app_context():
        return list(db.session.scalars(select(SsoSession.ip).order_by(SsoSession.created_at)))


@pytest.fixture
def behind_nginx(make_app, make_user):
    make_user()
    return make_app(TRUSTED_PROXIES=f"{PROXY} 10.1.0.0/16")


# -- nothing trusted (the default) -------------------------------------------------


def test_default_ignores_every_forwarding_header(app, make_user):
    make_user()
    c = browser(app, STRANGER, x_forwarded_for=ALICE, forwarded=f"for={ALICE}", x_real_ip=ALICE)
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert login(c, "kari@example.no", PASSWORD).status_code == 302
    assert audit_ips(app, "login_failed") == [STRANGER]
    assert audit_ips(app, "login_succeeded") == [STRANGER]
    assert session_ips(app) == [STRANGER]


def test_a_spoofed_header_from_an_untrusted_peer_changes_nothing(behind_nginx):
    app = behind_nginx
    c = browser(app, STRANGER, x_forwarded_for=f"{ALICE}, {PROXY}")
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(app, "login_failed") == [STRANGER]


def test_an_untrusted_peer_cannot_dodge_the_ip_throttle_by_rotating_the_header(make_app, make_user):
    make_user()
    app = make_app(TRUSTED_PROXIES=PROXY, THROTTLE_IP_MAX_FAILURES=3)
    for n in range(3):  # three accounts, so only the IP's count can stop the fourth try
        c = browser(app, STRANGER, x_forwarded_for=f"198.51.100.{n}")
        assert login(c, f"nobody{n}@example.no", "wrong password").status_code == 401
    c = browser(app, STRANGER, x_forwarded_for="198.51.100.99")
    assert login(c, "kari@example.no", PASSWORD).status_code == 429
    assert set(audit_ips(app, "login_throttled")) == {STRANGER}


# -- through a trusted proxy ------------------------------------------------------------


def test_through_a_trusted_proxy_the_audit_and_the_session_have_the_client(behind_nginx):
    app = behind_nginx
    # nginx appends the address it saw; what the client sent before it is not trusted
    c = browser(app, PROXY, x_forwarded_for=f"6.6.6.6, {ALICE}")
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert login(c, "kari@example.no", PASSWORD).status_code == 302
    assert audit_ips(app, "login_failed") == [ALICE]
    assert audit_ips(app, "login_succeeded") == [ALICE]
    assert session_ips(app) == [ALICE]


def test_the_ip_throttle_counts_clients_behind_one_proxy_apart(make_app, make_user):
    make_user()
    app = make_app(TRUSTED_PROXIES=PROXY, THROTTLE_IP_MAX_FAILURES=3)
    for n in range(3):
        c = browser(app, PROXY, x_forwarded_for=ALICE)
        assert login(c, f"nobody{n}@example.no", "wrong password").status_code == 401
    assert login(browser(app, PROXY, x_forwarded_for=ALICE), "kari@example.no", PASSWORD).status_code == 429
    # Bob comes through the same proxy: Alice's failures are not his
    assert login(browser(app, PROXY, x_forwarded_for=BOB), "kari@example.no", PASSWORD).status_code == 302
    assert set(audit_ips(app, "login_throttled")) == {ALICE}
    assert audit_ips(app, "login_succeeded") == [BOB]


def test_the_forgot_password_quota_counts_clients_behind_one_proxy_apart(make_app):
    from visma_idp.account.activation import within_quota

    app = make_app(TRUSTED_PROXIES=PROXY)
    seen = []

    @app.get("/_test/quota")  # a probe: the quota helper as the views call it
    def _probe():
        from flask import request

        seen.append(request.remote_addr)
        return "ok" if within_quota("forgot:ip:" + (request.remote_addr or "-"), 1, 3600) else ("over", 429)

    assert browser(app, PROXY, x_forwarded_for=ALICE).get("/_test/quota").status_code == 200
    assert browser(app, PROXY, x_forwarded_for=ALICE).get("/_test/quota").status_code == 429
    assert browser(app, PROXY, x_forwarded_for=BOB).get("/_test/quota").status_code == 200
    assert seen == [ALICE, ALICE, BOB]


def test_two_hops_load_balancer_then_nginx(make_app, make_user):
    make_user()
    app = make_app(TRUSTED_PROXIES=f"{PROXY} 10.1.0.0/16")
    # the load balancer appends the client, nginx appends the load balancer
    c = browser(app, PROXY, x_forwarded_for=f"6.6.6.6, {ALICE}, {LB}")
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(app, "login_failed") == [ALICE]


def test_hop_count(make_app, make_user):
    make_user()
    app = make_app(TRUSTED_PROXIES=2)
    c = browser(app, PROXY, x_forwarded_for=f"6.6.6.6, {ALICE}, {LB}")
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    c = browser(app, PROXY, x_forwarded_for=BOB)  # fewer addresses than hops: not through both proxies
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(app, "login_failed") == [ALICE, PROXY]


def test_rfc7239_forwarded_header(make_app, make_user):
    make_user()
    app = make_app(TRUSTED_PROXIES=PROXY, FORWARDED_HEADER="Forwarded")
    # only the configured header is read: an X-Forwarded-For the proxy passes along is ignored
    c = browser(app, PROXY, forwarded=f'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https;by={PROXY}',
                x_forwarded_for=BOB)
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(app, "login_failed") == ["2001:db8:cafe::17"]


def test_links_still_come_only_from_the_issuer(behind_nginx):
    c = browser(behind_nginx, PROXY, x_forwarded_for=ALICE, x_forwarded_host="evil.example",
                x_forwarded_proto="https", x_forwarded_prefix="/evil", forwarded="host=evil.example;proto=https")
    meta = c.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == "http://127.0.0.1:5000"
    assert all("evil" not in str(v) for v in meta.values())
    resp = c.get("/authorize?client_id=nobody")
    assert "evil" not in resp.get_data(as_text=True) + str(resp.headers)


@pytest.mark.parametrize("header", [
    "", " ", ",", ", ,", "not-an-ip", "unknown", "_hidden", "999.1.1.1", "1.2.3.4:port", "[::1", "[::1]x",
    "::1]:80", "1.2.3.4, nonsense", "\x00", "1.2.3.4\r\nX-Evil: 1", "a" * 5000, ",".join(["10.0.0.5"] * 500),
    "2001:db8::1:80:80:80:80:80:80", "fe80::1%" + "x" * 300, "[fe80::1%eth0]:80",
])
def test_a_malformed_header_never_fails_and_falls_back_to_the_peer(behind_nginx, header):
    c = browser(behind_nginx, PROXY, x_forwarded_for=header)
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(behind_nginx, "login_failed") == [PROXY]


@pytest.mark.parametrize("header", [
    "for", "for=", "for=;", 'for="1.2.3.4', "for=1.2.3.4;;", "for=1.2.3.4,,", "=1.2.3.4", "for=[::1]", 'for="[::1"',
    "for=unknown", 'for="_gazonk"', "by=1.2.3.4", "for=1.2.3.4 ;x", "for==1.2.3.4",
])
def test_a_malformed_forwarded_header_never_fails_and_falls_back_to_the_peer(make_app, make_user, header):
    make_user()
    app = make_app(TRUSTED_PROXIES=PROXY, FORWARDED_HEADER="forwarded")
    c = browser(app, PROXY, forwarded=header)
    assert login(c, "kari@example.no", "wrong password").status_code == 401
    assert audit_ips(app, "login_failed") == [PROXY]


# -- the rule itself, address by address ------------------------------------------------------


@pytest.mark.parametrize(("trusted", "peer", "header", "client"), [
    ("10.0.0.5", "10.0.0.5", "1.2.3.4", "1.2.3.4"),
    ("10.0.0.5", "10.0.0.6", "1.2.3.4", "10.0.0.6"),  # untrusted peer
    ("10.0.0.5", "10.0.0.5", None, "10.0.0.5"),  # no header
    ("10.0.0.5", "10.0.0.5", "9.9.9.9, 1.2.3.4", "1.2.3.4"),  # the leftmost is the client's own claim
    ("10.0.0.0/8", "10.0.0.5", "9.9.9.9, 1.2.3.4, 10.9.9.9", "1.2.3.4"),  # trusted hops are skipped
    ("10.0.0.0/8", "10.0.0.5", "10.2.2.2, 10.9.9.9", "10.2.2.2"),  # every hop trusted: the leftmost
    ("10.0.0.5", "10.0.0.5", "1.2.3.4:5678", "1.2.3.4"),  # some balancers add the port
    ("10.0.0.5", "10.0.0.5", "[2001:db8::1]:443", "2001:db8::1"),
    ("10.0.0.5", "10.0.0.5", "2001:DB8:0::1", "2001:db8::1"),  # stored in one spelling
    ("10.0.0.5", "::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4"),  # a dual-stack socket's IPv4 peer
    ("10.0.0.5", "10.0.0.5", "::ffff:1.2.3.4", "1.2.3.4"),
    ("2001:db8::/32", "2001:db8::7", "1.2.3.4", "1.2.3.4"),
    ("10.0.0.5", "10.0.0.5", "unknown, 1.2.3.4", "1.2.3.4"),  # garbage left of the client is never read
    ("10.0.0.5", "10.0.0.5", "1.2.3.4, unknown", "10.0.0.5"),
    ("10.0.0.5", "not-an-address", "1.2.3.4", "not-an-address"),
    ("10.0.0.5", None, "1.2.3.4", None),
    (1, "10.0.0.5", "9.9.9.9, 1.2.3.4", "1.2.3.4"),
    (2, "10.0.0.5", "9.9.9.9, 1.2.3.4, 10.1.1.1", "1.2.3.4"),
    (2, "10.0.0.5", "1.2.3.4", "10.0.0.5"),  # fewer addresses than hops
    (2, "10.0.0.5", "1.2.3.4, garbage", "1.2.3.4"),
    (2, "10.0.0.5", "garbage, 10.1.1.1", "10.0.0.5"),
])
def test_client_address(trusted, peer, header, client):
    from visma_idp.proxy import client_address, parse_trusted_proxies

    parsed = parse_trusted_proxies(trusted)
    assert client_address(peer=peer, header=header, trusted=parsed, forwarded=False) == client


@pytest.mark.parametrize(("header", "client"), [
    ("for=1.2.3.4", "1.2.3.4"),
    ("For=1.2.3.4;Proto=https", "1.2.3.4"),
    ('for="1.2.3.4:80"', "1.2.3.4"),
    ('for="[2001:db8::1]"', "2001:db8::1"),
    ("for=9.9.9.9, for=1.2.3.4", "1.2.3.4"),
    ("for=9.9.9.9,for=1.2.3.4;by=10.0.0.5", "1.2.3.4"),
    ('proto=https;for="1.2.3.4";host="a,b"', "1.2.3.4"),  # a comma inside quotes is not a separator
    ("for=1.2.3.4, for=10.0.0.9", "1.2.3.4"),
    ("for=unknown, for=1.2.3.4", "1.2.3.4"),
    ("for=1.2.3.4, for=unknown", "10.0.0.5"),
    ("for=1.2.3.4, by=10.0.0.9", "10.0.0.5"),  # an element without for=
])
def test_client_address_from_forwarded(header, client):
    from visma_idp.proxy import client_address, parse_trusted_proxies

    parsed = parse_trusted_proxies("10.0.0.0/8")
    assert client_address(peer="10.0.0.5", header=header, trusted=parsed, forwarded=True) == client


# -- the setting ------------------------------------------------------------------------


def test_the_setting_accepts_hops_addresses_and_networks(settings):
    from ipaddress import ip_network

    assert load_settings(settings)["TRUSTED_PROXIES"] is None
    assert load_settings({**settings, "TRUSTED_PROXIES": "2"})["TRUSTED_PROXIES"] == 2
    assert load_settings({**settings, "TRUSTED_PROXIES": 1})["TRUSTED_PROXIES"] == 1
    assert load_settings({**settings, "TRUSTED_PROXIES": "0"})["TRUSTED_PROXIES"] is None
    assert load_settings({**settings, "TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.1  ::1"})["TRUSTED_PROXIES"] == (
        ip_network("10.0.0.0/8"), ip_network("192.0.2.1/32"), ip_network("::1/128"))
    assert load_settings({**settings, "TRUSTED_PROXIES": ["10.0.0.0/8"]})["TRUSTED_PROXIES"] == (ip_network("10.0.0.0/8"),)
    assert load_settings({**settings, "FORWARDED_HEADER": "forwarded"})["FORWARDED_HEADER"] == "forwarded"
    assert load_settings(settings)["FORWARDED_HEADER"] == "x-forwarded-for"


def test_the_setting_from_the_environment_and_a_settings_file(settings, tmp_path):
    from ipaddress import ip_network

    env = {"VISMA_IDP_TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12"}
    base = dict(settings)
    assert load_settings(base, environ=env)["TRUSTED_PROXIES"] == (ip_network("10.0.0.0/8"), ip_network("172.16.0.0/12"))
    path = tmp_path / "idp.toml"
    path.write_text('TRUSTED_PROXIES = ["10.0.0.5", "fd00::/8"]\nFORWARDED_HEADER = "Forwarded"\n')
    loaded = load_settings(base, environ={"VISMA_IDP_CONFIG": str(path)})
    assert loaded["TRUSTED_PROXIES"] == (ip_network("10.0.0.5/32"), ip_network("fd00::/8"))
    assert loaded["FORWARDED_HEADER"] == "forwarded"
    path.write_text("TRUSTED_PROXIES = 2\n")
    assert load_settings(base, environ={"VISMA_IDP_CONFIG": str(path)})["TRUSTED_PROXIES"] == 2


@pytest.mark.parametrize(("name", "value", "says"), [
    ("TRUSTED_PROXIES", "10.0.0.1/8", "host bits"),
    ("TRUSTED_PROXIES", "nginx.internal", "nginx.internal"),
    ("TRUSTED_PROXIES", "-1", "-1"),
    ("TRUSTED_PROXIES", "*", "*"),
    ("TRUSTED_PROXIES", "0.0.0.0/0", "every address"),
    ("TRUSTED_PROXIES", "::/0", "every address"),
    ("TRUSTED_PROXIES", "100", "at most"),
    ("TRUSTED_PROXIES", True, "number"),
    ("TRUSTED_PROXIES", [1, 2], "1"),
    ("TRUSTED_PROXIES", "10.0.0.0/8 2", "2"),
    ("FORWARDED_HEADER", "X-Real-IP", "X-Forwarded-For or Forwarded"),
])
def test_a_wrong_setting_stops_start_up_naming_it(settings, name, value, says):
    with pytest.raises(ConfigError) as info:
        load_settings({**settings, name: value})
    assert info.value.setting == name
    assert says in info.value.message
