"""Throughput and latency against concurrency, ours beside node-oidc-provider.

    .venv/bin/python bench/curve.py                                   # 1..64 connections, both endpoints
    .venv/bin/python bench/curve.py --levels 1,4,16,64 --duration 3   # a quick look
    .venv/bin/python bench/curve.py --soak 600                        # + 10 minutes of load, RSS of the worker
    .venv/bin/python bench/curve.py --servers ours --endpoints '' --soak 600   # the soak alone
    .venv/bin/python bench/curve.py --replot bench/results/curve-<stamp>.json

For each endpoint (``cc``: client_credentials tokens; ``introspect``: RFC 7662
introspection of one token) and each server (``node``: node-oidc-provider, the
anchor; ``ours``), one server at a time on core 0:

1. the closed-loop curve: the anchor's ``load.py`` on core 1 at every
   ``--levels`` concurrency (keep-alive connections, one request in flight
   each), ``--warmup`` + ``--duration`` seconds each: requests/s, p50, p99;
2. the open-loop point: ``bench/openloop.py`` on core 1 at ``--fraction``
   (70 %) of the highest requests/s of that curve, Poisson arrivals, latency
   counted from each request's scheduled time: p50/p90/p99/max. The issue's
   bar: p99 <= 50 ms there.

Then, with ``--soak SECONDS``, our server alone (freshly started) under
closed-loop load, ``--soak-connections`` (16) connections, client_credentials
and introspection taking turns in ``--soak-chunk`` (10 s) slices, while the
RSS (VmRSS) of the granian worker that runs the app is read every
``--soak-every`` (10) seconds. The issue's bar: <= 150 MB per worker after 10
minutes.

Our server is seeded and started as ``bench/run.py`` does (PostgreSQL bench
database re-created, ``REDIS_URL`` on, ``visma-idp serve --workers 1`` on
``taskset -c 0``); node-oidc-provider as ``run-node-anchor.sh`` starts it
(``node server.mjs``, ``WORKERS=1``, ``taskset -c 0``), never both at once.
Before each measurement it waits (up to ``--wait-quiet`` s) for other
processes to leave the CPUs alone, and it records who else used CPU during the
measurement; a point with "other" above ``--noisy-pct`` is marked noisy (a
hollow marker on the plot).

Writes ``bench/results/curve-<stamp>.json`` and a PNG (``--plot``, default
``bench/results/curve-<stamp>.png``). The plot needs matplotlib, a bench-only
tool and no dependency of the package: ``.venv/bin/pip install matplotlib``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402  (bench/run.py: server start-up, CPU accounting, quiet-moment wait)

ROOT, ANCHOR = run.ROOT, run.ANCHOR
NODE_OP = ANCHOR / "node-op"
ENDPOINTS = {"cc": "client_credentials", "introspect": "introspect"}
NODE_INTROSPECT_RESOURCE = "urn:bench:opaque"  # node-oidc-provider's JWT access tokens are not introspectable
MPL_HINT = "matplotlib is not installed: .venv/bin/pip install matplotlib (a bench tool, not a dependency of visma_idp)"


# --------------------------------------------------------------------------- #
# servers
# --------------------------------------------------------------------------- #
class Ours(run.Server):
    """bench/run.py's server (same command, pinning, environment)."""

    name = "ours"

    def __init__(self, a, env):
        super().__init__(a, env)
        self.base = a.base

    def worker_pid(self) -> int | None:
        """The process that runs the app: the child of `visma-idp serve` (granian's worker)."""
        if not self.proc:
            return None
        table = run.proc_table()
        kids = [p for p, (_c, pp, _t, _s) in table.items() if pp == self.proc.pid]
        kids = [p for p in kids if "resource_tracker" not in cmdline(p)]
        if not kids:
            return self.proc.pid  # a server that serves from its own process
        return max(kids, key=run.vm_rss_kib)


class Node(run.Server):
    """node-oidc-provider started as /work/shared/anchor/run-node-anchor.sh starts it
    (bench/run.py's server for the rest: pid, RSS, stopping)."""

    name = "node"

    def __init__(self, a):
        super().__init__(a, dict(os.environ, PORT=str(a.node_port), WORKERS="1"))
        self.base = f"http://127.0.0.1:{a.node_port}"
        self.log_path = Path(a.results_dir) / f"node-{a.stamp}.log"

    def start(self) -> None:
        if not (NODE_OP / "node_modules" / "oidc-provider").is_dir():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_OP, check=True)
        self.cmd = ["taskset", "-c", self.a.server_cpus, "node", "server.mjs"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=NODE_OP, env=self.env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        run.wait_http(f"{self.base}/.well-known/openid-configuration", 30, self.proc)

    def worker_pid(self) -> int | None:
        return self.pid


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS of pid, and from smaps_rollup its Pss and private (unshared) pages: a
    forked worker shares many pages with its parent, which VmRSS counts in full."""
    out = {"rss": run.vm_rss_kib(pid), "pss": 0, "private": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name == "Pss":
                    out["pss"] = int(rest.split()[0])
                elif name in ("Private_Clean", "Private_Dirty"):
                    out["private"] += int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return out


def mb(kib: int) -> float:
    """KiB -> MB (10^6 bytes, as the issue's "150 MB")."""
    return kib * 1024 / 1e6


# --------------------------------------------------------------------------- #
# measurements
# --------------------------------------------------------------------------- #
def closed_loop(a, server, endpoint: str, connections: int, duration: float, warmup: float) -> dict:
    cmd = ["taskset", "-c", a.load_cpus, a.anchor_python, str(ANCHOR / "load.py"), server.base,
           "-c", str(connections), "-d", str(duration), "-w", str(warmup), "--grant", ENDPOINTS[endpoint],
           "--scope", "api:read", "--label", server.name, "--server-pid", str(server.pid), "--json"]
    if server.name == "node" and endpoint == "introspect":
        cmd += ["--resource", NODE_INTROSPECT_RESOURCE]
    res, out = run.run_measured(cmd, server.pid, ROOT, timeout=duration + warmup + 120)
    if "rps" not in res:
        print(out.rstrip(), flush=True)
    return res


def open_loop(a, server, endpoint: str, rate: float) -> dict:
    cmd = ["taskset", "-c", a.load_cpus, sys.executable, str(HERE / "openloop.py"), server.base,
           "--endpoint", endpoint, "--rate", f"{rate:.1f}", "-d", str(a.openloop_duration), "-w", str(a.openloop_warmup),
           "--arrivals", a.arrivals, "--label", server.name, "--json"]
    if server.name == "node" and endpoint == "introspect":
        cmd += ["--resource", NODE_INTROSPECT_RESOURCE]
    res, out = run.run_measured(cmd, server.pid, ROOT, timeout=a.openloop_duration + a.openloop_warmup + 120)
    print("    " + "\n    ".join(out.rstrip().splitlines()[:-1] if "p99_ms" in res else out.rstrip().splitlines()), flush=True)
    return res


def quiet(a) -> float | None:
    return round(run.wait_quiet(a.noisy_pct, a.wait_quiet), 1) if a.wait_quiet else None


def curve_for(a, server, endpoint: str, results: dict, save) -> None:
    key = f"{server.name}_{endpoint}"
    entry = results["curves"].setdefault(key, {"server": server.name, "endpoint": endpoint, "points": []})
    for c in a.levels:
        busy = quiet(a)
        res = closed_loop(a, server, endpoint, c, a.duration, a.warmup)
        res["busy_before_pct"] = busy
        res["noisy"] = res.get("cpu_window_pct", {}).get("other", 0) > a.noisy_pct
        res["level"] = c
        entry["points"].append(res)
        other = res.get("cpu_window_pct", {}).get("other")
        print(f"  {server.name:>4} {endpoint:<10} c={c:<3} {run.fmt(res.get('rps')):>7} req/s  p50 {run.fmt(res.get('p50_ms'), 2):>7} ms"
              f"  p99 {run.fmt(res.get('p99_ms'), 2):>7} ms  errors {res.get('errors', '?')}  other cpu {other}%"
              f"{'  NOISY' if res['noisy'] else ''}", flush=True)
        save()
    good = [p["rps"] for p in entry["points"] if p.get("rps") and not p.get("errors")]
    entry["max_rps"] = max(good) if good else None
    if a.fraction and entry["max_rps"]:
        rate = a.fraction * entry["max_rps"]
        runs = entry["openloop_runs"] = []
        for i in range(a.openloop_repeats):
            busy = quiet(a)
            print(f"  {server.name:>4} {endpoint:<10} open loop at {a.fraction:.0%} of {entry['max_rps']:.0f} = {rate:.0f}/s"
                  f" ({i + 1}/{a.openloop_repeats})", flush=True)
            res = open_loop(a, server, endpoint, rate)
            res["busy_before_pct"] = busy
            res["noisy"] = res.get("cpu_window_pct", {}).get("other", 0) > a.noisy_pct
            runs.append(res)
            save()
        # the run with the median p99 (the higher middle one for an even count) stands for the point
        ranked = sorted(runs, key=lambda r: (r.get("p99_ms") is None, r.get("p99_ms") or 0))
        entry["openloop"] = ranked[len(ranked) // 2]
        save()


def soak(a, server: Ours, results: dict, save) -> None:
    """Closed-loop mixed load for a.soak seconds; the worker's RSS every a.soak_every s."""
    wpid = server.worker_pid()
    out = {"seconds": a.soak, "connections": a.soak_connections, "worker_pid": wpid, "worker_cmdline": cmdline(wpid),
           "samples_columns": ["t_s", "worker_vmrss_kib", "worker_pss_kib", "worker_private_kib", "server_tree_vmrss_kib"],
           "samples": [], "chunks": []}
    results["soak"] = out
    print(f"\n## soak: {a.soak:.0f} s, {a.soak_connections} connections, cc and introspect in turns of {a.soak_chunk:g} s; "
          f"worker pid {wpid} ({cmdline(wpid)[:80]})", flush=True)
    t0 = time.monotonic()
    stop = threading.Event()

    def take() -> list:
        m = memory_kib(wpid)
        row = [round(time.monotonic() - t0, 1), m["rss"], m["pss"], m["private"], server.rss_kib()]
        out["samples"].append(row)
        return row

    def sample():
        while True:
            t, rss, pss, private, tree = take()
            print(f"  t={t:6.0f} s  worker VmRSS {mb(rss):6.1f} MB  (Pss {mb(pss):6.1f} MB, private {mb(private):6.1f} MB; "
                  f"serve + worker VmRSS {mb(tree):6.1f} MB)", flush=True)
            if stop.wait(a.soak_every):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    turn = 0
    try:
        while (left := a.soak - (time.monotonic() - t0)) > 0.5:
            endpoint = ("cc", "introspect")[turn % 2]
            res = closed_loop(a, server, endpoint, a.soak_connections, min(a.soak_chunk, left), 0)
            out["chunks"].append({"t": round(time.monotonic() - t0, 1), "endpoint": endpoint,
                                  **{k: res.get(k) for k in ("rps", "p50_ms", "p99_ms", "errors", "ok")},
                                  "other_cpu_pct": res.get("cpu_window_pct", {}).get("other")})
            turn += 1
    finally:
        stop.set()
        sampler.join()
    last = take()
    out["elapsed_s"] = last[0]
    out["first_worker_rss_mb"] = round(mb(out["samples"][0][1]), 1)
    out["final_worker_rss_mb"] = round(mb(last[1]), 1)
    out["final_worker_pss_mb"] = round(mb(last[2]), 1)
    out["final_worker_private_mb"] = round(mb(last[3]), 1)
    out["max_worker_rss_mb"] = round(mb(max(s[1] for s in out["samples"])), 1)
    out["requests"] = sum(c.get("ok") or 0 for c in out["chunks"])
    out["errors"] = sum(c.get("errors") or 0 for c in out["chunks"])
    print(f"  final worker VmRSS {out['final_worker_rss_mb']} MB (first sample {out['first_worker_rss_mb']} MB, max "
          f"{out['max_worker_rss_mb']} MB; Pss {out['final_worker_pss_mb']} MB) after {last[0]:.0f} s, "
          f"{out['requests']} requests, {out['errors']} errors", flush=True)
    save()


# --------------------------------------------------------------------------- #
# report
# --------------------------------------------------------------------------- #
def table(results: dict) -> str:
    lines = []
    curves = results["curves"]
    for endpoint in ("cc", "introspect"):
        node, ours = curves.get(f"node_{endpoint}"), curves.get(f"ours_{endpoint}")
        if not node and not ours:
            continue
        lines.append(f"\n{endpoint}: closed loop (requests/s, p50 / p99 ms, the server's CPU %)")
        hdr = (f"{'conns':>5} | {'node req/s':>10} {'p50':>6} {'p99':>6} {'cpu%':>4} | {'ours req/s':>10} {'p50':>6} {'p99':>6} "
               f"{'cpu%':>4} | {'ratio':>5} | {'per cpu':>7} | noisy")
        lines += [hdr, "-" * len(hdr)]
        by = {}
        for name, cv in (("node", node), ("ours", ours)):
            for p in (cv or {}).get("points", []):
                by.setdefault(p["level"], {})[name] = p
        for level in sorted(by):
            n, o = by[level].get("node", {}), by[level].get("ours", {})
            ratio = o["rps"] / n["rps"] if o.get("rps") and n.get("rps") else None
            # requests per CPU-second of each server: less sensitive to the CPU that others take away
            per_cpu = (o["rps"] / o["server_cpu_pct"]) / (n["rps"] / n["server_cpu_pct"]) \
                if ratio and o.get("server_cpu_pct") and n.get("server_cpu_pct") else None
            noisy = ",".join(k for k, p in by[level].items() if p.get("noisy")) or "-"
            lines.append(f"{level:>5} | {run.fmt(n.get('rps')):>10} {run.fmt(n.get('p50_ms'), 1):>6} {run.fmt(n.get('p99_ms'), 1):>6} "
                         f"{run.fmt(n.get('server_cpu_pct')):>4} | {run.fmt(o.get('rps')):>10} {run.fmt(o.get('p50_ms'), 1):>6} "
                         f"{run.fmt(o.get('p99_ms'), 1):>6} {run.fmt(o.get('server_cpu_pct')):>4} | {run.fmt(ratio, 2):>5} | "
                         f"{run.fmt(per_cpu, 2):>7} | {noisy}")
        for name, cv in (("node", node), ("ours", ours)):
            ol = (cv or {}).get("openloop")
            if not ol:
                continue
            p99 = ol.get("p99_ms")
            cpu = ol.get("cpu_window_pct", {})
            srv_cpu = cpu.get("node") if name == "node" else cpu.get("server")
            verdict = "-" if p99 is None else ("MET" if p99 <= 50 and not ol.get("errors") else "NOT MET")
            all_p99 = [r.get("p99_ms") for r in cv.get("openloop_runs", [])]
            if len(all_p99) > 1:
                lines.append(f"  open loop {name}: {len(all_p99)} runs, p99 " + ", ".join(run.fmt(x, 1) for x in all_p99)
                             + " ms; the median one:")
            lines.append(f"  open loop {name}: {run.fmt(ol.get('rate_target'))}/s (70 % of {run.fmt(cv.get('max_rps'))}) -> "
                         f"achieved {run.fmt(ol.get('achieved_rps'))}/s, p50 {run.fmt(ol.get('p50_ms'), 1)} p90 "
                         f"{run.fmt(ol.get('p90_ms'), 1)} p99 {run.fmt(p99, 1)} max {run.fmt(ol.get('max_ms'), 1)} ms, "
                         f"errors {ol.get('errors')}, server cpu {run.fmt(srv_cpu)}%, other cpu {run.fmt(cpu.get('other'))}%"
                         f"{', NOISY' if ol.get('noisy') else ''}  [p99 <= 50 ms: {verdict}]")
    s = results.get("soak")
    if s and "final_worker_rss_mb" in s:
        verdict = "MET" if s["final_worker_rss_mb"] <= 150 else "NOT MET"
        short = "" if s["elapsed_s"] >= 600 else ", but shorter than the bar's 10 minutes"
        lines.append(f"\nsoak: worker VmRSS {s['final_worker_rss_mb']} MB after {s['elapsed_s']:.0f} s (first sample "
                     f"{s['first_worker_rss_mb']} MB, max {s['max_worker_rss_mb']} MB; Pss {s['final_worker_pss_mb']} MB, "
                     f"private {s['final_worker_private_mb']} MB; {s['requests']} requests, {s['errors']} errors) "
                     f"[VmRSS <= 150 MB per worker: {verdict}{short}]")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        print(MPL_HINT, file=sys.stderr)
        return False
    endpoints = [e for e in ("cc", "introspect") if any(k.endswith("_" + e) for k in results["curves"])]
    soak_data = (results.get("soak") or {}).get("samples")
    if not endpoints and not soak_data:
        return False
    colours = {"ours": "tab:blue", "node": "tab:orange"}
    labels = {"ours": "visma_idp", "node": "node-oidc-provider"}
    titles = {"cc": "token endpoint (client_credentials)", "introspect": "introspection"}
    rows = len(endpoints) + (1 if soak_data else 0)
    fig, axes = plt.subplots(rows, 2, figsize=(13, 5.2 * rows), squeeze=False)
    levels = sorted({p["level"] for cv in results["curves"].values() for p in cv["points"]})
    for row, endpoint in enumerate(endpoints):
        ax_t, ax_l = axes[row]
        notes = []
        for name in ("node", "ours"):
            cv = results["curves"].get(f"{name}_{endpoint}")
            if not cv:
                continue
            pts = [p for p in cv["points"] if p.get("rps") is not None]
            xs = [p["level"] for p in pts]
            col = colours[name]
            ax_t.plot(xs, [p["rps"] for p in pts], "-", color=col, label=labels[name])
            ax_l.plot(xs, [p["p99_ms"] for p in pts], "-", color=col, label=f"{labels[name]} p99")
            ax_l.plot(xs, [p["p50_ms"] for p in pts], "--", color=col, label=f"{labels[name]} p50")
            for p in pts:  # hollow markers: other processes used the CPUs during that point
                face = "none" if p.get("noisy") else col
                ax_t.plot(p["level"], p["rps"], "o", color=col, mfc=face)
                ax_l.plot(p["level"], p["p99_ms"], "o", color=col, mfc=face)
                ax_l.plot(p["level"], p["p50_ms"], "s", color=col, mfc=face, ms=4)
            ol = cv.get("openloop")
            if ol and ol.get("p99_ms") is not None:
                errs = f", {ol['errors']} errors" if ol.get("errors") else ""
                n_runs = len(cv.get("openloop_runs", []))
                median_of = f" (median of {n_runs} runs)" if n_runs > 1 else ""
                notes.append(f"{labels[name]} {ol['rate_target']:.0f}/s: p99 {ol['p99_ms']:.1f} ms{median_of}{errs}")
        for ax in (ax_t, ax_l):
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels)
            ax.get_xaxis().set_major_formatter(ScalarFormatter())
            ax.set_xlabel("concurrent connections (closed loop)")
            ax.grid(True, which="both", alpha=0.3)
        ax_t.set_ylabel("requests/s")
        ax_t.set_ylim(bottom=0)
        ax_t.set_title(f"{titles[endpoint]}: throughput, one core each", fontsize=10)
        ax_t.legend(loc="best", fontsize=8)
        ax_l.set_yscale("log")
        ax_l.set_ylabel("latency, ms (log scale)")
        ax_l.axhline(50, color="red", lw=0.8, ls=":", label="50 ms (the p99 bar)")
        title = f"{titles[endpoint]}: latency p50 (dashed) and p99"
        if notes:
            title += "\nopen loop at 70 % of max: " + "\n".join(notes)
        ax_l.set_title(title, fontsize=9)
        ax_l.legend(loc="best", fontsize=7, ncol=2)
    if soak_data:
        ax_m, ax_r = axes[-1]
        t = [s_[0] for s_ in soak_data]
        for idx, lab, style in ((1, "worker VmRSS", "-"), (2, "worker Pss", "--"), (3, "worker private", ":")):
            ax_m.plot(t, [mb(s_[idx]) for s_ in soak_data], style, color="tab:blue", label=lab)
        ax_m.axhline(150, color="red", lw=0.8, ls=":", label="150 MB (the bar)")
        ax_m.set_xlabel("seconds of load")
        ax_m.set_ylabel("MB (10^6 bytes)")
        ax_m.set_ylim(bottom=0)
        ax_m.grid(True, alpha=0.3)
        ax_m.legend(loc="lower right", fontsize=8)
        soak = results["soak"]
        ax_m.set_title(f"visma_idp worker memory under {soak['connections']} connections, cc and introspection in turns",
                       fontsize=9)
        chunks = soak.get("chunks", [])
        for endpoint, col in (("cc", "tab:blue"), ("introspect", "tab:green")):
            cs = [c for c in chunks if c["endpoint"] == endpoint and c.get("rps")]
            ax_r.plot([c["t"] for c in cs], [c["rps"] for c in cs], "o-", color=col, ms=3, label=f"{endpoint} req/s")
        ax_r.set_xlabel("seconds of load")
        ax_r.set_ylabel("requests/s (per slice)")
        ax_r.set_ylim(bottom=0)
        ax_r.grid(True, alpha=0.3)
        ax_r.legend(loc="lower right", fontsize=8)
        ax_r.set_title("visma_idp throughput during the soak", fontsize=9)
    fig.suptitle(f"visma_idp vs node-oidc-provider, {results.get('stamp', '')} "
                 "(hollow markers: other processes busy during that point)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- #
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,2,4,8,16,32,64", help="concurrencies (closed-loop connections)")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per level")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level")
    ap.add_argument("--endpoints", default="cc,introspect", help="comma list of cc, introspect ('' = none: only the soak)")
    ap.add_argument("--servers", default="node,ours", help="comma list of node, ours")
    ap.add_argument("--fraction", type=float, default=0.7, help="open-loop rate as a fraction of the curve's max (0 = skip)")
    ap.add_argument("--openloop-duration", type=float, default=10.0)
    ap.add_argument("--openloop-warmup", type=float, default=1.0)
    ap.add_argument("--openloop-repeats", type=int, default=1,
                    help="open-loop runs per server and endpoint; the one with the median p99 is reported")
    ap.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    ap.add_argument("--soak", type=float, default=0.0, metavar="SECONDS", help="RSS soak of our server (the issue: 600); 0 = none")
    ap.add_argument("--soak-connections", type=int, default=16)
    ap.add_argument("--soak-chunk", type=float, default=10.0, help="seconds of one endpoint before switching to the other")
    ap.add_argument("--soak-every", type=float, default=10.0, help="RSS sampling interval, seconds")
    ap.add_argument("--plot", default=None, help="PNG path (default bench/results/curve-<stamp>.png)")
    ap.add_argument("--replot", metavar="JSON", help="only print the table and redraw the PNG of an earlier run's JSON")
    ap.add_argument("--server", dest="server_kind", default="auto", choices=["auto", "cli", "gthread", "sync", "granian"],
                    help="as bench/run.py --server")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--port", type=int, default=7012, help="our server (not run.py's 7002, so the two can coexist)")
    ap.add_argument("--node-port", type=int, default=7011)
    ap.add_argument("--db", default="visma_idp_bench_curve", help="bench database (dropped and re-created!)")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="REDIS_URL of our server; '' = without Redis")
    ap.add_argument("--app-dir", default=str(run.ROOT))
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--load-cpus", default="1")
    ap.add_argument("--anchor-python", default=shutil.which("python3") or "python3")
    ap.add_argument("--noisy-pct", type=float, default=15.0)
    ap.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                    help="before each measurement wait up to this long for a quiet moment (0 = do not wait)")
    ap.add_argument("--results-dir", default=str(HERE / "results"))
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    if a.replot:
        src = Path(a.replot)
        dst = Path(a.plot) if a.plot else src.with_suffix(".png")
        data = json.loads(src.read_text())
        print(table(data))
        if not plot(data, dst):
            return 1
        print(f"plot: {dst}")
        return 0

    a.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    a.levels = [int(x) for x in a.levels.split(",") if x.strip()]
    endpoints = [e.strip() for e in a.endpoints.split(",") if e.strip()]
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    if set(endpoints) - set(ENDPOINTS) or set(servers) - {"node", "ours"}:
        ap.error("--endpoints: cc, introspect; --servers: node, ours")
    a.app_dir = Path(a.app_dir).resolve()
    a.venv_bin = run.ROOT / ".venv" / "bin"
    a.base = f"http://127.0.0.1:{a.port}"
    a.dsn = f"{a.pg.rstrip('/')}/{a.db}"
    a.admin_dsn = f"{a.pg.rstrip('/')}/postgres".replace("postgresql+psycopg://", "postgresql://")
    Path(a.results_dir).mkdir(parents=True, exist_ok=True)
    json_out = Path(a.json_out) if a.json_out else Path(a.results_dir) / f"curve-{a.stamp}.json"
    png = Path(a.plot) if a.plot else Path(a.results_dir) / f"curve-{a.stamp}.png"
    if a.server_kind == "auto":
        a.server_kind = "cli" if run.cli_supports_serve(a.venv_bin) else "gthread"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"# {MPL_HINT}; the JSON is written anyway (redraw later with --replot)", file=sys.stderr)

    env = dict(os.environ, VISMA_IDP_ISSUER=a.base, VISMA_IDP_SECRET_KEY=run.SECRET_KEY, VISMA_IDP_DATABASE_URL=a.dsn,
               VISMA_IDP_LOG_LEVEL="WARNING", PYTHONPATH=str(a.app_dir))
    if a.redis:
        env["VISMA_IDP_REDIS_URL"] = a.redis
    results = {"stamp": a.stamp, "label": a.label, "server": a.server_kind, "args": {k: str(v) for k, v in vars(a).items()},
               "info": run.versions(a), "curves": {}}

    def save():
        json_out.write_text(json.dumps(results, indent=1))

    print(f"# visma_idp curve {a.stamp}  levels={a.levels}  {a.duration:g}+{a.warmup:g} s  load={run.loadavg()}", flush=True)
    if "ours" in servers or a.soak:
        print("# seeding the bench database ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "seed.py"), "--dsn", a.dsn, "--issuer", a.base, "--secret-key",
                        run.SECRET_KEY, "--users", "1"], cwd=a.app_dir, env=env, check=True, stdout=subprocess.DEVNULL)

    def start(name):
        srv = Node(a) if name == "node" else Ours(a, env)
        srv.start()
        print(f"# {name}: {' '.join(srv.cmd)} (pid {srv.pid})", flush=True)
        results.setdefault("server_cmd", {})[name] = srv.cmd
        return srv

    for endpoint in endpoints:
        for name in servers:
            print(f"\n## {name} {endpoint}  load {run.loadavg()}", flush=True)
            srv = start(name)
            try:
                curve_for(a, srv, endpoint, results, save)
                results["curves"][f"{name}_{endpoint}"]["worker_rss_kib_after"] = run.vm_rss_kib(srv.worker_pid())
            finally:
                srv.stop()
    if a.soak:
        srv = start("ours")
        try:
            quiet(a)
            soak(a, srv, results, save)
        finally:
            srv.stop()

    results["summary"] = table(results)
    save()
    print(results["summary"])
    if plot(results, png):
        print(f"\nplot: {png}")
    print(f"results: {json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
