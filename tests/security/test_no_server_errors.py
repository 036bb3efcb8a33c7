"""Bad input never gets a 500: every route of the app, with and without a
signed-in session and a pending sign-in, answers garbage with a 4xx (or a
normal page), never a server error."""

from __future__ import annotations

from tests.helpers import csrf

GARBAGE_VALUES = ["", "\x00", "x" * 5000, "../../etc/passwd", "%", "😀", "1e309", "-1", "<script>", "null"]
FIELDS = ["email", "password", "password2", "current_password", "code", "name", "method", "tx", "token",
          "factor", "credential", "phone", "given_name", "family_name", "locale", "next", "decision", "pow",
          "pow_challenge", "remember", "kind", "notify_profile_changes", "link"]


def routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "garbage-value-0123456789abcdef").replace(f"<int:{arg}>", "999999")
            path = path.replace(f"<string:{arg}>", "garbage")
        methods = sorted(m for m in rule.methods if m in {"GET", "POST"})
        yield path, methods


def hit_everything(app, client, token):
    failures = []
    sent = 0
    for path, methods in routes(app):
        for method in methods:
            for value in GARBAGE_VALUES[:4] if method == "GET" else GARBAGE_VALUES:
                data = {name: value for name in FIELDS}
                data["csrf_token"] = token
                if method == "GET":
                    resp = client.get(path, query_string={"tx": value, "method": value, "next": value,
                                                          "lang": value, "done": value})
                else:
                    resp = client.post(path, data=data, headers={"X-CSRFToken": token})
                sent += 1
                if resp.status_code >= 500 and not (path == "/readyz" and resp.status_code == 503):
                    # 503 is /readyz's "not ready" (the fixture's tables come from create_all, not migrations)
                    failures.append((method, path, repr(value)[:20], resp.status_code))
    assert sent > 300, "the walk reached too few routes"
    return failures


def test_anonymous(app, client):
    token = csrf(client.get("/login").get_data(as_text=True))
    assert hit_everything(app, client, token) == []


def test_signed_in(app, flow):
    flow.tokens()
    token = csrf(flow.client.get("/account").get_data(as_text=True))
    assert hit_everything(app, flow.client, token) == []


def test_in_a_pending_sign_in(app, make_app, make_user):
    make_user()
    app = make_app(MFA_REQUIRED=True)  # the password alone leaves the sign-in pending
    client = app.test_client()
    page = client.get("/login")
    client.post("/login", data={"email": "kari@example.no", "csrf_token": csrf(page.get_data(as_text=True))})
    page = client.get("/login/password")
    resp = client.post("/login/password", data={"password": "correct horse battery",
                                                "csrf_token": csrf(page.get_data(as_text=True))})
    assert "/account/security" in resp.headers["Location"]
    token = csrf(client.get("/account/confirm-password").get_data(as_text=True))
    assert hit_everything(app, client, token) == []
