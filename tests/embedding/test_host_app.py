"""The provider embedded in a host app named ``hostapp`` (not ``visma_idp``),
at the root of its URL space and under ``/idp``: our pages, static files and
translations are found, every link and form of ours stays under the issuer,
a whole sign-in redeems a code, and the host's own routes, templates and
static files keep working beside ours (its templates win over ours)."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import urlsplit

import pytest

from tests.embedding.conftest import flow_for
from tests.helpers import path_of
from visma_idp import api
from visma_idp.oidc.tokens import verify

ATTR_RE = re.compile(r'\b(?:href|src|action)="([^"]*)"')
STYLESHEET_RE = re.compile(r'<link rel="stylesheet" href="([^"]+)">')
SCRIPT_RE = re.compile(r'<script src="([^"]+)"')

PASSWORD = "correct horse battery"


def our_urls(html: str) -> list[str]:
    return [html_lib.unescape(v) for v in ATTR_RE.findall(html) if v and not v.startswith(("data:", "#"))]


def assert_under_issuer(html: str, host) -> None:
    """Every link, form action and resource of the page is ours: under the issuer."""
    issuer = host.issuer
    for url in our_urls(html):
        if url.startswith(("http://", "https://")):
            assert url == issuer or url.startswith(issuer + "/") or url.startswith(issuer + "?"), url
        else:
            assert url.startswith(host.prefix + "/"), url


def new_user_and_client(app, **client_options):
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password=PASSWORD)
    return api.create_client(app, "expense", redirect_uris=["https://rp.example.com/callback"],
                             scope="openid profile email", **client_options)


def test_our_pages_answer_in_a_host_app_of_another_name(host):
    client = host.client()
    assert host.app.import_name == "hostapp"
    for path in ("/login", "/password/forgot", "/activate/sent", "/.well-known/openid-configuration", "/jwks"):
        resp = client.get(host.prefix + path)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:300])
        if resp.mimetype == "text/html":
            assert_under_issuer(resp.get_data(as_text=True), host)
    assert len(client.get(host.prefix + "/jwks").get_json()["keys"]) == 4  # a fresh database has keys
    dead_link = client.get(host.prefix + "/activate/no-such-link")  # the page that offers a new link
    assert dead_link.status_code == 404
    assert f'action="{host.issuer}/activate/resend"' in dead_link.get_data(as_text=True)
    assert_under_issuer(dead_link.get_data(as_text=True), host)


def test_our_static_files_load_and_keep_off_the_hosts_static(host):
    client = host.client()
    html = client.get(host.prefix + "/password/forgot").get_data(as_text=True)
    sheets, scripts = STYLESHEET_RE.findall(html), SCRIPT_RE.findall(html)
    assert sheets and scripts, html
    for url in sheets + scripts:
        path = path_of(html_lib.unescape(url))
        assert not path.startswith("/static/"), f"{path} is the host's static folder's path"
        with client.get(path) as resp:
            assert resp.status_code == 200, path
            assert resp.mimetype in {"text/css", "text/javascript", "application/javascript"}
    with client.get(path_of(sheets[0])) as resp:
        assert b"--accent" in resp.data  # our style.css, not the host's
    with client.get("/static/host.css") as resp:
        assert resp.data == b"body { color: #123456; }\n"  # the host's own


def test_the_csp_stays_self_on_our_pages(host):
    resp = host.client().get(host.prefix + "/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "style-src 'self'" in csp and "form-action 'self'" in csp


def test_discovery_names_endpoints_the_app_serves(host):
    client = host.client()
    meta = client.get(host.prefix + "/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == host.issuer
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "introspection_endpoint", "revocation_endpoint", "end_session_endpoint"):
        assert meta[name].startswith(host.issuer + "/"), (name, meta[name])
    assert client.get(path_of(meta["jwks_uri"])).status_code == 200
    assert client.get(path_of(meta["authorization_endpoint"])).status_code == 400  # served: no parameters
    assert client.post(path_of(meta["token_endpoint"])).status_code in {400, 401}


def test_a_sign_in_through_the_forms_redeems_a_code(host):
    created = new_user_and_client(host.app)
    flow = flow_for(host, secret=created.secret)
    first = flow.start(scope="openid email")
    assert urlsplit(first.headers["Location"]).path == host.prefix + "/login"
    page = flow.client.get(path_of(first.headers["Location"])).get_data(as_text=True)
    assert_under_issuer(page, host)

    tokens = flow.tokens(scope="openid email")

    with host.app.app_context():
        _, claims = verify(host.idp.keys, tokens["id_token"], issuer=host.issuer)
    assert claims["aud"] == "expense" and claims["nonce"] == flow.last["nonce"]
    info = flow.client.get(host.prefix + "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status_code == 200 and info.get_json()["email"] == "kari@example.no"
    account = flow.client.get(host.prefix + "/account")  # the browser is signed in with us
    assert account.status_code == 200 and "kari@example.no" in account.get_data(as_text=True)
    assert_under_issuer(account.get_data(as_text=True), host)


def test_the_hosts_own_routes_and_templates_still_work(host):
    client = host.client()
    front = client.get("/")
    assert front.status_code == 200 and "<h1>Host front page</h1>" in front.get_data(as_text=True)
    assert f'href="{host.issuer}/login"' in front.get_data(as_text=True)  # idp_url() in the host's templates
    shop = client.get("/shop")  # registered after IdentityProvider(app)
    assert shop.status_code == 200 and "<h1>Host shop</h1>" in shop.get_data(as_text=True)
    with client.get("/static/host.css") as resp:
        assert resp.status_code == 200


def test_a_host_template_replaces_ours(host):
    api.create_user(host.app, email="ola@example.no", name="Ola Nordmann")  # invited: a Welcome email
    from visma_idp.storage import MailOutbox, db

    with host.app.app_context():
        subjects = [m.subject for m in db.session.scalars(db.select(MailOutbox))]
    assert subjects == ["Welcome to the host portal"]


def test_pages_in_norwegian(host):
    html = host.client().get(host.prefix + "/login?lang=nb").get_data(as_text=True)
    assert '<html lang="nb">' in html and "Logg inn" in html and "E-postadresse" in html


def test_activation_link_from_an_invitation_works(host):
    from visma_idp.storage import MailOutbox, db

    api.create_user(host.app, email="ola@example.no", name="Ola Nordmann")
    with host.app.app_context():
        text = db.session.scalars(db.select(MailOutbox)).one().text_body
    link = re.search(r"https?://\S+/activate/\S+", text).group(0)
    assert link.startswith(host.issuer + "/activate/")
    client = host.client()
    page = client.get(path_of(link))
    assert page.status_code == 200, page.get_data(as_text=True)
    assert_under_issuer(page.get_data(as_text=True), host)


@pytest.mark.parametrize("prefix", ["/idp"])
def test_our_home_page_under_a_prefix_is_the_hosts_override(make_host, prefix):
    app = make_host(prefix=prefix)
    html = app.test_client().get(prefix + "/").get_data(as_text=True)
    assert "<h1>Host&#39;s own provider home</h1>" in html or "<h1>Host's own provider home</h1>" in html
    assert STYLESHEET_RE.search(html)  # the override extends our base.html


def test_confirming_the_password_returns_to_the_page_that_asked(host):
    """Changing a factor asks for the password again (factors/views.py) and
    then goes back to the page that asked, under the issuer's path."""
    from tests.helpers import csrf

    created = new_user_and_client(host.app)
    flow = flow_for(host, secret=created.secret)
    flow.tokens()  # signed in
    host.idp.clock.advance(600)  # the password is no longer recent
    ask = flow.client.get(host.prefix + "/account/security/totp")
    assert ask.status_code == 302
    assert urlsplit(ask.headers["Location"]).path == host.prefix + "/account/confirm-password"
    page = flow.client.get(path_of(ask.headers["Location"]))
    html = page.get_data(as_text=True)
    assert_under_issuer(html, host)
    back = re.search(r'name="next" value="([^"]+)"', html).group(1)
    done = flow.client.post(host.prefix + "/account/confirm-password",
                            data={"password": PASSWORD, "next": back, "csrf_token": csrf(html)})
    assert done.status_code == 302
    assert done.headers["Location"] == host.issuer + "/account/security/totp"
    assert flow.client.get(path_of(done.headers["Location"])).status_code == 200
