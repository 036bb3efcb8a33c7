"""The ``visma-idp`` console script, run in-process with click's CliRunner on
the test database, plus one real ``visma-idp serve`` in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from tests.helpers import drop_all_tables
from visma_idp import ConfigError
from visma_idp.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(settings):
    """The settings as VISMA_IDP_* variables, on a database with no tables."""
    drop_all_tables(settings["DATABASE_URL"])
    yield {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}
    drop_all_tables(settings["DATABASE_URL"])


@pytest.fixture
def run(env):
    """Run the CLI; ``run("users", "list", input=..., env={...})``."""

    def invoke(*args, input=None, env=None, expect=0):
        result = CliRunner().invoke(main, list(args), input=input, env={**run.env, **(env or {})})
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (result.stdout, result.stderr)
        return result

    run.env = env
    return invoke


@pytest.fixture
def migrated(run):
    run("db", "upgrade")
    return run


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# -- database ----------------------------------------------------------------


def test_unmigrated_database_is_refused(run):
    for command in (["users", "list"], ["clients", "list"], ["keys", "list"]):
        result = run(*command, expect=2)
        assert "visma-idp db upgrade" in result.stderr
        assert result.stdout == ""


def test_db_upgrade_and_current(run):
    assert "run `visma-idp db upgrade`" in run("db", "current").stdout
    assert "database at migration" in run("db", "upgrade").stdout
    out = run("db", "current").stdout
    assert "up to date" in out and "current: none" not in out
    run("users", "list")  # now allowed


# -- settings ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["users", "list"], ["db", "upgrade"], ["serve", "--port", "5999"]])
def test_wrong_setting_exits_2_naming_it(run, command):
    result = run(*command, env={"VISMA_IDP_ISSUER": "http://example.com"}, expect=2)
    assert result.stderr.startswith("visma-idp: configuration error: VISMA_IDP_ISSUER: ")
    assert "https" in result.stderr


def test_production_needs_a_secret_key(run):
    result = run("db", "upgrade", env={"VISMA_IDP_SECRET_KEY": None, "VISMA_IDP_MODE": "production"}, expect=2)
    assert result.stderr.startswith("visma-idp: configuration error: VISMA_IDP_SECRET_KEY: ")


# -- users -------------------------------------------------------------------


def test_users_create_refuses_a_weak_password(migrated):
    result = migrated("users", "create", "--email", "ola@example.no", "--name", "Ola", "--password", "short", expect=1)
    assert "at least 12 characters" in result.stderr
    assert "ola@example.no" not in migrated("users", "list").stdout


def test_users_create_reads_the_password_from_stdin(migrated, make_app):
    result = migrated("users", "create", "--email", "Ola@Example.no", "--name", "Ola Nordmann", input="correct horse battery\n")
    assert "ola@example.no" in result.stdout
    assert "correct horse battery" not in result.stdout + result.stderr

    lines = migrated("users", "list").stdout.splitlines()
    assert lines[0].split() == ["id", "email", "name", "active"]
    assert lines[1].split() == ["1", "ola@example.no", "Ola", "Nordmann", "yes"]

    from visma_idp.storage import User, db

    app = make_app()
    with app.app_context():
        user = db.session.scalar(db.select(User))
        hasher = app.extensions["visma_idp"].hasher
        assert hasher.verify(user.password_hash, "correct horse battery")
        assert not hasher.verify(user.password_hash, "correct horse battery\n")


def test_users_create_refuses_a_duplicate_and_an_empty_password(migrated):
    migrated("users", "create", "--email", "anne@example.no", "--name", "Anne", "--password", "correct horse battery")
    assert (
        "already exists"
        in migrated(
            "users", "create", "--email", "anne@example.no", "--name", "Anne", "--password", "correct horse battery", expect=1
        ).stderr
    )
    assert (
        "password is required" in migrated("users", "create", "--email", "bjorn@example.no", "--name", "Bjorn", input="\n", expect=1).stderr
    )


# -- clients -----------------------------------------------------------------


def test_clients_create_shows_the_secret_once_and_it_works(migrated, make_app):
    out = migrated(
        "clients",
        "create",
        "--client-id",
        "payroll",
        "--redirect-uri",
        "https://payroll.example/cb",
        "--grant-type",
        "client_credentials",
        "--grant-type",
        "authorization_code",
        "--scope",
        "openid profile api",
        "--name",
        "Payroll",
    ).stdout
    created = json.loads(out)
    secret = created["client_secret"]
    assert len(secret) >= 32
    assert created["client_id"] == "payroll"
    assert created["client_name"] == "Payroll"
    assert created["grant_types"] == ["client_credentials", "authorization_code"]
    assert created["token_endpoint_auth_method"] == "client_secret_basic"

    table = migrated("clients", "list")
    lines = migrated("clients", "list", "--json").stdout.splitlines()
    assert "payroll" in table.stdout and secret not in table.stdout + table.stderr
    assert len(lines) == 1 and secret not in lines[0]
    assert "client_secret" not in json.loads(lines[0])

    client = make_app(keys=True).test_client()
    resp = client.post("/token", data={"grant_type": "client_credentials", "scope": "api"}, headers=basic("payroll", secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["token_type"] == "Bearer"
    wrong = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic("payroll", "x" + secret))
    assert wrong.status_code == 401


def test_clients_create_never_echoes_a_given_secret(migrated):
    out = migrated(
        "clients", "create", "--client-id", "mine", "--secret", "given-secret-0123456789abcdef", "--redirect-uri", "https://rp.example/cb"
    ).stdout
    assert "given-secret" not in out
    assert "client_secret" not in json.loads(out)


def test_clients_create_public_native(migrated):
    created = json.loads(
        migrated(
            "clients",
            "create",
            "--client-id",
            "app",
            "--public",
            "--native",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--skip-consent",
        ).stdout
    )
    assert created["token_endpoint_auth_method"] == "none"
    assert created["application_type"] == "native"
    assert created["skip_consent"] is True and created["require_pkce"] is True
    assert "client_secret" not in created


def test_clients_create_refuses_bad_input(migrated):
    result = migrated("clients", "create", "--client-id", "bad", "--redirect-uri", "http://rp.example/cb", expect=1)
    assert "https" in result.stderr
    assert "bad" not in migrated("clients", "list").stdout


# -- keys --------------------------------------------------------------------


def kids_of(output):
    return {line.split()[1] for line in output.splitlines()}


def test_keys_rotate_keeps_old_public_keys_published(migrated, make_app):
    first = kids_of(migrated("keys", "rotate").stdout)
    assert len(first) == 4
    second = kids_of(migrated("keys", "rotate").stdout)
    assert len(second) == 4 and not first & second

    rows = [line.split() for line in migrated("keys", "list").stdout.splitlines()[1:]]
    by_kid = {row[0]: row for row in rows}
    assert first | second < set(by_kid) and len(by_kid) == 12  # and the four `db upgrade` made
    assert all(by_kid[kid][-1] == "yes" for kid in by_kid)  # retired keys still published
    assert all(by_kid[kid][4] == "-" for kid in second)  # not retired
    assert all(by_kid[kid][4] != "-" for kid in first)  # retired at (date time)

    app = make_app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        assert idp.keys.signing_key("RS256").kid in second
        jwks = {k["kid"] for k in app.test_client().get("/jwks").get_json()["keys"]}
        from visma_idp.storage import AuditEvent, db

        events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "keys_rotated")).all()
    assert first | second <= jwks
    assert len(events) == 2 and set(events[1].details["retired"]) == first
    assert set(events[1].details["new"]) == second


# -- demo --------------------------------------------------------------------


def test_seed_demo_keeps_the_same_credentials(migrated, make_app):
    from visma_idp.demo import seed_demo

    app = make_app(MODE="demo")
    first = seed_demo(app)
    again = seed_demo(make_app(MODE="demo"))
    assert again == first
    path = Path(first["file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["client_secret"] == first["client_secret"]

    client = make_app(keys=True).test_client()
    resp = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic("demo-client", first["client_secret"]))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    users = migrated("users", "list").stdout
    assert "demo@example.com" in users and "Demo User" in users


def test_the_demo_printout_names_the_redirect_uris(migrated, make_app, capsys):
    from visma_idp.demo import seed_demo
    from visma_idp.server import _print_demo

    credentials = seed_demo(make_app(MODE="demo"))
    _print_demo(credentials)
    out = capsys.readouterr().out
    assert credentials["redirect_uris"] == ["http://127.0.0.1:5001/callback", "http://localhost:5001/callback"]
    for uri in credentials["redirect_uris"]:
        assert f"redirect_uri   {uri}\n" in out
    assert "The Expense example app (examples/relying_party/, started by ./dev serve) is this client" in out
    assert f"colleague      {credentials['colleague']}\n" in out


def test_the_demo_client_is_the_expense_apps_registration(migrated, make_app):
    """Expense (examples/relying_party/) on 127.0.0.1:5001 uses the demo client: its
    URIs, the scope agreements, back-channel logout; the colleague is an employee of Nordlys."""
    from visma_idp.agreements import service
    from visma_idp.demo import seed_demo
    from visma_idp.storage import queries

    app = make_app(MODE="demo")
    credentials = seed_demo(app)
    with app.app_context():
        client = queries.client_by_id("demo-client")
        assert "agreements" in client.scope.split()
        assert "http://127.0.0.1:5001/logged-out" in client.post_logout_redirect_uris
        assert client.backchannel_logout_uri == "http://127.0.0.1:5001/backchannel-logout"
        assert client.requires_agreement
        colleague = queries.user_by_email(credentials["colleague"])
        nordlys = service.find("923456783")
        assert service.membership(colleague.id, nordlys.id).roles == [{"role": "employee", "client": None}]
    assert json.loads(Path(credentials["file"]).read_text())["expense_secret_key"]


def test_an_older_demo_instance_gets_what_expense_needs(migrated, make_app):
    from visma_idp.demo import seed_demo
    from visma_idp.storage import db, queries

    app = make_app(MODE="demo")
    first = seed_demo(app)
    path = Path(first["file"])
    old = json.loads(path.read_text())
    path.write_text(json.dumps({"password": old["password"], "client_secret": old["client_secret"]}))
    with app.app_context():
        client = queries.client_by_id("demo-client")
        client.scope, client.post_logout_redirect_uris, client.backchannel_logout_uri = "openid", [], None
        db.session.commit()
    again = seed_demo(make_app(MODE="demo"))
    assert again["password"] == first["password"] and again["colleague_password"]
    with app.app_context():
        client = queries.client_by_id("demo-client")
        assert "agreements" in client.scope.split() and client.backchannel_logout_uri


NO_SECRET = {"VISMA_IDP_SECRET_KEY": None, "VISMA_IDP_MODE": None}


@pytest.fixture
def demo_instance(migrated, make_app):
    """What `./dev serve` leaves behind: a generated secret key and the demo
    credentials in the instance folder, the demo user and client in the database."""
    from visma_idp.demo import seed_demo

    return seed_demo(make_app(MODE="demo", SECRET_KEY=None))


def test_commands_reach_the_demo_instance_when_no_secret_key_is_set(demo_instance, migrated):
    result = migrated("clients", "list", env=NO_SECRET)
    assert "demo-client" in result.stdout
    assert result.stderr.startswith("visma-idp: VISMA_IDP_SECRET_KEY is not set: using the demo instance in ")
    assert "demo@example.com" in migrated("users", "list", env=NO_SECRET).stdout
    # the demo's own secret key: the client's secret still works against that instance
    created = json.loads(migrated("clients", "create", "--client-id", "mine", "--redirect-uri",
                                  "http://127.0.0.1:5001/cb", env=NO_SECRET).stdout)
    assert created["client_id"] == "mine"


def test_a_secret_key_that_is_set_always_means_production(demo_instance, migrated, tmp_path):
    result = migrated("clients", "list", env={"VISMA_IDP_MODE": None})  # the test's SECRET_KEY is set
    assert "demo instance" not in result.stderr
    short = migrated("clients", "list", env={"VISMA_IDP_MODE": None, "VISMA_IDP_SECRET_KEY": "short"}, expect=2)
    assert short.stderr.startswith("visma-idp: configuration error: VISMA_IDP_SECRET_KEY: must be at least 32")
    explicit = migrated("clients", "list", env={**NO_SECRET, "VISMA_IDP_MODE": "production"}, expect=2)
    assert "is required in production mode" in explicit.stderr and "demo instance" not in explicit.stderr
    config = tmp_path / "idp.toml"
    config.write_text(f'SECRET_KEY = "{"k" * 40}"\n')
    from_file = migrated("users", "list", env={**NO_SECRET, "VISMA_IDP_CONFIG": str(config)})
    assert "demo instance" not in from_file.stderr


def test_without_a_demo_instance_a_missing_secret_key_is_still_an_error(migrated):
    result = migrated("clients", "list", env=NO_SECRET, expect=2)
    assert result.stderr.startswith("visma-idp: configuration error: VISMA_IDP_SECRET_KEY: is required")


def test_serve_never_switches_to_the_demo_instance_by_itself(demo_instance, run):
    result = run("serve", "--port", "5999", env={**NO_SECRET, "VISMA_IDP_MAIL_FLUSH_AFTER_REQUEST": None}, expect=2)
    assert result.stderr.startswith("visma-idp: configuration error: VISMA_IDP_SECRET_KEY: is required")


# -- demo mode listens on loopback only -------------------------------------------------------

QUIET = {"VISMA_IDP_MAIL_FLUSH_AFTER_REQUEST": None}  # serve sets it; give it back after the test


@pytest.fixture
def no_database():
    """A database URL nothing answers at: a serve that got past its checks fails
    at once on it (instead of starting a server inside the test)."""
    return {"VISMA_IDP_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/idp"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "2001:db8::5", "idp.example.com"])
def test_demo_refuses_a_public_address(run, no_database, host):
    result = run("serve", "--demo", "--host", host, "--port", "5999", env={**QUIET, **no_database}, expect=1)
    assert result.stderr.startswith(f"visma-idp: refusing to run demo mode on {host}: ")
    assert "/dev/outbox" in result.stderr and "--demo-on-public-address" in result.stderr


def test_demo_mode_from_the_environment_refuses_a_public_address_too(run, no_database):
    result = run("serve", "--host", "0.0.0.0", "--port", "5999",
                 env={**QUIET, **no_database, "VISMA_IDP_MODE": "demo"}, expect=1)
    assert result.stderr.startswith("visma-idp: refusing to run demo mode on 0.0.0.0: ")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_demo_on_loopback_passes_the_address_check(run, host):
    # a wrong issuer stops serve right after the address check: it got that far
    result = run("serve", "--demo", "--host", host, "--port", "5999",
                 env={**QUIET, "VISMA_IDP_ISSUER": "http://example.com"}, expect=2)
    assert result.stderr.startswith("visma-idp: configuration error: VISMA_IDP_ISSUER: ")


def test_seed_demo_only_in_demo_mode(migrated, make_app):
    from visma_idp.demo import seed_demo

    with pytest.raises(ConfigError) as info:
        seed_demo(make_app())
    assert info.value.setting == "MODE"
    assert "demo@example.com" not in migrated("users", "list").stdout


# -- the real server ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("visma-idp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "visma_idp.cli"]


def start_server(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([*cli_command(), "serve", *args], cwd=ROOT, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> requests.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()}")


def stop_server(proc: subprocess.Popen, log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=30)
    output = log.read_text()
    assert status == 0, output
    return output


@pytest.mark.slow
def test_serve_default_threads_fit_the_cpus(env, tmp_path):
    """No --threads: as many as granian accepts without its "quite high" warning."""
    import multiprocessing

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start_server(["--demo", "--port", str(port)], {**env, "VISMA_IDP_ISSUER": issuer}, log)
    try:
        assert wait_until_up(proc, f"{issuer}/healthz", log).text == "ok\n"
        ready = requests.get(f"{issuer}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    finally:
        output = stop_server(proc, log)
    threads = int(output.split("1 worker(s) x ")[1].split(" ")[0])
    assert 1 <= threads <= min(8, 2 * multiprocessing.cpu_count() + 1), output
    assert "WARNING" not in output.upper(), output
    assert "http://127.0.0.1:5001/callback" in output  # the demo's redirect URIs are shown


@pytest.mark.slow
def test_serve_demo_on_a_public_address_when_forced(env, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start_server(["--demo", "--host", "0.0.0.0", "--port", str(port), "--demo-on-public-address",
                         "--threads", "2"], {**env, "VISMA_IDP_ISSUER": f"http://127.0.0.1:{port}"}, log)
    try:
        assert wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", log).status_code == 200
    finally:
        output = stop_server(proc, log)
    assert "visma-idp: WARNING: demo mode on 0.0.0.0, not loopback: anyone who reaches this server reads every email" in output


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_serve_runs_the_server_on_a_migrated_database(env, settings, tmp_path, server):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc_env = {**os.environ, **env, "VISMA_IDP_ISSUER": issuer}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cli_command(), "serve", "--demo", "--port", str(port), "--threads", "2", "--server", server],
            cwd=ROOT,
            env=proc_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        config = None
        deadline = time.monotonic() + 60
        while config is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2).json()
            except requests.ConnectionError:
                time.sleep(0.2)
        assert config is not None, log.read_text()
        assert config["issuer"] == issuer
        assert config["token_endpoint"] == f"{issuer}/token"

        credentials = json.loads((Path(settings["INSTANCE_PATH"]) / "demo_credentials.json").read_text())
        resp = requests.post(
            f"{issuer}/token", data={"grant_type": "client_credentials"}, auth=("demo-client", credentials["client_secret"]), timeout=5
        )
        assert resp.status_code == 200, resp.text
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
    output = log.read_text()
    assert status == 0, output
    assert credentials["client_secret"] in output  # demo credentials are shown at start
    assert f"({server}, 1 worker(s) x 2 thread(s))" in output
    assert ("Granian" if server == "granian" else "gthread") in output


def test_idp_server_has_the_serve_options():
    result = subprocess.run([sys.executable, "idp_server.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--workers", "--threads", "--server", "--dev", "--demo", "--demo-on-public-address"):
        assert option in result.stdout
    assert "upgrades the database" in result.stdout


# -- the dev script -------------------------------------------------------------------


def test_dev_waits_for_another_apt_process(tmp_path):
    """./dev's apt_get tries `apt-get update` again while another apt holds the
    package lists' lock (DPkg::Lock::Timeout covers only the dpkg lock), and
    asks apt-get to wait for the dpkg lock itself."""
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    calls = tmp_path / "calls"
    fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
if [[ $(wc -l < {calls}) -lt 3 ]]; then
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42 (apt-get)" >&2
    exit 100
fi
echo "Reading package lists..."
""")
    fake.chmod(0o755)
    script = 'eval "$(sed -n \'/^APT_LOCK_WAIT=/,/^}/p\' dev)"; apt_get update -q'
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "waiting" in result.stderr
    assert calls.read_text().splitlines() == ["-o DPkg::Lock::Timeout=600 update -q"] * 3


def test_dev_runs_apt_only_through_the_waiting_apt_get():
    import re

    text = (ROOT / "dev").read_text()
    bare = re.findall(r"^[ \t]*(?:\w+=[\w-]*[ \t]+)*apt-get[ \t].*$", text, re.MULTILINE)
    assert bare == [], bare
    assert re.search(r"^\s*apt_get update ", text, re.MULTILINE) and re.search(r"^\s*apt_get install ", text, re.MULTILINE)


def test_dev_gives_up_at_once_on_other_apt_errors(tmp_path):
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text("#!/usr/bin/env bash\necho 'E: Unable to locate package chromium' >&2\nexit 100\n")
    fake.chmod(0o755)
    script = 'eval "$(sed -n \'/^APT_LOCK_WAIT=/,/^}/p\' dev)"; apt_get install -y chromium'
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}, timeout=60)
    assert result.returncode == 100
    assert "Unable to locate package chromium" in result.stderr and "waiting" not in result.stderr
