"""What the fault drills share: a seeded throw-away database, the provider as
a real ``visma-idp serve`` process, small HTTP helpers, and the controls of the
local PostgreSQL and Redis (always brought back, and checked afterwards).

Not a test: the drills stop and restart the machine's shared PostgreSQL and
Redis, so they are run by hand (docs/operations.md, "Fault drills").
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
sys.path.insert(0, str(BENCH))
import logins  # noqa: E402  (bench/logins.py: Browser, JwtChecker)
import seed  # noqa: E402  (bench/seed.py: clients, users, passwords)

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own: no key shared with other users of this Redis
# a client of our own with refresh tokens (bench-web has no offline_access)
REFRESH_CLIENT = ("drill-web", "drill-web-secret-0123456789")
REFRESH_SCOPE = "openid profile email offline_access"
CSRF_RE = logins.CSRF_RE
TX_RE = logins.TX_RE


def utc() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


def log(msg: str) -> None:
    print(f"[{utc()}] {msg}", flush=True)


# --------------------------------------------------------------------------- #
# database
# --------------------------------------------------------------------------- #
def results(out: str, drill: str) -> tuple[Path, str, Path]:
    """The results folder (made, kept out of git), this run's UTC stamp and
    the path of its server log (``<drill>-<stamp>.server.log``)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ".gitignore").write_text("*\n")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return out_dir, stamp, out_dir / f"{drill}-{stamp}.server.log"


def seed_database(db: str, issuer: str, users: int = 4) -> str:
    """bench/seed.py into ``db`` (dropped and re-created), plus ``drill-web``."""
    dsn = f"{PG}/{db}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([PYTHON, str(BENCH / "seed.py"), "--dsn", dsn, "--issuer", issuer, "--users", str(users)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    code = (
        "import sys\n"
        "from visma_idp import create_app\n"
        "from visma_idp.oidc.registration import create_client\n"
        "from visma_idp.storage import db\n"
        f"app = create_app({{'ISSUER': {issuer!r}, 'DATABASE_URL': {dsn!r}, 'SECRET_KEY': {seed.SECRET_KEY!r}}})\n"
        "with app.app_context():\n"
        f"    create_client({REFRESH_CLIENT[0]!r}, redirect_uris=[{seed.LOGIN_REDIRECT!r}],\n"
        "                  grant_types=['authorization_code', 'refresh_token'],\n"
        f"                  scope={REFRESH_SCOPE!r}, secret={REFRESH_CLIENT[1]!r},\n"
        "                  token_endpoint_auth_method='client_secret_basic', name='drill', skip_consent=True)\n"
        "    db.session.commit()\n"
        "    db.engine.dispose()\n"
    )
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return dsn


def drop_database(db: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=10) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def sql(db: str, query: str, params=()) -> list[tuple]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", connect_timeout=10) as c:
        return c.execute(query, params).fetchall()


def throttle_key(key: str) -> str:
    """How DatabaseStore names a key in ``throttle_counts`` (its SHA-256)."""
    return hashlib.sha256(key.encode()).hexdigest()


# --------------------------------------------------------------------------- #
# the provider
# --------------------------------------------------------------------------- #
class Server:
    """``visma-idp serve`` in its own session, stderr/stdout to ``log_path``."""

    def __init__(self, port: int, dsn: str, log_path: Path, *, workers: int = 1, threads: int | None = None,
                 extra_env: dict[str, str] | None = None):
        self.port, self.base = port, f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = dict(
            os.environ,
            VISMA_IDP_ISSUER=self.base,
            VISMA_IDP_SECRET_KEY=seed.SECRET_KEY,
            VISMA_IDP_DATABASE_URL=dsn,
            VISMA_IDP_REDIS_URL=REDIS_URL,
            VISMA_IDP_LOG_LEVEL="INFO",
            PYTHONPATH=str(ROOT),
            **(extra_env or {}),
        )
        self.cmd = [str(VENV_BIN / "visma-idp"), "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(workers)]
        if threads:
            self.cmd += ["--threads", str(threads)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"server not ready within 90 s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tree(self) -> dict[int, int]:
        """pid -> start time (clock ticks) of the server and every descendant."""
        table = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                f = st[st.rindex(")") + 2:].split()
                table[int(d)] = (int(f[1]), int(f[19]))
        found, todo = {self.pid}, [self.pid]
        while todo:
            p = todo.pop()
            for pid, (ppid, _s) in table.items():
                if ppid == p and pid not in found:
                    found.add(pid)
                    todo.append(pid)
        return {p: table[p][1] for p in found if p in table}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session only (start_new_session)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self.log.close()


def log_lines(path: Path, start_offset: int = 0) -> list[str]:
    with open(path, "rb") as f:
        f.seek(start_offset)
        return f.read().decode("utf-8", "replace").splitlines()


def classify_log(lines: list[str]) -> dict:
    """Counts of the lines that matter for an 'error storm'."""
    out = {"lines": len(lines), "ERROR": 0, "CRITICAL": 0, "WARNING": 0, "Traceback": 0}
    for line in lines:
        for k in ("ERROR", "CRITICAL", "WARNING"):
            if re.search(rf"\b{k}\b", line):
                out[k] += 1
        if line.startswith("Traceback") or '"exc": "Traceback' in line:
            out["Traceback"] += 1
    return out


# --------------------------------------------------------------------------- #
# HTTP
# --------------------------------------------------------------------------- #
class Client:
    """One keep-alive connection for back-channel calls (no cookies)."""

    def __init__(self, base: str, timeout: float = 10):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, form: dict, auth: str) -> tuple[int, bytes]:
        """(status, body); status 0 = no HTTP answer (connection refused/reset, timeout)."""
        body = urllib.parse.urlencode(form).encode()
        hdrs = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    return 0, b""
        return 0, b""

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}", timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""


CC_AUTH = logins.basic(*seed.CC_CLIENT)
REFRESH_AUTH = logins.basic(*REFRESH_CLIENT)


def cc_token(c: Client) -> tuple[int, str | None]:
    st, body = c.post("/token", {"grant_type": "client_credentials", "scope": "api:read"}, CC_AUTH)
    tok = json.loads(body).get("access_token") if st == 200 else None
    return st, tok


def introspect(c: Client, token: str) -> tuple[int, bool | None]:
    st, body = c.post("/introspect", {"token": token}, CC_AUTH)
    return st, (json.loads(body).get("active") if st == 200 else None)


def revoke(c: Client, token: str) -> int:
    return c.post("/revoke", {"token": token}, CC_AUTH)[0]


# --------------------------------------------------------------------------- #
# the login pages, step by step (as bench/logins.py walks them)
# --------------------------------------------------------------------------- #
def start_login(b: logins.Browser, client_id: str, scope: str, email: str) -> tuple[str, str]:
    """authorize -> email page -> POST email; returns (password page path, PKCE verifier)."""
    b.fresh()
    verifier = secrets.token_urlsafe(48)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": seed.LOGIN_REDIRECT, "scope": scope,
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": logins.b64url(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256"}
    st, h, _ = b.request("GET", "/authorize?" + urllib.parse.urlencode(params))
    loc = logins.expect_redirect(st, h, "authorize")
    loc = logins._fill_form(b, loc, "email page", "email", email)
    return logins.path_of(loc), verifier


def post_password(b: logins.Browser, page: str, password: str) -> tuple[int, str]:
    """GET the password page (a fresh csrf_token), POST the password: (status, Location or page text)."""
    st, _h, html = b.request("GET", page)
    if st != 200:
        return st, html.decode("utf-8", "replace")
    text = html.decode("utf-8", "replace")
    form = {"csrf_token": CSRF_RE.search(text).group(1), "password": password}
    t = TX_RE.search(text)
    if t:
        form["tx"] = t.group(1)
    st, h, body = b.request("POST", page, form)
    return st, h.get("Location") or body.decode("utf-8", "replace")


def page_error(html: str) -> str:
    """The error line shown on a login page, if any (for the report)."""
    m = re.search(r'class="[^"]*(?:error|alert)[^"]*"[^>]*>\s*(.*?)\s*<', html, re.S)
    return re.sub(r"\s+", " ", m.group(1)).strip() if m else ""


def full_login(b: logins.Browser, email: str, client=REFRESH_CLIENT, scope=REFRESH_SCOPE) -> dict:
    """A whole sign-in to ``client``; returns the token response (raises logins.LoginError)."""
    page, verifier = start_login(b, client[0], scope, email)
    st, loc = post_password(b, page, seed.USER_PASSWORD)
    loc = logins.expect_redirect(st, {"Location": loc} if st in (302, 303) else {}, "password post")
    for _ in range(4):
        if loc.startswith(seed.LOGIN_REDIRECT):
            break
        st, h, _ = b.request("GET", logins.path_of(loc))
        loc = logins.expect_redirect(st, h, "authorize continue")
    cb = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    if "code" not in cb:
        raise logins.LoginError(f"callback: {cb.get('error', 'no code')}")
    form = {"grant_type": "authorization_code", "code": cb["code"], "redirect_uri": seed.LOGIN_REDIRECT,
            "code_verifier": verifier}
    st, _h, body = b.request("POST", "/token", form, headers={"Authorization": logins.basic(*client)}, browser=False)
    if st != 200:
        raise logins.LoginError(f"token: HTTP {st}")
    return json.loads(body)


# --------------------------------------------------------------------------- #
# PostgreSQL and Redis
# --------------------------------------------------------------------------- #
def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "5"], capture_output=True).returncode == 0


def redis_ping() -> bool:
    try:
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True, text=True,
                             timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return out.stdout.strip() == "PONG"


def restart_postgres() -> tuple[float, str]:
    """``pg_ctlcluster 15 main restart`` (fast shutdown: every client connection is cut).
    Returns (seconds the command took, its output). No systemd here, so no systemctl."""
    t0 = time.monotonic()
    out = subprocess.run(["pg_ctlcluster", "15", "main", "restart"], capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    if out.returncode != 0:
        # never leave it down: try a plain start
        subprocess.run(["pg_ctlcluster", "15", "main", "start"], capture_output=True, text=True, timeout=120)
    return took, (out.stdout + out.stderr).strip()


class RedisControl:
    """Stops the local Redis and starts it again with the same settings.

    The daemon rewrites its process title (``/proc/PID/cmdline`` reads
    ``redis-server 127.0.0.1:6379``), so the command line is rebuilt from
    ``CONFIG GET`` before it is stopped. Its keys (``save ""``: nothing on
    disk) are kept with DUMP/PTTL and put back afterwards (only keys that do
    not exist again by then), so other people's data survives the drill."""

    SETTINGS = ("port", "bind", "daemonize", "save", "appendonly", "dir", "logfile", "pidfile", "dbfilename",
                "protected-mode", "supervised", "databases", "maxmemory", "maxmemory-policy")

    def __init__(self):
        import redis

        self.r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
        info = self.r.info("server")
        self.pid_before = info["process_id"]
        self.cmdline_seen = Path(f"/proc/{self.pid_before}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        if info.get("config_file"):
            raise SystemExit(f"Redis runs from {info['config_file']}: restart it with that file, not this drill")
        conf = {k: self.r.config_get(k).get(k, "") for k in self.SETTINGS}
        self.cmd = [shutil.which("redis-server") or "/usr/bin/redis-server"]
        for k, v in conf.items():
            if k == "save" and v == "":
                self.cmd += ["--save", ""]
            elif k == "bind":
                self.cmd += ["--bind", *v.split()]
            elif v != "":
                self.cmd += [f"--{k}", v]
        self.daemonize = conf.get("daemonize") == "yes"
        self.snapshot: list[tuple[int, bytes, int, bytes]] = []

    def keep_keys(self, limit: int = 100_000) -> int:
        import redis

        dbs = int(self.r.config_get("databases").get("databases", 16))
        self.snapshot = []
        for n in range(dbs):
            rn = redis.Redis(host="127.0.0.1", port=6379, db=n, socket_timeout=5)
            for key in rn.scan_iter(count=1000):
                dumped = rn.dump(key)
                if dumped is None:
                    continue
                ttl = rn.pttl(key)
                self.snapshot.append((n, key, max(ttl, 0), dumped))
                if len(self.snapshot) >= limit:
                    return len(self.snapshot)
        return len(self.snapshot)

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], capture_output=True,
                       timeout=10)
        deadline = time.monotonic() + 5
        while redis_ping() and time.monotonic() < deadline:
            time.sleep(0.1)

    def start(self) -> None:
        if redis_ping():
            return
        if self.daemonize:
            subprocess.run(self.cmd, check=False, timeout=30, cwd="/")
        else:  # a foreground server: detach it ourselves
            subprocess.Popen(self.cmd, cwd="/", start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not redis_ping() and time.monotonic() < deadline:
            time.sleep(0.1)

    def restore_keys(self) -> tuple[int, int]:
        import redis

        put = skipped = 0
        for n, key, ttl, dumped in self.snapshot:
            rn = redis.Redis(host="127.0.0.1", port=6379, db=n, socket_timeout=5)
            try:
                rn.restore(key, ttl, dumped)
                put += 1
            except redis.ResponseError:  # BUSYKEY: written again meanwhile
                skipped += 1
        return put, skipped

    def pid_now(self) -> int | None:
        import redis

        try:
            return redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5).info("server")["process_id"]
        except redis.RedisError:
            return None


def clean_redis_db() -> None:
    """Remove the drill's keys from its own Redis database (REDIS_URL)."""
    import redis

    try:
        r = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        ours = list(r.scan_iter("visma_idp:*", count=1000))
        if ours:
            r.delete(*ours)
    except redis.RedisError:
        pass


def final_check() -> dict:
    ok = {"postgres": pg_ready(), "redis": redis_ping()}
    log(f"after the drill: pg_isready -h 127.0.0.1 -> {'ok' if ok['postgres'] else 'NOT READY'}; "
        f"redis-cli ping -> {'PONG' if ok['redis'] else 'NO ANSWER'}")
    return ok
