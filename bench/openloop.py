"""Open-loop load on the token endpoint (client_credentials) or introspection.

    .venv/bin/python bench/openloop.py http://127.0.0.1:7002 --rate 500 -d 20
    .venv/bin/python bench/openloop.py http://127.0.0.1:7002 --endpoint introspect --rate 800 --json

A closed-loop generator (``load.py``: N connections, one request in flight
each) waits for the server before it sends the next request, so a slow server
also slows the arrivals and the worst moments hide from the percentiles
("coordinated omission"). Here the requests arrive on a fixed schedule instead:
``--rate`` R per second, Poisson arrivals (``--arrivals poisson``, the default:
exponential gaps, seeded) or evenly spaced ones (``--arrivals uniform``). Each
request's latency is counted from the moment it was *scheduled*, so time spent
waiting for a free connection, or behind a late event loop, is part of it.

Requests go out over a pool of keep-alive HTTP/1.1 connections (``--preopen``
opened before the start, new ones as needed up to ``--max-connections``; past
that the requests queue, and the wait counts). Every response is checked: 200
and a JSON ``access_token`` (client_credentials, ``client_secret_basic``,
``scope``), or 200 and ``"active": true`` (introspection of one token fetched
before the run). Only requests scheduled in the measured window (after
``--warmup``) are counted; those still unanswered ``--drain`` seconds after the
last send count as errors.

Prints the offered and achieved rate, p50/p90/p99/p99.9/max latency, errors,
how late the requests went out (``send lag``: a late event loop, or a wait for
a free connection once ``--max-connections`` are open; with few connections
and a large lag, the generator is the bottleneck, not the server), the
connections it needed, and its own CPU use; ``--json`` adds a JSON line.
Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import logins  # noqa: E402  (bench/logins.py: basic)


# --------------------------------------------------------------------------- #
# request set-up
# --------------------------------------------------------------------------- #
def metadata(base: str) -> dict:
    with urllib.request.urlopen(base.rstrip("/") + "/.well-known/openid-configuration", timeout=10) as r:
        return json.load(r)


def post_bytes(host: str, path: str, auth: str, form: dict[str, str]) -> bytes:
    body = urllib.parse.urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def check_token(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    try:
        return None if json.loads(body).get("access_token") else "no access_token"
    except ValueError:
        return "bad JSON"


def check_active(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    try:
        return None if json.loads(body).get("active") is True else "not active"
    except ValueError:
        return "bad JSON"


# --------------------------------------------------------------------------- #
# the connection pool
# --------------------------------------------------------------------------- #
class Pool:
    """Keep-alive connections; one request in flight per connection."""

    def __init__(self, host: str, port: int, payload: bytes, check, max_conns: int):
        self.host, self.port, self.payload, self.check = host, port, payload, check
        self.max_conns = max_conns
        self.idle: list[Conn] = []
        self.opening = 0
        self.open_conns = 0
        self.peak_open = 0
        self.backlog: deque[float] = deque()  # scheduled times waiting for a connection
        self.done: list[tuple[float, float, str | None]] = []  # (scheduled, finished, error or None)
        self.send_lag: list[float] = []  # write time - scheduled time (sender/queue lateness)
        self.outstanding = 0
        self.connects = 0
        self.conn_errors = Counter()

    async def preopen(self, n: int) -> None:
        await asyncio.gather(*(self._spawn() for _ in range(n)))

    def _spawn(self) -> asyncio.Task:
        """Open one more connection (counted as opening from now on, so that
        several submits in a row do not overshoot max_conns)."""
        self.opening += 1
        return asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Conn(self), self.host, self.port)
            self.connects += 1
        except OSError as e:
            self.conn_errors[type(e).__name__] += 1
            # whatever waits in the backlog fails rather than hangs
            while self.backlog and self.open_conns + self.opening - 1 == 0:
                self.finish(self.backlog.popleft(), f"connect: {type(e).__name__}")
        finally:
            self.opening -= 1

    def submit(self, scheduled: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.pop().send(scheduled)
            return
        self.backlog.append(scheduled)
        if self.open_conns + self.opening < self.max_conns and self.opening < len(self.backlog):
            self._spawn()

    def ready(self, conn: Conn) -> None:
        """A connection is free (new, or its response came in)."""
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def finish(self, scheduled: float, error: str | None) -> None:
        self.outstanding -= 1
        self.done.append((scheduled, time.perf_counter(), error))


class Conn(asyncio.Protocol):
    def __init__(self, pool: Pool):
        self.pool = pool
        self.tr = None
        self.buf = bytearray()
        self.scheduled: float | None = None

    def connection_made(self, transport) -> None:
        self.tr = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pool.open_conns += 1
        self.pool.peak_open = max(self.pool.peak_open, self.pool.open_conns)
        self.pool.ready(self)

    def send(self, scheduled: float) -> None:
        self.scheduled = scheduled
        self.pool.send_lag.append(time.perf_counter() - scheduled)
        self.tr.write(self.pool.payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        parsed = self._response()
        if parsed is None:
            return
        status, body, close = parsed
        scheduled, self.scheduled = self.scheduled, None
        if scheduled is None:
            self.tr.close()  # a response nobody asked for
            return
        self.pool.finish(scheduled, self.pool.check(status, body))
        if close or self.buf:
            self.tr.close()
        else:
            self.pool.ready(self)

    def _response(self):
        """(status, body, close) once a whole response is in the buffer."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            status = 0
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = "close" in value.lower()
        pos = end + 4
        if not chunked:
            if len(self.buf) < pos + length:
                return None
            body = bytes(self.buf[pos : pos + length])
            del self.buf[: pos + length]
            return status, body, close
        body = bytearray()
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(self.buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                tail = self.buf.find(b"\r\n\r\n", eol)
                if tail < 0:
                    return None
                del self.buf[: tail + 4]
                return status, bytes(body), close
            if len(self.buf) < eol + 2 + size + 2:
                return None
            body += self.buf[eol + 2 : eol + 2 + size]
            pos = eol + 2 + size + 2

    def connection_lost(self, exc) -> None:
        self.pool.open_conns -= 1
        if self in self.pool.idle:
            self.pool.idle.remove(self)
        if self.scheduled is not None:
            self.pool.finish(self.scheduled, "connection lost")
            self.scheduled = None
        pool = self.pool
        if pool.backlog and pool.open_conns + pool.opening < pool.max_conns:
            pool._spawn()


# --------------------------------------------------------------------------- #
def schedule(rate: float, seconds: float, arrivals: str, seed: int) -> list[float]:
    """Offsets (s from the start) of every request."""
    if arrivals == "uniform":
        return [i / rate for i in range(int(seconds * rate))]
    rnd, t, out = random.Random(seed), 0.0, []
    while True:
        t += rnd.expovariate(rate)
        if t >= seconds:
            return out
        out.append(t)


def quantile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1)."""
    if not sorted_xs:
        return math.nan
    return sorted_xs[min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))]


async def drive(a, host: str, port: int, payload: bytes, check) -> dict:
    pool = Pool(host, port, payload, check, a.max_connections)
    await pool.preopen(min(a.preopen, a.max_connections))
    offsets = schedule(a.rate, a.warmup + a.duration, a.arrivals, a.seed)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter() + 0.05
    i, n = 0, len(offsets)
    while i < n:
        now = time.perf_counter()
        # send everything due; the latency clock of each one started at its slot
        while i < n and start + offsets[i] <= now:
            pool.submit(start + offsets[i])
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, start + offsets[i] - time.perf_counter()))
    last_send = time.perf_counter()
    while pool.outstanding and time.perf_counter() - last_send < a.drain:
        await asyncio.sleep(0.01)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    unanswered = pool.outstanding
    lag = sorted(pool.send_lag)
    window_lo, window_hi = start + a.warmup, start + a.warmup + a.duration
    lat, errors = [], Counter()
    for scheduled, finished, err in pool.done:
        if window_lo <= scheduled < window_hi:
            if err is None:
                lat.append(finished - scheduled)
            else:
                errors[err] += 1
    # requests scheduled in the window that never got an answer
    sent_in_window = sum(1 for o in offsets if a.warmup <= o < a.warmup + a.duration)
    missing = sent_in_window - len(lat) - sum(errors.values())
    if missing > 0:
        errors["no answer"] += missing
    lat.sort()
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    wall = time.perf_counter() - start
    return {
        "endpoint": a.endpoint,
        "arrivals": a.arrivals,
        "rate_target": a.rate,
        "offered_rps": round(sent_in_window / a.duration, 1),
        "achieved_rps": round(len(lat) / a.duration, 1),
        "ok": len(lat),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "unanswered_at_end": unanswered,
        "p50_ms": round(quantile(lat, 0.50) * 1000, 3),
        "p90_ms": round(quantile(lat, 0.90) * 1000, 3),
        "p99_ms": round(quantile(lat, 0.99) * 1000, 3),
        "p999_ms": round(quantile(lat, 0.999) * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3) if lat else math.nan,
        "send_lag_p99_ms": round(quantile(lag, 0.99) * 1000, 3),
        "send_lag_max_ms": round(lag[-1] * 1000, 3) if lag else math.nan,
        "connections_opened": pool.connects,
        "connections_peak": pool.peak_open,
        "max_connections": a.max_connections,
        "connect_errors": dict(pool.conn_errors),
        "seconds": a.duration,
        "warmup": a.warmup,
        "loadgen_cpu_pct": round(cpu / wall * 100, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="issuer URL, e.g. http://127.0.0.1:7002 (endpoints come from discovery)")
    ap.add_argument("--endpoint", choices=["cc", "introspect"], default="cc",
                    help="cc = token endpoint, client_credentials; introspect = introspection of one token")
    ap.add_argument("-r", "--rate", type=float, required=True, help="requests per second")
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("-w", "--warmup", type=float, default=1.0, help="seconds at the same rate before the measured window")
    ap.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    ap.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals")
    ap.add_argument("--preopen", type=int, default=32, help="connections opened before the start")
    ap.add_argument("--max-connections", type=int, default=512, help="connections at most; past that requests queue")
    ap.add_argument("--drain", type=float, default=10.0, help="seconds to wait for answers after the last send")
    ap.add_argument("--client-id", default="bench")
    ap.add_argument("--client-secret", default="bench-secret")
    ap.add_argument("--scope", default="api:read")
    ap.add_argument("--resource", default="", help="RFC 8707 resource of the token requests (node-oidc-provider: "
                    "urn:bench:opaque for an introspectable token)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    a = ap.parse_args(argv)
    if a.rate <= 0:
        ap.error("--rate must be > 0")

    parts = urllib.parse.urlsplit(a.base)
    if parts.scheme != "http":
        raise SystemExit("only http:// targets")
    host, port = parts.hostname, parts.port or 80
    host_header = f"{host}:{port}"
    meta = metadata(a.base)
    auth = logins.basic(a.client_id, a.client_secret)
    token_path = urllib.parse.urlsplit(meta["token_endpoint"]).path
    form = {"grant_type": "client_credentials"}
    if a.scope:
        form["scope"] = a.scope
    if a.resource:
        form["resource"] = a.resource
    if a.endpoint == "cc":
        payload, check = post_bytes(host_header, token_path, auth, form), check_token
    else:
        if not meta.get("introspection_endpoint"):
            raise SystemExit("no introspection_endpoint in discovery")
        req = urllib.request.Request(
            f"http://{host_header}{token_path}", data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["access_token"]
        path = urllib.parse.urlsplit(meta["introspection_endpoint"]).path
        payload = post_bytes(host_header, path, auth, {"token": token, "token_type_hint": "access_token"})
        check = check_active

    res = asyncio.run(drive(a, host, port, payload, check))
    res["label"] = a.label
    tag = f"{a.label} " if a.label else ""
    print(f"{tag}{a.endpoint} open loop {a.arrivals} {a.rate:.0f}/s: achieved {res['achieved_rps']:.0f}/s "
          f"(offered {res['offered_rps']:.0f}/s) p50 {res['p50_ms']:.2f} ms p90 {res['p90_ms']:.2f} ms "
          f"p99 {res['p99_ms']:.2f} ms max {res['max_ms']:.2f} ms errors {res['errors']}")
    print(f"  [{a.duration:g}s + {a.warmup:g}s warm-up, connections {res['connections_peak']} at most "
          f"({res['connections_opened']} opened, limit {a.max_connections}), send lag p99 {res['send_lag_p99_ms']:.2f} ms "
          f"max {res['send_lag_max_ms']:.2f} ms, loadgen cpu {res['loadgen_cpu_pct']:.0f}%]")
    if res["error_kinds"]:
        print("  errors: " + ", ".join(f"{k} x{v}" for k, v in Counter(res["error_kinds"]).most_common(5)))
    if a.json:
        print(json.dumps(res))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
