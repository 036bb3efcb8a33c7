"""The deployment files (``deploy/``) and docs/deployment.md against the code.

Every ``visma-idp`` command line in the systemd units, the Containerfile and
the Kubernetes manifests is parsed by the real click command (options and
values); the documentation's command lines name real commands and options;
every ``VISMA_IDP_*`` name is a setting; the probes point at routes the app
has; the pods and the image run as the same non-root user on a read-only
root file system; the settings the files give load without a configuration
error; nginx forwards the header and the address the settings trust.
"""

from __future__ import annotations

import configparser
import functools
import json
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from visma_idp.cli import main
from visma_idp.config import BY_NAME, load_settings
from visma_idp.errors import ConfigError
from visma_idp.proxy import parse_trusted_proxies

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
CONTAINERFILE = DEPLOY / "Containerfile"
NGINX = DEPLOY / "nginx" / "visma-idp.conf"
DOC = ROOT / "docs" / "deployment.md"
INSTALLED_CLI = "/opt/visma-idp/.venv/bin/visma-idp"  # where docs/deployment.md installs it for systemd

WORKLOADS = {"Deployment", "Job", "CronJob"}


# -- helpers ----------------------------------------------------------------------


@functools.cache
def manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> list[dict]:
    return [doc for _name, doc in manifests() if doc["kind"] == kind]


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def server_deployment() -> dict:
    [server] = [d for d in by_kind("Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"]
    return server


def containerfile_lines() -> list[str]:
    """The Containerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def containerfile(instruction: str) -> list[str]:
    return [line.split(None, 1)[1] for line in containerfile_lines() if line.split(None, 1)[0] == instruction]


def image_entrypoint() -> list[str]:
    [entrypoint] = containerfile("ENTRYPOINT")
    return json.loads(entrypoint)


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


@functools.cache
def units() -> dict[str, configparser.ConfigParser]:
    return {p.name: unit(p) for p in sorted(SYSTEMD.glob("visma-idp*.service")) + sorted(SYSTEMD.glob("*.timer"))}


def resolve(args: list[str], *, group_ok: bool = False) -> tuple[click.Command, list[str], list[str]]:
    """The click command a ``visma-idp`` argument list names, its path, and the arguments left for it
    (``group_ok``: the list may stop at a group, as prose does: "the `visma-idp db` commands")."""
    command: click.Command = main
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`visma-idp {' '.join(path + rest[:1])}` is not a command"
        command, path, rest = sub, path + [rest[0]], rest[1:]
    assert (group_ok and not rest) or not isinstance(command, click.Group), \
        f"`visma-idp {' '.join(path)}` needs a subcommand"
    return command, path, rest


def deployed_command_lines() -> list[tuple[str, list[str]]]:
    """Every ``visma-idp`` command line of deploy/: (where, arguments after ``visma-idp``)."""
    found: list[tuple[str, list[str]]] = []
    for name, parser in units().items():
        for key in ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecReload"):
            if parser.has_option("Service", key):
                argv = shlex.split(parser.get("Service", key))
                if argv[0].endswith("/visma-idp"):
                    assert argv[0] == INSTALLED_CLI, f"{name}: {argv[0]}"
                    found.append((f"{name} {key}", argv[1:]))
    [cmd] = containerfile("CMD")
    assert image_entrypoint() == ["visma-idp"]
    found.append(("Containerfile CMD", json.loads(cmd)))
    for filename, doc in manifests():
        if doc["kind"] not in WORKLOADS:
            continue
        for container in pod_spec(doc)["containers"]:
            argv = container.get("command", image_entrypoint()) + container.get("args", [])
            if Path(argv[0]).name == "visma-idp":
                found.append((f"{filename} {container['name']}", argv[1:]))
    return found


def doc_command_lines() -> list[str]:
    """``visma-idp ...`` command lines in docs/deployment.md: inline code and indented lines.

    Not the name in other roles: a namespace or group (``-n visma-idp``,
    ``-g visma-idp``), a path (``deploy/visma-idp``), a unit
    (``restart visma-idp visma-idp-mail``).
    """
    text = DOC.read_text()
    candidates = re.findall(r"`([^`\n]+)`", text)
    candidates += [line.strip() for line in text.splitlines() if line.startswith("    ")]
    lines = []
    for candidate in candidates:
        for match in re.finditer(r"(?<![-\w/])(?<!-n )(?<!-g )(?<!-o )visma-idp((?: [^\s;&|)#`]+)+)", candidate):
            words = match.group(1).split()
            if words[0].startswith("visma-idp") or words[0].endswith((".service", ".timer")):
                continue  # systemctl restart visma-idp visma-idp-mail ...
            lines.append(match.group(1).strip())
    return lines


def setting_names(text: str) -> set[str]:
    return set(re.findall(r"\bVISMA_IDP_([A-Z0-9_]+)", text))


def server_argv(argv: list[str]) -> dict[str, object]:
    command, path, rest = resolve(argv)
    assert path == ["serve"]
    return command.make_context("serve", list(rest)).params


@pytest.fixture(scope="module")
def standalone_app(tmp_path_factory):
    """The standalone provider app (``visma_idp.wsgi:app`` builds the same), built once for this file."""
    from visma_idp import create_app

    folder = tmp_path_factory.mktemp("deployment")
    return create_app({"ISSUER": "http://127.0.0.1:5000", "SECRET_KEY": "x" * 40,
                       "DATABASE_URL": f"sqlite:///{folder / 'idp.db'}", "INSTANCE_PATH": str(folder)})


def settings_from(environ: dict[str, str]) -> dict:
    """load_settings on exactly these variables (nothing from this process's environment)."""
    return load_settings(environ=environ)


# -- Kubernetes -------------------------------------------------------------------


def test_every_manifest_parses_and_lives_in_the_namespace():
    docs = manifests()
    assert {doc["kind"] for _name, doc in docs} >= {
        "Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service", "PodDisruptionBudget", "CronJob"}
    for name, doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], name
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "visma-idp", name


def test_the_server_has_three_replicas_and_probes_on_the_health_routes(standalone_app):
    server = server_deployment()
    assert server["spec"]["replicas"] == 3
    [container] = pod_spec(server)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    params = server_argv(container["args"])
    assert ports == {"http": params["port"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    # /readyz waits up to DATABASE_CONNECT_TIMEOUT for the database: the probe must wait longer
    assert container["readinessProbe"]["timeoutSeconds"] > BY_NAME["DATABASE_CONNECT_TIMEOUT"].default

    urls = standalone_app.url_map.bind("localhost")
    assert urls.match("/readyz", "GET")[0] == "health.readyz"
    assert urls.match("/healthz", "GET")[0] == "health.healthz"


def test_graceful_shutdown_outlasts_the_pre_stop_pause():
    server = server_deployment()
    spec = pod_spec(server)
    [container] = spec["containers"]
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > int(pause[1]) + 30  # + the longest request the proxy waits for
    rolling = server["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def test_every_pod_runs_as_the_image_user_on_a_read_only_root():
    [user] = containerfile("USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid > 0 and gid > 0
    workloads = [d for d in (doc for _n, doc in manifests()) if d["kind"] in WORKLOADS]
    assert len(workloads) >= 5  # server, mail worker, logout worker, migration job, purge
    for doc in workloads:
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid), name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], name
            assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"], name
            assert container["image"] == server_deployment()["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_jobs_and_workers_run_the_right_commands():
    commands = {}
    for doc in (d for _n, d in manifests() if d["kind"] in WORKLOADS):
        [container] = pod_spec(doc)["containers"]
        commands[(doc["kind"], doc["metadata"]["labels"]["app.kubernetes.io/component"])] = resolve(container["args"])[1]
    assert commands == {
        ("Deployment", "server"): ["serve"],
        ("Deployment", "mail-worker"): ["mail", "worker"],
        ("Deployment", "logout-worker"): ["logout", "worker"],
        ("Job", "migrate"): ["db", "upgrade"],
        ("CronJob", "purge"): ["purge"],
    }
    [cronjob] = by_kind("CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_service_pdb_and_ingress_reach_the_server_pods():
    labels = pod_labels(server_deployment())
    [service] = by_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    [container] = pod_spec(server_deployment())["containers"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    [pdb] = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for other in by_kind("Deployment"):  # the PDB and the Service select the servers only
        if other["metadata"]["name"] != server_deployment()["metadata"]["name"]:
            assert not service["spec"]["selector"].items() <= pod_labels(other).items()
    [ingress] = by_kind("Ingress")
    backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert backends == [{"name": service["metadata"]["name"], "port": {"name": port["name"]}}]
    issuer_host = by_kind("ConfigMap")[0]["data"]["VISMA_IDP_ISSUER"].removeprefix("https://").split("/")[0]
    assert [r["host"] for r in ingress["spec"]["rules"]] == [issuer_host]


def test_every_pod_takes_its_settings_from_the_configmap_and_the_secret():
    [configmap] = by_kind("ConfigMap")
    [secret] = by_kind("Secret")
    for doc in (d for _n, d in manifests() if d["kind"] in WORKLOADS):
        for container in pod_spec(doc)["containers"]:
            assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}},
                                            {"secretRef": {"name": secret["metadata"]["name"]}}]
    secret_names = set(secret["stringData"])
    assert {"VISMA_IDP_SECRET_KEY", "VISMA_IDP_DATABASE_URL", "VISMA_IDP_SMTP_URL"} <= secret_names
    assert not secret_names & set(configmap["data"]), "a setting in both the Secret and the ConfigMap"
    for value in secret["stringData"].values():  # a template: every value says it is one
        assert "PLACEHOLDER" in value


def test_the_configmap_and_secret_are_a_valid_production_configuration():
    [configmap] = by_kind("ConfigMap")
    [secret] = by_kind("Secret")
    environ = {**configmap["data"], **secret["stringData"]}
    with pytest.raises(ConfigError) as refused:  # the template applied unchanged never starts
        settings_from(environ)
    assert refused.value.setting == "SECRET_KEY"
    settings = settings_from({**environ, "VISMA_IDP_SECRET_KEY": "k" * 48})
    assert settings["MODE"] == "production"
    assert settings["ISSUER"].startswith("https://")
    assert settings["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert settings["TRUSTED_PROXIES"]
    assert settings["REDIS_URL"]


# -- command lines ------------------------------------------------------------------


def test_every_deployed_command_line_is_accepted_by_the_cli():
    lines = deployed_command_lines()
    assert {tuple(resolve(argv)[1]) for _where, argv in lines} >= {
        ("serve",), ("mail", "worker"), ("logout", "worker"), ("purge",), ("db", "upgrade")}
    for where, argv in lines:
        command, path, rest = resolve(argv)
        try:
            command.make_context(" ".join(path), list(rest))  # parses and converts every option, runs nothing
        except click.UsageError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{where}: visma-idp {' '.join(argv)}: {exc.format_message()}")


def test_the_command_paths_answer_help():
    runner = CliRunner()
    for path in sorted({tuple(resolve(argv)[1]) for _where, argv in deployed_command_lines()}):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: main {' '.join(path)}" in result.output or f"Usage: visma-idp {' '.join(path)}" in result.output


def test_the_documented_command_lines_use_real_commands_and_options():
    lines = doc_command_lines()
    assert len(lines) >= 10
    seen = set()
    for line in lines:
        argv = shlex.split(line)
        command, path, rest = resolve(argv, group_ok=True)
        seen.add(tuple(path))
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for token in rest:
            if token.startswith("--"):
                assert token.split("=", 1)[0] in known, f"docs/deployment.md: visma-idp {line}: {token}"
    assert {("keys", "rotate"), ("keys", "list"), ("db", "current"), ("db", "upgrade")} <= seen


def test_the_servers_listen_where_their_proxies_send_traffic():
    [systemd_server] = [argv for where, argv in deployed_command_lines() if where.startswith("visma-idp.service")]
    params = server_argv(systemd_server)
    upstream = re.search(r"upstream visma_idp \{\s*server ([0-9.]+):([0-9]+);", NGINX.read_text())
    assert upstream, "nginx: no upstream server line"
    assert (params["host"], params["port"]) == (upstream.group(1), int(upstream.group(2)))
    [cmd] = containerfile("CMD")
    image_port = server_argv(json.loads(cmd))["port"]
    assert containerfile("EXPOSE") == [str(image_port)]


# -- settings -----------------------------------------------------------------------


def test_every_setting_name_is_real():
    files = [DOC, NGINX, CONTAINERFILE, *SYSTEMD.iterdir(), *KUBERNETES.iterdir()]
    for path in files:
        unknown = setting_names(path.read_text()) - set(BY_NAME)
        assert not unknown, f"{path.relative_to(ROOT)}: not settings: {sorted(unknown)}"
    # bare setting names in the doc's code spans (`KEY_CACHE_SECONDS`) are settings too
    not_settings = {"MAX_CONTENT_LENGTH", "PYTHONDONTWRITEBYTECODE"}  # Flask's request cap; Python's
    for spelled in re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", DOC.read_text()):
        name = spelled.removeprefix("VISMA_IDP_")
        assert name in BY_NAME or name in not_settings, f"docs/deployment.md: `{name}` is not a setting"


def test_the_systemd_env_file_is_a_valid_production_configuration():
    environ = {}
    for line in (SYSTEMD / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            environ[key] = value
    with pytest.raises(ConfigError) as refused:  # the example copied unchanged never starts
        settings_from(environ)
    assert refused.value.setting == "SECRET_KEY"
    settings = settings_from({**environ, "VISMA_IDP_SECRET_KEY": "k" * 48})
    assert settings["MODE"] == "production" and settings["ISSUER"].startswith("https://")


def test_every_documented_trusted_proxies_value_parses():
    values = []
    for path in [DOC, NGINX, *SYSTEMD.iterdir(), *KUBERNETES.iterdir()]:
        for quoted, bare in re.findall(r'VISMA_IDP_TRUSTED_PROXIES[=:]\s*(?:"([^"]*)"|(\S+))', path.read_text()):
            values.append(quoted or bare)
    assert len(values) >= 3
    for value in values:
        assert parse_trusted_proxies(value), value


def test_nginx_forwards_the_client_address_the_settings_trust():
    text = NGINX.read_text()
    main_location = text.split("location / {", 1)[1].split("}", 1)[0]
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in main_location
    assert "ssl_certificate " in text and "listen 443 ssl;" in text
    documented = dict(re.findall(r"#\s+VISMA_IDP_(TRUSTED_PROXIES|FORWARDED_HEADER)=(\S+)", text))
    settings = settings_from({"VISMA_IDP_SECRET_KEY": "x" * 40, "VISMA_IDP_ISSUER": "https://login.example.com",
                              **{f"VISMA_IDP_{k}": v for k, v in documented.items()}})
    assert settings["FORWARDED_HEADER"].lower() == "x-forwarded-for"
    upstream_host = re.search(r"upstream visma_idp \{\s*server ([0-9.]+):", text).group(1)
    from ipaddress import ip_address

    assert any(ip_address(upstream_host) in network for network in settings["TRUSTED_PROXIES"])  # nginx's own address


def test_nginx_body_limit_matches_the_app(standalone_app):
    limit = re.search(r"client_max_body_size (\d+)k;", NGINX.read_text())
    assert limit and int(limit.group(1)) * 1024 == standalone_app.config["MAX_CONTENT_LENGTH"]


def test_production_with_postgresql_writes_nothing_to_the_instance_folder(tmp_path):
    """The image's root file system is read-only: with PostgreSQL and a
    SECRET_KEY, building the app never creates INSTANCE_PATH."""
    from visma_idp import create_app

    instance = tmp_path / "instance"
    create_app({"ISSUER": "https://login.example.com", "SECRET_KEY": "x" * 40, "INSTANCE_PATH": str(instance),
                "DATABASE_URL": "postgresql+psycopg://idp@127.0.0.1:1/idp"})
    assert not instance.exists()


# -- systemd --------------------------------------------------------------------------


HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "PrivateDevices": "yes", "CapabilityBoundingSet": ""}


def test_every_service_is_hardened_and_reads_the_env_file():
    services = {name: parser for name, parser in units().items() if name.endswith(".service")}
    assert set(services) == {"visma-idp.service", "visma-idp-mail.service", "visma-idp-logout.service",
                             "visma-idp-migrate.service", "visma-idp-purge.service"}
    for name, parser in services.items():
        service = parser["Service"]
        assert service["EnvironmentFile"] == "/etc/visma-idp/env", name
        assert service["User"] == "visma-idp", name
        for key, value in HARDENING.items():
            assert service.get(key) == value, f"{name}: {key}"
        if service.get("Type") != "oneshot":
            assert service["Restart"] == "on-failure", name
            assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed", name
            assert int(service["TimeoutStopSec"].removesuffix("s")) >= 30, name


def test_the_purge_timer_starts_the_purge_service():
    timer = units()["visma-idp-purge.timer"]
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Persistent"] == "true"
    assert timer.get("Timer", "Unit", fallback="visma-idp-purge.service") == "visma-idp-purge.service"
    assert (SYSTEMD / "visma-idp-purge.service").exists()


def test_only_the_migrate_unit_migrates_and_the_others_follow_it():
    parsed = units()
    migrate = parsed["visma-idp-migrate.service"]
    assert migrate["Service"]["Type"] == "oneshot"
    assert resolve(shlex.split(migrate["Service"]["ExecStart"])[1:])[1] == ["db", "upgrade"]
    for name in ("visma-idp.service", "visma-idp-mail.service", "visma-idp-logout.service"):
        assert "visma-idp-migrate.service" in parsed[name]["Unit"]["After"].split(), name
        assert not parsed[name].has_option("Service", "ExecStartPre"), name


# -- Containerfile ---------------------------------------------------------------------


def test_the_containerfile_builds_the_wheel_and_installs_it_with_the_constraints():
    stages = containerfile("FROM")
    assert len(stages) == 2 and all(s.split()[0].endswith("python:3.11-slim") for s in stages)
    runs = " ".join(containerfile("RUN"))
    assert "pip wheel" in runs and "--constraint /tmp/constraints.txt" in runs
    assert "venv /opt/visma-idp" in runs
    for copy in containerfile("COPY"):
        sources = copy.split()[:-1]
        if sources[0].startswith("--from="):
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    [user] = containerfile("USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "USER must be numeric and not root"
    assert not containerfile("HEALTHCHECK")
