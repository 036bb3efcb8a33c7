"""Several worker processes, one scrape: the counts add up.

``prometheus_client`` picks its multiprocess mode when it is first imported,
so these run in fresh processes: two that count into one folder and a third
that scrapes it; then the real server with two workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from tests.test_cli import free_port, start_server, wait_until_up
from visma_idp.storage import MailOutbox, db

from .metering import sample, scraped

COUNT = textwrap.dedent("""
    import sys
    from visma_idp.observability import metrics
    for _ in range(int(sys.argv[1])):
        metrics.observe_request("oidc.token", "POST", 200, 0.003, "client_credentials")
    metrics.throttle_hit("ip", locked=True)
    metrics.audit_recorded("login_succeeded", "success", {"amr": ["pwd"]})
""")
SCRAPE = "from visma_idp.observability import metrics; print(metrics.exposition()[0].decode())"


def python(code: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_two_processes_one_scrape(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    python(COUNT, "3", env=env)
    python(COUNT, "4", env=env)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # a file per process
    samples = scraped(python(SCRAPE, env=env))
    assert sample(samples, "visma_idp_http_requests_total", endpoint="oidc.token", method="POST", status="200") == 7
    assert sample(samples, "visma_idp_http_request_duration_seconds_count", endpoint="oidc.token") == 7
    assert sample(samples, "visma_idp_tokens_issued_total", grant="client_credentials") == 7
    assert sample(samples, "visma_idp_throttle_hits_total", kind="ip", result="locked") == 2
    assert sample(samples, "visma_idp_sign_ins_total", outcome="success", method="password") == 2


def test_the_mode_is_right_even_when_prometheus_client_came_first(tmp_path):
    """An app that imported prometheus_client before the folder was set still writes to it."""
    code = textwrap.dedent(f"""
        import os, prometheus_client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        from visma_idp.observability import metrics
        metrics.throttle_trip(locked=False)
    """)
    python(code, env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"})
    samples = scraped(python(SCRAPE, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}))
    assert sample(samples, "visma_idp_throttle_trips_total", result="wait") == 1


@pytest.fixture
def env(settings):
    from tests.helpers import drop_all_tables

    drop_all_tables(settings["DATABASE_URL"])
    yield {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}
    drop_all_tables(settings["DATABASE_URL"])


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_serve_with_two_workers_adds_them_up(env, settings, tmp_path, make_app, server):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = start_server(["--port", str(port), "--workers", "2", "--threads", "2", "--server", server],
                        {**env, "VISMA_IDP_ISSUER": issuer, "TMPDIR": str(private_tmp),
                         "VISMA_IDP_LOG_FORMAT": "json", "VISMA_IDP_ACCESS_LOG": "true"}, log)
    try:
        wait_until_up(proc, f"{issuer}/healthz", log)
        folders = list(private_tmp.glob("visma-idp-metrics-*"))
        assert len(folders) == 1, folders
        assert folders[0].stat().st_mode & 0o777 == 0o700
        session = requests.Session()
        for _ in range(20):
            assert requests.get(f"{issuer}/healthz", timeout=5).status_code == 200  # new connections: both workers
        if server == "gunicorn":  # a worker that stops (and is replaced) leaves the folder and its counts alone
            worker = max(int(p) for p in (f.name.split("_")[-1].removesuffix(".db")
                                          for f in folders[0].glob("counter_*.db")) if int(p) != proc.pid)
            os.kill(worker, signal.SIGTERM)
            time.sleep(2)
            assert folders[0].is_dir()
        with make_app().app_context():  # one pending mail, seen by whichever worker answers the scrape
            row = MailOutbox(kind="test", to_addr="kari@example.no", subject="s", locale="en", message_id="<1@t>",
                             status="pending", attempts=0, created_at=int(time.time()) - 30,
                             next_attempt_at=int(time.time()))
            row.text_body = row.html_body = "x"
            db.session.add(row)
            db.session.commit()
        samples = scraped(session.get(f"{issuer}/metrics", timeout=5).text)
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
    output = log.read_text()
    assert status == 0, output
    # the first /healthz that answered wait_until_up, then 20 more
    assert sample(samples, "visma_idp_http_requests_total", endpoint="health.healthz", method="GET",
                  status="200") == 21, output
    assert sample(samples, "visma_idp_queue_depth", queue="mail", status="pending") == 1
    assert not list(private_tmp.glob("visma-idp-metrics-*")), "the folder is removed when the server stops"
    assert '"logger": "visma_idp.access"' in output and '"message": "GET /healthz 200' in output


def test_one_worker_needs_no_folder(env, tmp_path):
    from tests.test_cli import stop_server

    port = free_port()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    log = tmp_path / "serve.log"
    proc = start_server(["--port", str(port), "--threads", "1"],
                        {**env, "VISMA_IDP_ISSUER": f"http://127.0.0.1:{port}", "TMPDIR": str(private_tmp)}, log)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}/healthz", log)
        assert not list(private_tmp.glob("visma-idp-metrics-*"))
        samples = scraped(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        assert sample(samples, "visma_idp_http_requests_total", endpoint="health.healthz", method="GET",
                      status="200") == 1
    finally:
        stop_server(proc, log)

