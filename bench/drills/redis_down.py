"""Fault drill: Redis down for ~15 s under a running provider.

    .venv/bin/python bench/drills/redis_down.py
    .venv/bin/python bench/drills/redis_down.py --outage 12 --workers 1

1. seeds a throw-away database (``--db``, default ``visma_idp_drill_redis``; dropped at
   the end) and starts ``visma-idp serve --workers 2`` with ``VISMA_IDP_REDIS_URL``
   and ``VISMA_IDP_THROTTLE_FREE_ATTEMPTS=9`` (``THROTTLE_MAX_FAILURES`` stays at its
   default 10: no growing delays before the lock, so the lock is reached inside
   the outage); the introspection cache is on (default 30 s);
2. before the outage: a client_credentials token T1, introspected (active);
   the Redis keys are kept (DUMP) so they can be put back;
3. ``redis-cli shutdown nosave``; during the outage, through real HTTP:
   (c) a client_credentials token T2 is issued;
   (b) T1 and T2 introspect active; T2 is revoked and is inactive at the very
       next introspection; T1 still active;
   (a) wrong passwords for one account through the login pages until the
       answer is 429: the lock comes at THROTTLE_MAX_FAILURES, counted in the
       ``throttle_counts`` table, and the right password is refused too;
   (a') the same for the second step: wrong authenticator-app codes for the
       TOTP user until 429, then the right code is refused too;
   and a whole sign-in of another user still works;
4. Redis is started again with the same settings (rebuilt from CONFIG GET: the
   daemon rewrites its process title), the kept keys are put back; after the
   throttle's 5 s pause, a wrong password for a third account is counted in
   Redis (``visma_idp:throttle:acct:...``) and not in the database; a
   revocation raises ``visma_idp:revocations`` in Redis again;
5. counts the server's ERROR/WARNING/Traceback lines during and after the
   outage, prints everything, writes ``bench/drills/results/redis_down-*.json``.

Redis is always started again (try/finally); ``pg_isready``/``redis-cli ping``
are checked at the end. Exit status 0 when nothing failed open.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import log, seed  # noqa: E402

WRONG_PASSWORD = "not the password at all 2026"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7103)
    ap.add_argument("--db", default="visma_idp_drill_redis")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--outage", type=float, default=15.0, help="seconds Redis stays down (at most 20)")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--out", default=str(common.HERE / "results"))
    a = ap.parse_args()
    if a.outage > 20:
        raise SystemExit("--outage: at most 20 s (Redis is shared)")

    import pyotp
    import redis

    out_dir, stamp, log_path = common.results(a.out, "redis_down")
    base = f"http://127.0.0.1:{a.port}"
    res: dict = {"stamp": stamp, "args": vars(a), "server_log": str(log_path), "during": {}, "after": {}}
    problems: list[str] = []

    log(f"seeding database {a.db} ...")
    dsn = common.seed_database(a.db, base)
    max_failures = 10
    server = common.Server(a.port, dsn, log_path, workers=a.workers,
                           extra_env={"VISMA_IDP_THROTTLE_FREE_ATTEMPTS": str(max_failures - 1),
                                      "VISMA_IDP_THROTTLE_MAX_FAILURES": str(max_failures)})
    rc_ = common.RedisControl()
    res["redis"] = {"pid_before": rc_.pid_before, "cmdline_seen": rc_.cmdline_seen, "restart_cmd": rc_.cmd}
    r = redis.Redis.from_url(common.REDIS_URL, socket_timeout=5)  # the server's own Redis database
    totp_user = common.sql(a.db, "select id from users where email = %s", (seed.TOTP_EMAIL,))[0][0]
    totp = pyotp.TOTP(seed.TOTP_SECRET)

    def db_count(key: str):
        rows = common.sql(a.db, "select n, last from throttle_counts where key = %s", (common.throttle_key(key),))
        return rows[0][0] if rows else None

    def redis_throttle_keys():
        return sorted(k.decode() for k in r.scan_iter("visma_idp:throttle:*", count=1000))

    def wrong_passwords(email: str, limit: int = max_failures + 5) -> dict:
        b = common.logins.Browser("127.0.0.1", a.port, base)
        page, _v = common.start_login(b, seed.LOGIN_CLIENT[0], "openid profile email", email)
        statuses = []
        for _ in range(limit):
            st, body = common.post_password(b, page, WRONG_PASSWORD)
            statuses.append(st)
            if st != 401:
                break
        st_right, body_right = common.post_password(b, page, seed.USER_PASSWORD)
        return {"statuses": statuses, "first_429_at_attempt": statuses.index(429) + 1 if 429 in statuses else None,
                "right_password_after": st_right,
                "right_password_message": common.page_error(body_right) if st_right != 302 else "(signed in!)",
                "db_count_acct": db_count("acct:" + email), "db_count_ip": db_count("ip:127.0.0.1")}

    def wrong_codes(limit: int = max_failures + 5) -> dict:
        b = common.logins.Browser("127.0.0.1", a.port, base)
        page, _v = common.start_login(b, seed.LOGIN_CLIENT[0], "openid profile email", seed.TOTP_EMAIL)
        st, loc = common.post_password(b, page, seed.USER_PASSWORD)
        if st not in (302, 303):
            return {"error": f"password step: HTTP {st}"}
        verify_page = common.logins.path_of(loc)
        statuses = []
        good_code = totp.at(time.time())
        wrong = next(f"{n:06d}" for n in range(123456, 999999, 7919)
                     if all(totp.at(time.time() + k * 30) != f"{n:06d}" for k in range(-3, 4)))

        def post_code(code):
            st, _h, html = b.request("GET", verify_page)
            text = html.decode("utf-8", "replace")
            action = re.search(r'<form method="post" action="([^"]+)"', text)
            csrf = common.CSRF_RE.search(text)
            if st != 200 or not (action and csrf):
                return st, text
            form = {"csrf_token": csrf.group(1), "method": "totp", "code": code}
            st, h, body = b.request("POST", action.group(1).replace("&amp;", "&"), form)
            return st, body.decode("utf-8", "replace")

        for _ in range(limit):
            st, _t = post_code(wrong)
            statuses.append(st)
            if st == 429:
                break
        st_right, text = post_code(good_code)
        return {"statuses": statuses, "first_429_at_attempt": statuses.index(429) + 1 if 429 in statuses else None,
                "right_code_after": st_right, "right_code_message": common.page_error(text) if st_right != 302 else "",
                "db_count_2fa": db_count(f"acct:2fa:{totp_user}"),  # Throttle prefixes account keys with acct:
                "db_locks_2fa": db_count(f"locks:2fa:{totp_user}")}

    try:
        server.start()
        res["server_cmd"] = server.cmd
        log(f"server: {' '.join(server.cmd)} (pid {server.pid}), log {log_path}")
        c = common.Client(base)
        st, t1 = common.cc_token(c)
        assert st == 200 and t1
        res["before"] = {"introspect_T1": common.introspect(c, t1), "introspect_T1_again": common.introspect(c, t1),
                         "redis_keys_visma_idp": sorted(k.decode() for k in r.scan_iter("visma_idp:*", count=1000))}
        res["before"]["db_throttle_rows"] = common.sql(a.db, "select count(*) from throttle_counts")[0][0]
        res["redis"]["keys_kept"] = rc_.keep_keys()
        tree_before = server.tree()
        off_before = log_path.stat().st_size
        during = res["during"]
        done = threading.Event()

        def outage_actions():
            cl = common.Client(base)
            try:
                ts = time.monotonic()
                st, t2 = common.cc_token(cl)
                during["c_client_credentials"] = {"status": st, "token": bool(t2),
                                                  "ms": round((time.monotonic() - ts) * 1000, 1)}
                during["b_introspection"] = {
                    "T1_active": common.introspect(cl, t1),
                    "T2_active": common.introspect(cl, t2) if t2 else None,
                    "revoke_T2": common.revoke(cl, t2) if t2 else None,
                    "T2_right_after_revocation": common.introspect(cl, t2) if t2 else None,
                    "T1_still": common.introspect(cl, t1),
                }
                during["a_passwords"] = wrong_passwords(seed.user_email(0))
                during["a2_second_step_codes"] = wrong_codes()
                b = common.logins.Browser("127.0.0.1", a.port, base)
                try:
                    tok = common.full_login(b, seed.user_email(1), client=seed.LOGIN_CLIENT, scope="openid profile email")
                    during["whole_sign_in_other_user"] = "ok" if tok.get("id_token") else "no id_token"
                except common.logins.LoginError as exc:
                    during["whole_sign_in_other_user"] = f"failed: {exc}"
                during["redis_really_down"] = not common.redis_ping()
            except Exception as exc:  # noqa: BLE001
                during["exception"] = repr(exc)
            finally:
                during["actions_seconds"] = round(time.monotonic() - t_down, 2)
                done.set()

        def steady_traffic(until: float):
            """Through the whole outage: introspections of T1 and whole sign-ins of a fourth
            user, so the log shows what a steady flow of requests makes it write."""
            cl = common.Client(base)
            b = common.logins.Browser("127.0.0.1", a.port, base)
            counts = Counter()
            while time.monotonic() < until:
                st, active = common.introspect(cl, t1)
                counts["introspect ok" if (st, active) == (200, True) else f"introspect {st} {active}"] += 1
                try:
                    common.full_login(b, seed.user_email(3), client=seed.LOGIN_CLIENT, scope="openid profile email")
                    counts["sign-in ok"] += 1
                except Exception as exc:  # noqa: BLE001
                    counts[f"sign-in failed: {exc}"] += 1
                time.sleep(0.1)
            during["steady_traffic"] = dict(counts)

        log("redis-cli shutdown nosave ...")
        t_down = time.monotonic()
        try:
            rc_.stop()
            res["redis"]["stopped_ping"] = common.redis_ping()
            worker = threading.Thread(target=outage_actions, daemon=True)
            worker.start()
            steady = threading.Thread(target=steady_traffic, args=(t_down + a.outage - 0.5,), daemon=True)
            steady.start()
            done.wait(timeout=a.outage - 0.5)
            time.sleep(max(0.0, t_down + a.outage - time.monotonic()))
        finally:
            rc_.start()
            res["redis"]["down_seconds"] = round(time.monotonic() - t_down, 2)
            res["redis"]["back"] = common.redis_ping()
            res["redis"]["pid_after"] = rc_.pid_now()
            res["redis"]["keys_put_back"] = rc_.restore_keys()
            log(f"Redis back after {res['redis']['down_seconds']} s (pid {res['redis']['pid_after']}); "
                f"kept keys put back/skipped: {res['redis']['keys_put_back']}")
        if not done.is_set():
            problems.append("the outage actions did not finish while Redis was down")
        done.wait(30)
        steady.join(5)
        off_back = log_path.stat().st_size

        # after: the throttle tries Redis again 5 s after its last failure
        time.sleep(6)
        after = res["after"]
        email3 = seed.user_email(2)
        b = common.logins.Browser("127.0.0.1", a.port, base)
        page, _v = common.start_login(b, seed.LOGIN_CLIENT[0], "openid profile email", email3)
        after["wrong_password_other_account"] = common.post_password(b, page, WRONG_PASSWORD)[0]
        after["redis_throttle_keys"] = redis_throttle_keys()
        after["redis_count_other_account"] = r.hget(f"visma_idp:throttle:acct:{email3}", "n")
        after["redis_count_other_account"] = int(after["redis_count_other_account"] or 0)
        after["db_count_other_account"] = db_count("acct:" + email3)
        # the account locked during the outage: its count was in the database only
        b0 = common.logins.Browser("127.0.0.1", a.port, base)
        page0, _v = common.start_login(b0, seed.LOGIN_CLIENT[0], "openid profile email", seed.user_email(0))
        after["locked_account_wrong_password_now"] = common.post_password(b0, page0, WRONG_PASSWORD)[0]
        after["locked_account_db_count"] = db_count("acct:" + seed.user_email(0))
        after["locked_account_redis_count"] = int(r.hget(f"visma_idp:throttle:acct:{seed.user_email(0)}", "n") or 0)
        # revocation counter back in Redis
        counter_before = r.get("visma_idp:revocations")
        after["revoke_T1"] = common.revoke(c, t1)
        after["revocation_counter"] = [counter_before.decode() if counter_before else None,
                                       (r.get("visma_idp:revocations") or b"").decode() or None]
        after["introspect_T1"] = common.introspect(c, t1)
        time.sleep(1)
        tree_after = server.tree()
        res["same_processes"] = tree_before == tree_after
        with open(log_path, "rb") as f:
            f.seek(off_before)
            lines_outage = f.read(off_back - off_before).decode("utf-8", "replace").splitlines()
        all_after = common.log_lines(log_path, off_back)
    finally:
        server.stop()
        if not common.redis_ping():
            rc_.start()
        common.clean_redis_db()  # our keys only: the drill's own Redis database
        if not a.keep_db:
            try:
                common.drop_database(a.db)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop {a.db}: {exc}")
        res["final_check"] = common.final_check()

    def notable(lines):
        return [ln for ln in lines if re.search(r"\b(ERROR|CRITICAL|WARNING)\b", ln) or ln.startswith("Traceback")]

    res["log_outage"] = {"counts": common.classify_log(lines_outage), "lines": notable(lines_outage)[:40],
                         "distinct": Counter(re.sub(r"^\S+ (\w+) (\S+) \[[^\]]*\] ", r"\1 \2 ", ln)
                                             for ln in notable(lines_outage)).most_common(10)}
    res["log_after"] = {"counts": common.classify_log(all_after), "lines": notable(all_after)[:20]}

    d = res["during"]
    if d.get("c_client_credentials", {}).get("status") != 200:
        problems.append("client_credentials failed during the outage")
    bi = d.get("b_introspection", {})
    if bi.get("T1_active") != (200, True) or bi.get("T2_active") != (200, True) \
            or bi.get("T2_right_after_revocation") != (200, False):
        problems.append(f"introspection during the outage: {bi}")
    ap_ = d.get("a_passwords", {})
    if ap_.get("first_429_at_attempt") != max_failures or ap_.get("right_password_after") != 429:
        problems.append(f"password throttle during the outage: {ap_}")
    if ap_.get("db_count_acct") != max_failures:
        problems.append(f"throttle_counts for the account: {ap_.get('db_count_acct')} (expected {max_failures})")
    ac = d.get("a2_second_step_codes", {})
    # the code that locks is answered as a wrong code (401); the next one gets 429
    if ac.get("first_429_at_attempt") != max_failures + 1 or ac.get("right_code_after") != 429 \
            or ac.get("db_count_2fa") != max_failures:
        problems.append(f"second-step throttle during the outage: {ac}")
    if res["after"].get("redis_count_other_account") != 1 or res["after"].get("db_count_other_account") is not None:
        problems.append("after Redis came back the count did not go to Redis")
    if any(not k.endswith(" ok") for k in d.get("steady_traffic", {"missing": 1})):
        problems.append(f"steady traffic during the outage: {d.get('steady_traffic')}")
    if not res.get("same_processes"):
        problems.append("the provider's processes changed")
    res["problems"] = problems
    (out_dir / f"redis_down-{stamp}.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res, indent=1, default=str))
    log(f"results: {out_dir / f'redis_down-{stamp}.json'}; problems: {problems or 'none'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
