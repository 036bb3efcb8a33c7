"""visma_idp load scenarios, side by side with node-oidc-provider.

    .venv/bin/python bench/run.py                      # 3 rounds, all scenarios
    .venv/bin/python bench/run.py --rounds 5 --server gthread
    .venv/bin/python bench/run.py --scenarios cc,introspect --no-node

What it does (traffic only to 127.0.0.1; about 100 s per round, plus any wait for a quiet moment):

1. drops and re-creates the PostgreSQL database ``--db`` (default
   ``visma_idp_bench``), migrates it, creates the signing keys, the client
   ``bench``/``bench-secret`` (client_secret_basic, client_credentials, scope
   ``api:read``), the authorization-code client ``bench-web`` and the login
   users (``bench/seed.py``);
2. starts the provider with one worker pinned to core 0 (``taskset -c 0``):
   ``visma-idp serve --workers 1`` when ``.venv/bin/visma-idp`` has ``serve``,
   else ``gunicorn -w 1 -k gthread --threads 8 --keep-alive 5`` (``--server``
   picks gunicorn sync or granian instead, for comparison);
3. each round, with every load generator pinned to core 1:
   a. node-oidc-provider client_credentials (``run-node-anchor.sh``), then ours
      with the same generator (``/work/shared/anchor/load.py``, 32 keep-alive
      connections, closed loop);
   b. node-oidc-provider introspection, then ours (one access token, again and again);
   c. complete logins (``bench/logins.py``): authorize + PKCE -> email page ->
      password page -> code -> token, N virtual users, closed loop;
   d. Argon2id alone on core 0 (``bench/argon2_rate.py``) while the server idles;
4. prints every result, then medians and same-round ratios; ``--json-out``
   keeps them (default ``bench/results/<timestamp>.json``, git-ignored).

During each measured window the CPU used by every process on the machine is
sampled from /proc; "other" (not the server, the load generator, PostgreSQL
or the node anchor) above ``--noisy-pct`` marks the result as noisy: other
people's work on this 2-core machine skews the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ANCHOR = Path(os.environ.get("VISMA_IDP_ANCHOR", "/work/shared/anchor"))
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(HERE))
import seed  # noqa: E402

SECRET_KEY = seed.SECRET_KEY


# --------------------------------------------------------------------------- #
# processes and CPU accounting
# --------------------------------------------------------------------------- #
def proc_table() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (comm, ppid, utime+stime ticks, start time) for every process.

    A process is the same one in two tables when pid and start time match
    (kernel workers rename themselves all the time, so comm cannot tell)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1 : st.rindex(")")]
        fields = st[st.rindex(")") + 2 :].split()
        out[int(d)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19]))
    return out


def descendants(table, root: int) -> set[int]:
    found, todo = {root}, [root]
    while todo:
        p = todo.pop()
        for pid, (_c, ppid, _t, _s) in table.items():
            if ppid == p and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


class CpuWindow:
    """CPU% per group (server, loadgen, postgres, node, other) between start() and stop()."""

    def __init__(self, server_pid: int | None):
        self.server_pid = server_pid

    def start(self):
        self.t0, self.a = time.monotonic(), proc_table()

    def stop(self, loadgen_pid: int | None) -> dict[str, float]:
        b, wall = proc_table(), time.monotonic() - self.t0
        me = descendants(b, os.getpid())
        server = descendants(b, self.server_pid) if self.server_pid else set()
        loadgen = descendants(b, loadgen_pid) if loadgen_pid else set()
        groups = {"server": 0, "loadgen": 0, "postgres": 0, "node": 0, "kernel": 0, "other": 0}
        others: dict[str, int] = {}
        for pid, (comm, ppid, ticks, start) in b.items():
            used = ticks - (self.a[pid][2] if pid in self.a and self.a[pid][3] == start else 0)
            if used <= 0:
                continue
            if ppid == 2 or pid == 2:
                g = "kernel"  # kernel threads (writeback, ...), partly caused by PostgreSQL's writes
            elif comm.startswith("postgres"):
                g = "postgres"
            elif pid in me and comm.startswith("node"):
                g = "node"
            elif pid in server:
                g = "server"
            elif pid in loadgen or pid in me:
                g = "loadgen"
            else:
                g = "other"
                others[comm] = others.get(comm, 0) + used
            groups[g] += used
        out = {k: round(v / CLK_TCK / wall * 100, 1) for k, v in groups.items()}
        top = sorted(others.items(), key=lambda kv: -kv[1])[:3]
        out["other_top"] = ", ".join(f"{c} {t / CLK_TCK / wall * 100:.0f}%" for c, t in top if t)
        return out


def busy_elsewhere(seconds: float = 2.0) -> float:
    """CPU% used over ``seconds`` by processes that are not ours (PostgreSQL included:
    while we are idle, its work is someone else's; kernel threads left out)."""
    a, t0 = proc_table(), time.monotonic()
    time.sleep(seconds)
    b, wall = proc_table(), time.monotonic() - t0
    mine = descendants(b, os.getpid())
    used = sum(
        t - a[p][2] for p, (_c, pp, t, st) in b.items() if p not in mine and pp != 2 and p in a and a[p][3] == st
    )  # kernel threads not counted
    return used / CLK_TCK / wall * 100


def wait_quiet(limit_pct: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than ``limit_pct`` CPU%."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_elsewhere()
        if busy < limit_pct or time.monotonic() >= deadline:
            return busy
        print(f"# others use {busy:.0f}% CPU: waiting for a quiet moment ...", flush=True)
        time.sleep(8)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wait_http(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no answer from {url} within {seconds:.0f} s")


def last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


# --------------------------------------------------------------------------- #
# the server under test
# --------------------------------------------------------------------------- #
def cli_supports_serve(venv_bin: Path) -> bool:
    exe = venv_bin / "visma-idp"
    if not exe.exists():
        return False
    try:
        out = subprocess.run([str(exe), "serve", "--help"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "--workers" in out.stdout


def server_command(kind: str, venv_bin: Path, port: int, threads: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if kind == "cli":
        return [str(venv_bin / "visma-idp"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--threads", str(threads)]
    if kind == "gthread":
        return [
            str(venv_bin / "gunicorn"),
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "5",
            "-b",
            bind,
            "visma_idp.wsgi:app",
        ]
    if kind == "sync":
        return [str(venv_bin / "gunicorn"), "-w", "1", "-k", "sync", "-b", bind, "visma_idp.wsgi:app"]
    if kind == "granian":
        exe = venv_bin / "granian"
        if not exe.exists():
            raise SystemExit("granian is not installed in the venv: .venv/bin/pip install granian")
        return [
            str(exe),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--runtime-threads",
            "1",
            "--blocking-threads",
            str(threads),
            "--no-ws",
            "visma_idp.wsgi:app",
        ]
    raise SystemExit(f"unknown server kind {kind}")


def vm_rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    def __init__(self, a, env: dict[str, str]):
        self.a, self.env = a, env
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(a.results_dir) / f"server-{a.stamp}.log"

    def start(self) -> None:
        cmd = ["taskset", "-c", self.a.server_cpus] + server_command(self.a.server_kind, self.a.venv_bin, self.a.port, self.a.threads)
        self.cmd = cmd
        self.log = open(self.log_path, "ab")
        # taskset execs the server, so the Popen pid is the server's master process
        self.proc = subprocess.Popen(cmd, cwd=self.a.app_dir, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        wait_http(f"{self.a.base}/.well-known/openid-configuration", 60, self.proc)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def rss_kib(self) -> int:
        if not self.proc:
            return 0
        return sum(vm_rss_kib(pid) for pid in descendants(proc_table(), self.proc.pid))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()


# --------------------------------------------------------------------------- #
# scenarios
# --------------------------------------------------------------------------- #
def run_measured(cmd: list[str], server_pid: int | None, cwd: Path, env=None, timeout: float = 300) -> tuple[dict, str]:
    window = CpuWindow(server_pid)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    window.start()
    out, _ = proc.communicate(timeout=timeout)
    cpu = window.stop(proc.pid)
    res = last_json(out) or {"error": "no result", "output": out[-2000:]}
    res["cpu_window_pct"] = cpu  # whole run incl. warm-up: a rough picture of who used the CPUs
    return res, out


def node_anchor(a, grant: str) -> tuple[dict, str]:
    env = dict(
        os.environ,
        PORT=str(a.node_port),
        CONC=str(a.connections),
        DURATION=str(a.duration),
        WARMUP=str(a.warmup),
        SERVER_CPUS=a.server_cpus,
        LOAD_CPUS=a.load_cpus,
        JSON="1",
        SCOPE="api:read",
    )
    res, out = run_measured(["bash", str(ANCHOR / "run-node-anchor.sh"), grant], None, ANCHOR, env=env)
    for line in out.splitlines():
        if "[oidc-provider " in line:
            res["anchor_info"] = line.strip().strip("[]")
    return res, out


def ours_load(a, server: Server, grant: str) -> tuple[dict, str]:
    cmd = [
        "taskset",
        "-c",
        a.load_cpus,
        a.anchor_python,
        str(ANCHOR / "load.py"),
        a.base,
        "-c",
        str(a.connections),
        "-d",
        str(a.duration),
        "-w",
        str(a.warmup),
        "--grant",
        grant,
        "--scope",
        "api:read",
        "--label",
        "visma_idp",
        "--server-pid",
        str(server.pid),
        "--json",
    ]
    return run_measured(cmd, server.pid, ROOT)


def ours_logins(a, server: Server) -> tuple[dict, str]:
    cmd = [
        "taskset",
        "-c",
        a.load_cpus,
        sys.executable,
        str(HERE / "logins.py"),
        a.base,
        "-c",
        str(a.login_users),
        "-d",
        str(a.duration),
        "-w",
        str(a.login_warmup),
        "--client-id",
        seed.LOGIN_CLIENT[0],
        "--client-secret",
        seed.LOGIN_CLIENT[1],
        "--redirect-uri",
        seed.LOGIN_REDIRECT,
        "--password",
        seed.USER_PASSWORD,
        "--json",
        "--steps",
    ]
    for i in range(a.users):
        cmd += ["--email", seed.user_email(i)]
    return run_measured(cmd, server.pid, ROOT)


def argon2_alone(a) -> tuple[dict, str]:
    cmd = ["taskset", "-c", a.server_cpus, sys.executable, str(HERE / "argon2_rate.py"), "-d", str(a.duration), "--json"]
    return run_measured(cmd, None, a.app_dir, env=dict(os.environ, PYTHONPATH=str(a.app_dir)))


# --------------------------------------------------------------------------- #
# reporting
# --------------------------------------------------------------------------- #
def fmt(x, nd=0) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:,.{nd}f}"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(rounds: list[dict], a) -> str:
    lines = []
    hdr = (
        f"{'round':>5} | {'node cc/s':>9} | {'ours cc/s':>9} | {'ratio':>5} | {'node intr/s':>11} | "
        f"{'ours intr/s':>11} | {'ratio':>5} | {'logins/s':>8} | {'argon2 h/s':>10} | {'ratio':>5} | "
        f"{'load':>14} | noisy"
    )
    lines.append(hdr)
    lines.append("-" * len(hdr))
    cols = {k: [] for k in ("ncc", "occ", "rcc", "nin", "oin", "rin", "log", "arg", "rlog")}
    for r in rounds:
        ncc, occ = r.get("node_cc", {}).get("rps"), r.get("ours_cc", {}).get("rps")
        nin, oin = r.get("node_introspect", {}).get("rps"), r.get("ours_introspect", {}).get("rps")
        if r.get("ours_introspect", {}).get("errors"):
            oin = None  # a run with errors does not count
        lg, ar = r.get("logins", {}).get("rps"), r.get("argon2", {}).get("hashes_per_s")
        rcc = occ / ncc if occ and ncc else None
        rin = oin / nin if oin and nin else None
        rlog = lg / ar if lg and ar else None
        for k, v in zip(cols, (ncc, occ, rcc, nin, oin, rin, lg, ar, rlog), strict=True):
            cols[k].append(v)
        noisy = ",".join(r.get("noisy", [])) or "-"
        lines.append(
            f"{r['round']:>5} | {fmt(ncc):>9} | {fmt(occ):>9} | {fmt(rcc, 2):>5} | {fmt(nin):>11} | "
            f"{fmt(oin):>11} | {fmt(rin, 2):>5} | {fmt(lg, 1):>8} | {fmt(ar, 1):>10} | {fmt(rlog, 2):>5} | "
            f"{r.get('loadavg', ''):>14} | {noisy}"
        )
    m = {k: median(v) for k, v in cols.items()}
    lines.append("-" * len(hdr))
    lines.append(
        f"{'med':>5} | {fmt(m['ncc']):>9} | {fmt(m['occ']):>9} | {fmt(m['rcc'], 2):>5} | "
        f"{fmt(m['nin']):>11} | {fmt(m['oin']):>11} | {fmt(m['rin'], 2):>5} | {fmt(m['log'], 1):>8} | "
        f"{fmt(m['arg'], 1):>10} | {fmt(m['rlog'], 2):>5} |"
    )
    lines.append("")
    lines.append("ratio columns: ours / node-oidc-provider in the same round; logins/s / Argon2id hashes/s.")
    lines.append("Bars: client_credentials ratio >= 0.50; logins/s >= 0.5 x Argon2id hashes/s (the sign-in pipeline's "
                 "goal: 0.7).")
    if m["rcc"] is not None:
        lines.append(f"  client_credentials: median ratio {m['rcc']:.2f} -> {'MET' if m['rcc'] >= 0.5 else 'NOT MET'}")
    if m["rlog"] is not None:
        rlog = m["rlog"]
        lines.append(f"  logins vs Argon2id: median ratio {rlog:.2f} -> {'MET' if rlog >= 0.5 else 'NOT MET'} "
                     f"(goal 0.7: {'met' if rlog >= 0.7 else 'not met'})")
    return "\n".join(lines)


def versions(a) -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    out["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    code = (
        "import json,importlib.metadata as m;d={}\n"
        "for p in ('Flask','Authlib','joserfc','SQLAlchemy','psycopg','gunicorn','granian','argon2-cffi',"
        "'cryptography','Werkzeug'):\n"
        "    try: d[p]=m.version(p)\n"
        "    except Exception: pass\n"
        "print(json.dumps(d))"
    )
    try:
        out["packages"] = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout)
    except (ValueError, OSError, subprocess.TimeoutExpired):
        pass
    pkg = ANCHOR / "node-op" / "node_modules" / "oidc-provider" / "package.json"
    if pkg.exists():
        out["oidc-provider"] = json.loads(pkg.read_text()).get("version")
    node = shutil.which("node")
    if node:
        out["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        pg = subprocess.run(["psql", "-tA", a.admin_dsn, "-c", "show server_version"], capture_output=True, text=True, timeout=10)
        out["postgresql"] = pg.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


# --------------------------------------------------------------------------- #
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (load.py scenarios)")
    ap.add_argument("--login-warmup", type=float, default=3.0)
    ap.add_argument("--scenarios", default="cc,introspect,logins,argon2", help="comma list of cc, introspect, logins, argon2")
    ap.add_argument("--no-node", action="store_true", help="skip the node-oidc-provider anchor")
    ap.add_argument(
        "--server",
        dest="server_kind",
        default="auto",
        choices=["auto", "cli", "gthread", "sync", "granian"],
        help="auto = `visma-idp serve --workers 1` if available, else gunicorn gthread",
    )
    ap.add_argument("--threads", type=int, default=8, help="threads per worker (serve --threads, gthread, granian blocking)")
    ap.add_argument("--port", type=int, default=7002)
    ap.add_argument("--node-port", type=int, default=7001)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--login-users", type=int, default=8, help="concurrent virtual users in the login scenario")
    ap.add_argument("--users", type=int, default=8, help="accounts the virtual users log in as")
    ap.add_argument("--db", default="visma_idp_bench", help="bench database (dropped and re-created!)")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                    help="REDIS_URL of the server, as in production (throttling, the introspection cache); "
                         "'' runs it without Redis")
    ap.add_argument("--app-dir", default=str(ROOT), help="checkout whose visma_idp is served (A/B experiments)")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--load-cpus", default="1")
    ap.add_argument(
        "--anchor-python", default=shutil.which("python3") or "python3", help="python for load.py (the anchor script uses `python3` too)"
    )
    ap.add_argument("--noisy-pct", type=float, default=15.0, help="'other' CPU%% that marks a result noisy")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each scenario wait up to this long for other processes to use less than --noisy-pct CPU%% (0 = do not wait)",
    )
    ap.add_argument("--results-dir", default=str(HERE / "results"))
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--label", default="", help="free text stored with the results")
    a = ap.parse_args()

    a.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    a.app_dir = Path(a.app_dir).resolve()
    a.venv_bin = ROOT / ".venv" / "bin"
    a.base = f"http://127.0.0.1:{a.port}"
    a.dsn = f"{a.pg.rstrip('/')}/{a.db}"
    a.admin_dsn = f"{a.pg.rstrip('/')}/postgres".replace("postgresql+psycopg://", "postgresql://")
    Path(a.results_dir).mkdir(parents=True, exist_ok=True)
    json_out = Path(a.json_out) if a.json_out else Path(a.results_dir) / f"{a.stamp}.json"
    scenarios = {s.strip() for s in a.scenarios.split(",") if s.strip()}
    if a.server_kind == "auto":
        a.server_kind = "cli" if cli_supports_serve(a.venv_bin) else "gthread"

    env = dict(
        os.environ,
        VISMA_IDP_ISSUER=a.base,
        VISMA_IDP_SECRET_KEY=SECRET_KEY,
        VISMA_IDP_DATABASE_URL=a.dsn,
        VISMA_IDP_LOG_LEVEL="WARNING",
        PYTHONPATH=str(a.app_dir),
    )
    if a.redis:
        env["VISMA_IDP_REDIS_URL"] = a.redis
    info = versions(a)
    print(
        f"# visma_idp bench {a.stamp}  app={a.app_dir}  server={a.server_kind}  rounds={a.rounds}  "
        f"duration={a.duration}s  load={loadavg()}",
        flush=True,
    )
    print(f"# {json.dumps(info)}", flush=True)

    print("# seeding the bench database ...", flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "seed.py"), "--dsn", a.dsn, "--issuer", a.base, "--secret-key", SECRET_KEY, "--users", str(a.users)],
        cwd=a.app_dir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )

    server = Server(a, env)
    server.start()
    print(f"# server: {' '.join(server.cmd)} (pid {server.pid}, log {server.log_path})", flush=True)
    results = {
        "stamp": a.stamp,
        "label": a.label,
        "server": a.server_kind,
        "server_cmd": server.cmd,
        "app_dir": str(a.app_dir),
        "args": {k: str(v) for k, v in vars(a).items()},
        "info": info,
        "rounds": [],
    }

    def show(name, res, out):
        print(out.rstrip(), flush=True)
        cpu = res.get("cpu_window_pct")
        if cpu:
            print(f"  [cpu% during run: {cpu}]", flush=True)

    try:
        for i in range(1, a.rounds + 1):
            r = {"round": i, "loadavg": loadavg(), "noisy": []}
            print(f"\n## round {i}/{a.rounds}  load {r['loadavg']}", flush=True)
            steps = []
            if "cc" in scenarios:
                if not a.no_node:
                    steps.append(("node_cc", lambda: node_anchor(a, "client_credentials")))
                steps.append(("ours_cc", lambda: ours_load(a, server, "client_credentials")))
            if "introspect" in scenarios:
                if not a.no_node:
                    steps.append(("node_introspect", lambda: node_anchor(a, "introspect")))
                steps.append(("ours_introspect", lambda: ours_load(a, server, "introspect")))
            if "logins" in scenarios:
                steps.append(("logins", lambda: ours_logins(a, server)))
            if "argon2" in scenarios:
                steps.append(("argon2", lambda: argon2_alone(a)))
            for name, fn in steps:
                if a.wait_quiet:
                    r.setdefault("busy_before_pct", {})[name] = round(wait_quiet(a.noisy_pct, a.wait_quiet), 1)
                res, out = fn()
                show(name, res, out)
                r[name] = res
                if res.get("cpu_window_pct", {}).get("other", 0) > a.noisy_pct:
                    r["noisy"].append(name)
            results["rounds"].append(r)
            json_out.write_text(json.dumps(results, indent=1))
        results["server_rss_kib"] = server.rss_kib()
    finally:
        server.stop()

    summary = summarize(results["rounds"], a)
    results["summary"] = summary
    json_out.write_text(json.dumps(results, indent=1))
    print("\n" + summary)
    print(f"\nserver: {a.server_kind} ({' '.join(server.cmd[3:])}), rss {results.get('server_rss_kib', 0)} KiB; results: {json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
