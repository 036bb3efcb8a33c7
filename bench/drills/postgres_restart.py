"""Fault drill: PostgreSQL restarted under load.

    .venv/bin/python bench/drills/postgres_restart.py            # 40 s, restart at t=10 s
    .venv/bin/python bench/drills/postgres_restart.py --workers 1 --duration 30

1. seeds a throw-away database (``--db``, default ``visma_idp_drill``; bench/seed.py
   plus a client with refresh tokens), dropped at the end;
2. starts ``visma-idp serve --workers N`` with ``VISMA_IDP_REDIS_URL`` set and
   ``VISMA_IDP_INTROSPECTION_CACHE_SECONDS=0`` (every introspection reads the database);
3. runs a closed-loop load that touches the database on every request:
   introspection of a client_credentials token, refresh-token grants (rotation:
   a write each), whole sign-ins (authorize, email page, password page, code,
   token), and a /readyz probe every 0.5 s; a client that got an error waits
   50 ms before its next request;
4. at ``--restart-at`` seconds runs ``pg_ctlcluster 15 main restart`` (a fast
   shutdown: every connection is cut; this machine has no systemd);
5. prints per second: successes, failures by status (0 = no HTTP answer),
   p99 latency; then the failure window, the time to the first success after
   the restart, whether the provider's processes are the same ones (pid and
   start time of the server and each worker), the ERROR/WARNING/Traceback
   lines the server logged during the drill (with a sample), and /readyz
   afterwards. Writes everything to ``bench/drills/results/``.

Exit status 0 when the provider recovered by itself (same processes, /readyz
200, successes after the restart), 1 otherwise. PostgreSQL is always started
again, and ``pg_isready``/``redis-cli ping`` are checked at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import log  # noqa: E402


def pg_timeline(wall0: float, restart_start: float) -> list[str]:
    """The server's own lines about the restart, with their time relative to the drill's start."""
    import calendar

    out = []
    try:
        text = Path("/var/log/postgresql/postgresql-15-main.log").read_text(errors="replace")
    except OSError:
        return out
    wanted = ("received fast shutdown request", "checkpoint starting: shutdown", "checkpoint complete",
              "database system is shut down", "listening on IPv4", "database system is ready to accept connections")
    for ln in text.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d+) UTC", ln)
        if not m or not any(w in ln for w in wanted):
            continue
        t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + float("0." + m.group(2))
        rel = t - wall0
        if restart_start - 1 <= rel <= restart_start + 120:
            out.append(f"t={rel:6.2f}s {ln[:200]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7102)
    ap.add_argument("--db", default="visma_idp_drill")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="serve --threads (default: serve's)")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--restart-at", type=float, default=10.0)
    ap.add_argument("--introspect-clients", type=int, default=4)
    ap.add_argument("--refresh-clients", type=int, default=2)
    ap.add_argument("--login-clients", type=int, default=1)
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--no-restart", action="store_true", help="dry run: the load and the report, no restart")
    ap.add_argument("--out", default=str(common.HERE / "results"))
    a = ap.parse_args()

    out_dir, stamp, log_path = common.results(a.out, "postgres_restart")
    base = f"http://127.0.0.1:{a.port}"
    result: dict = {"stamp": stamp, "args": vars(a), "server_log": str(log_path)}

    log(f"seeding database {a.db} ...")
    dsn = common.seed_database(a.db, base)
    server = common.Server(a.port, dsn, log_path, workers=a.workers, threads=a.threads,
                           extra_env={"VISMA_IDP_INTROSPECTION_CACHE_SECONDS": "0"})
    events: list[tuple[float, float, str, str]] = []  # (start, end, kind, outcome) relative to t0
    ev_lock = threading.Lock()
    stop = threading.Event()
    restarted = {}
    rc = 1
    try:
        server.start()
        result["server_cmd"] = server.cmd
        log(f"server: {' '.join(server.cmd)} (pid {server.pid}), log {log_path}")
        c = common.Client(base)
        st, access = common.cc_token(c)
        assert st == 200 and access, f"client_credentials: HTTP {st}"
        b = common.logins.Browser("127.0.0.1", a.port, base)
        refresh_tokens = [common.full_login(b, common.seed.user_email(i % 4))["refresh_token"]
                          for i in range(a.refresh_clients)]
        tree_before = server.tree()
        log_offset = log_path.stat().st_size
        t0 = time.monotonic()
        wall0 = time.time()

        def record(ts, kind, outcome):
            with ev_lock:
                events.append((ts - t0, time.monotonic() - t0, kind, outcome))

        def introspector():
            cl = common.Client(base)
            while not stop.is_set():
                ts = time.monotonic()
                st, active = common.introspect(cl, access)
                outcome = "ok" if st == 200 and active else (str(st) if st != 200 else "inactive")
                record(ts, "introspect", outcome)
                if outcome != "ok":
                    time.sleep(0.05)

        def refresher(i):
            cl = common.Client(base)
            token = refresh_tokens[i]
            br = common.logins.Browser("127.0.0.1", a.port, base)
            while not stop.is_set():
                ts = time.monotonic()
                st, body = cl.post("/token", {"grant_type": "refresh_token", "refresh_token": token},
                                   common.REFRESH_AUTH)
                if st == 200:
                    token = json.loads(body)["refresh_token"]
                    record(ts, "refresh", "ok")
                    continue
                outcome = str(st)
                if st == 400 and b"invalid_grant" in body:
                    outcome = "400 invalid_grant"
                record(ts, "refresh", outcome)
                time.sleep(0.05)
                if st == 400:  # the chain is broken (a rotation committed but not answered): sign in again
                    try:
                        token = common.full_login(br, common.seed.user_email(i % 4))["refresh_token"]
                    except Exception:  # noqa: BLE001
                        pass

        def login_user(i):
            br = common.logins.Browser("127.0.0.1", a.port, base)
            n = 0
            while not stop.is_set():
                ts = time.monotonic()
                try:
                    common.full_login(br, common.seed.user_email((i + n) % 4))
                    outcome = "ok"
                except common.logins.LoginError as exc:
                    outcome = str(exc)
                except Exception as exc:  # noqa: BLE001
                    outcome = f"client: {type(exc).__name__}"
                n += 1
                record(ts, "login", outcome)
                if outcome != "ok":
                    time.sleep(0.05)

        def prober():
            cl = common.Client(base, timeout=8)
            while not stop.is_set():
                ts = time.monotonic()
                st, _ = cl.get("/readyz")
                record(ts, "readyz", "ok" if st == 200 else str(st))
                time.sleep(0.5)

        threads = [threading.Thread(target=introspector, daemon=True) for _ in range(a.introspect_clients)]
        threads += [threading.Thread(target=refresher, args=(i,), daemon=True) for i in range(a.refresh_clients)]
        threads += [threading.Thread(target=login_user, args=(i,), daemon=True) for i in range(a.login_clients)]
        threads += [threading.Thread(target=prober, daemon=True)]
        for t in threads:
            t.start()
        log(f"load running: {a.introspect_clients} introspect, {a.refresh_clients} refresh, "
            f"{a.login_clients} login clients, /readyz every 0.5 s")
        time.sleep(max(0.0, t0 + a.restart_at - time.monotonic()))
        restarted["start"] = time.monotonic() - t0
        log("dry run: no restart" if a.no_restart else "pg_ctlcluster 15 main restart ...")
        try:
            took, output = (0.0, "(dry run: no restart)") if a.no_restart else common.restart_postgres()
        finally:
            restarted["end"] = time.monotonic() - t0
            if not common.pg_ready():  # never leave it down
                subprocess.run(["pg_ctlcluster", "15", "main", "start"], capture_output=True, timeout=120)
        restarted["output"] = output
        log(f"restart took {took:.2f} s (t={restarted['start']:.2f} -> {restarted['end']:.2f}) {output}")
        time.sleep(max(0.0, t0 + a.duration - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(timeout=15)
        t_end = time.monotonic() - t0

        # /readyz afterwards
        ready_after = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, body = c.get("/readyz")
            if st == 200:
                ready_after = {"status": st, "body": json.loads(body)}
                break
            ready_after = {"status": st, "body": body.decode("utf-8", "replace")[:300]}
            time.sleep(0.5)
        tree_after = server.tree()
        same = tree_before == tree_after
        lines = common.log_lines(log_path, log_offset)
    finally:
        stop.set()
        server.stop()
        if not common.pg_ready():
            subprocess.run(["pg_ctlcluster", "15", "main", "start"], capture_output=True, timeout=120)
        if not a.keep_db:
            try:
                common.drop_database(a.db)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop {a.db}: {exc}")
        common.clean_redis_db()
        result["final_check"] = common.final_check()

    # ------------------------------------------------------------------ report
    per_sec: dict[int, dict] = defaultdict(lambda: {"ok": 0, "fail": Counter(), "lat": []})
    for ts, te, kind, outcome in events:
        if kind == "readyz":
            continue
        s = per_sec[int(te)]
        if outcome == "ok":
            s["ok"] += 1
        else:
            s["fail"][f"{kind}:{outcome}"] += 1
        s["lat"].append(te - ts)
    table = []
    print("\nsecond | ok | failed (kind:status x n) | p99 ms | readyz")
    readyz = defaultdict(list)
    for _ts, te, kind, outcome in events:
        if kind == "readyz":
            readyz[int(te)].append(outcome)
    for sec in range(int(t_end) + 1):
        s = per_sec.get(sec, {"ok": 0, "fail": Counter(), "lat": []})
        p99 = common.logins.percentile(s["lat"], 99)
        row = {"second": sec, "ok": s["ok"], "failed": sum(s["fail"].values()), "fail_kinds": dict(s["fail"]),
               "p99_ms": round(p99 * 1000, 1) if p99 is not None else None, "readyz": readyz.get(sec, [])}
        table.append(row)
        mark = "  <- restart" if int(restarted["start"]) == sec else ""
        print(f"{sec:>6} | {row['ok']:>4} | {row['failed']:>3} {dict(s['fail']) or ''} | "
              f"{row['p99_ms'] if row['p99_ms'] is not None else '-':>7} | {','.join(row['readyz'])}{mark}")

    fails = [(ts, te, k, o) for ts, te, k, o in events if o != "ok" and k != "readyz"]
    oks = [(ts, te, k, o) for ts, te, k, o in events if o == "ok" and k != "readyz"]
    by_kind = {}
    for kind in ("introspect", "refresh", "login"):
        kk = [e for e in events if e[2] == kind]
        by_kind[kind] = {"ok": sum(1 for e in kk if e[3] == "ok"),
                         "failed": dict(Counter(e[3] for e in kk if e[3] != "ok"))}
    summary = {
        "restart": {"start_s": round(restarted["start"], 2), "end_s": round(restarted["end"], 2),
                    "command_seconds": round(restarted["end"] - restarted["start"], 2)},
        "requests": {"ok": len(oks), "failed": len(fails), "by_kind": by_kind},
    }
    if fails:
        first, last = min(e[1] for e in fails), max(e[1] for e in fails)
        summary["failure_window"] = {"first_s": round(first, 2), "last_s": round(last, 2),
                                     "seconds": round(last - first, 2),
                                     "last_failure_after_restart_began_s": round(last - restarted["start"], 2),
                                     "kinds": dict(Counter(f"{e[2]}:{e[3]}" for e in fails))}
    after = [e[1] for e in oks if e[1] > restarted["end"]]
    started_after = [e[1] for e in oks if e[0] >= restarted["end"]]
    summary["first_success_after_restart_s"] = {
        "after_restart_began": round(min(after) - restarted["start"], 2) if after else None,
        "request_started_after_restart_command_returned": (round(min(started_after) - restarted["end"], 2)
                                                           if started_after else None)}
    if fails:
        after_last = [e[1] for e in oks if e[1] > max(e[1] for e in fails)]
        summary["first_success_after_last_failure_s"] = round(min(after_last) - max(e[1] for e in fails), 3) \
            if after_last else None
    rz = [(te, o) for ts, te, k, o in events if k == "readyz"]
    rz_bad = [te for te, o in rz if o != "ok"]
    summary["readyz_during"] = {"probes": len(rz), "not_200": len(rz_bad),
                                "not_200_window_s": [round(min(rz_bad), 2), round(max(rz_bad), 2)] if rz_bad else None}
    summary["readyz_after"] = ready_after
    summary["same_processes"] = {"same": same, "before": tree_before, "after": tree_after}
    counts = common.classify_log(lines)
    interesting = [ln for ln in lines if re.search(r"\b(ERROR|CRITICAL|WARNING)\b", ln) or ln.startswith("Traceback")]
    normal = Counter(re.sub(r"^\S+ (\w+) (\S+) \[[^\]]*\] ", r"\1 \2 ", ln)[:160] for ln in interesting)
    first_err = next((i for i, ln in enumerate(lines) if re.search(r"\b(ERROR|CRITICAL)\b", ln)), None)
    err_times = [ln[11:19] for ln in lines if re.search(r"^\S+Z (ERROR|CRITICAL) ", ln)]
    in_errors = 0  # lines that belong to ERROR records (the message and its traceback)
    inside = False
    for ln in lines:
        if re.match(r"^\d{4}-\d\d-\d\dT", ln) or ln.startswith("["):
            inside = bool(re.search(r"\b(ERROR|CRITICAL)\b", ln))
        if inside:
            in_errors += 1
    summary["server_log"] = {
        "counts": counts, "lines_of_error_records": in_errors,
        "error_records_per_second": dict(Counter(err_times)),
        "distinct": normal.most_common(12), "sample": interesting[:8],
        "first_error_excerpt": lines[first_err:first_err + 80] if first_err is not None else []}
    summary["postgres_log"] = pg_timeline(wall0, restarted["start"])
    oks_total_s = [e for e in oks if e[1] < restarted["start"]]
    summary["rate_before_restart_per_s"] = round(len(oks_total_s) / restarted["start"], 1)
    lat_before = [e[1] - e[0] for e in oks if e[1] < restarted["start"]]
    summary["p99_ms_before_restart"] = round(common.logins.percentile(lat_before, 99) * 1000, 1) if lat_before else None
    summary["median_ms_before_restart"] = round(statistics.median(lat_before) * 1000, 1) if lat_before else None
    recovered = bool(same and ready_after and ready_after["status"] == 200 and after)
    summary["recovered_by_itself"] = recovered
    result.update(summary=summary, per_second=table)
    (out_dir / f"postgres_restart-{stamp}.json").write_text(json.dumps(result, indent=1, default=str))
    print("\n" + json.dumps(summary, indent=1, default=str))
    log(f"results: {out_dir / f'postgres_restart-{stamp}.json'}")
    rc = 0 if recovered else 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
