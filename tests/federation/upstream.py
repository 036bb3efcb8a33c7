"""Upstream OpenID providers for the federation tests: a real, independent
provider (npm ``oidc-provider``, see ``upstream.mjs``) run as a node process
on 127.0.0.1.

    reason = node_available()          # None, or why it cannot run
    with Upstream.start(config) as upstream:
        upstream.issuer, upstream.port, upstream.discovery_url
        redirect = login_via_http(session, authorize_url, "kari")

``config`` is the JSON object described at the top of ``upstream.mjs``
(``clients``, ``accounts`` and optionally ``issuer_path``,
``template_discovery``, ``scopes``, ``acr_values``, ``port``).

Needs ``npm ci --prefix tests/interop`` (which installs oidc-provider next to
openid-client).
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import requests

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "upstream.mjs"
OIDC_PROVIDER = HERE.parent / "interop" / "node_modules" / "oidc-provider"
START_TIMEOUT = 30
MAX_REDIRECTS = 10
INTERACTION_PATH = re.compile(r"/interaction/[^/?#]+$")


def node_available() -> str | None:
    """``None`` when upstreams can run, else the reason they cannot."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (OIDC_PROVIDER / "package.json").is_file():
        return "oidc-provider is not installed: run `npm ci --prefix tests/interop`"
    return None


class Upstream:
    """One running ``upstream.mjs`` process; stop it with ``stop()`` or use it
    as a context manager."""

    def __init__(self, process: subprocess.Popen, pump: threading.Thread, workdir: Path, issuer: str) -> None:
        self.process = process
        self.pump = pump
        self.workdir = workdir
        self.issuer = issuer
        parts = urlsplit(issuer)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.port = parts.port
        self.discovery_url = f"{issuer}/.well-known/openid-configuration"

    @classmethod
    def start(cls, config: dict[str, Any], *, timeout: float = START_TIMEOUT, attempts: int = 2) -> Upstream:
        """Start the upstream; on a busy machine (two test workers, Chromium)
        one start in a few hundred was seen never to say READY within the
        timeout: a second process is started then, once."""
        for attempt in range(1, attempts + 1):
            try:
                return cls._start_once(config, timeout)
            except RuntimeError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(cls, config: dict[str, Any], timeout: float) -> Upstream:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed")
        workdir = Path(tempfile.mkdtemp(prefix="upstream-"))
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        with open(workdir / "stderr.log", "wb") as stderr:
            process = subprocess.Popen(
                [node, str(SCRIPT), str(config_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=HERE,
            )
        lines: queue.Queue[bytes] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
        pump.start()
        try:
            issuer = _wait_ready(process, lines, timeout)
        except BaseException:
            _terminate(process, pump)
            log = (workdir / "stderr.log").read_text(errors="replace")
            shutil.rmtree(workdir, ignore_errors=True)
            raise RuntimeError(f"upstream did not start:\n{log}") from None
        return cls(process, pump, workdir, issuer)

    def log(self) -> str:
        """What the node process wrote on stderr so far."""
        try:
            return (self.workdir / "stderr.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        _terminate(self.process, self.pump)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _pump(stream, lines: queue.Queue) -> None:
    """Read the process's stdout to the end (so it never blocks on a full pipe)."""
    for line in stream:
        lines.put(line)
    lines.put(b"")


def _wait_ready(process: subprocess.Popen, lines: queue.Queue, timeout: float) -> str:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError("timed out waiting for READY") from None
    text = line.decode().strip()
    if not text.startswith("READY "):
        raise RuntimeError(f"unexpected output {text!r} (exit status {process.poll()})")
    return text.split(" ", 1)[1]


def _terminate(process: subprocess.Popen, pump: threading.Thread) -> None:
    """SIGTERM, then SIGKILL after 10 s; close the pipes once the reader is done."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    pump.join(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream and not stream.closed:
            try:
                stream.close()
            except OSError:
                pass


def login_via_http(session: requests.Session, authorize_url: str, login: str) -> str:
    """Log ``login`` in at the upstream, starting from ``authorize_url``.

    Follows the redirects by hand, going through the interaction's ``/auto``
    endpoint instead of the form, and returns the redirect back to the relying
    party (its ``redirect_uri``, or any URL off the upstream's origin) without
    following it.
    """
    query = parse_qs(urlsplit(authorize_url).query)
    redirect_uri = query.get("redirect_uri", [None])[0]
    upstream = _origin(authorize_url)
    url = authorize_url
    for _ in range(MAX_REDIRECTS):
        response = session.get(url, allow_redirects=False, timeout=10)
        if response.status_code not in (301, 302, 303, 307, 308):
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:500]}")
        location = urljoin(url, response.headers["Location"])
        if _origin(location) != upstream or (redirect_uri and location.split("?")[0].split("#")[0] == redirect_uri):
            return location
        if INTERACTION_PATH.search(urlsplit(location).path):
            location = f"{location.split('?')[0]}/auto?login={quote(login)}"
        url = location
    raise RuntimeError(f"more than {MAX_REDIRECTS} redirects from {authorize_url}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
