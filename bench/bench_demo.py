"""The demo's server under load: decoding latency through HTTP against the same decoding in process.

    nice -n 10 python bench/bench_demo.py                      # en_hws, 8 clients, 30 s each way
    nice -n 10 python bench/bench_demo.py --duration 10 --clients 4

Two runs of ``--duration`` seconds, each with ``--clients`` threads that decode swipes one after
another, round robin over the first ``--swipes`` of the real English swipes:

- in process: each thread calls :meth:`swipe.demo.Engine.decode` of one engine;
- HTTP: ``python -m swipe.demo`` runs in its own process on a free loopback port; each thread
  posts ``/api/decode`` on a kept-alive connection. The overhead of a request is its round trip
  less the decoding time the server reports for it (``decode_ms``: parsing, JSON, sockets and
  threads, no decoding).

Requests of the clients take turns on the model (as in the server), so a request's latency is
about ``--clients`` decodings. Each run follows a warm-up of a fifth of ``--duration`` (at most
5 s). The table gives p50 / p99 latency, requests per second and errors; then the server's
resident memory after its warm-up and six times during its run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REAL_EN_SWIPES, ROOT  # noqa: E402


def request_bodies(path: Path, count: int) -> list[bytes]:
    """The first ``count`` swipes of ``path`` as ``/api/decode`` bodies."""
    from swipe.formats import read_curves

    bodies = []
    for curve in read_curves(path):
        body = {"layout": curve.grid_name, "x": curve.x.tolist(), "y": curve.y.tolist(),
                "t": curve.t.tolist()}
        bodies.append(json.dumps(body).encode())
        if len(bodies) == count:
            break
    return bodies


def run_clients(clients: int, duration: float, call) -> tuple[list[float], list[float], int]:
    """``clients`` threads calling ``call(client, i)`` for ``duration`` seconds: each call's
    latency and reported decoding time (seconds), and the number of errors."""
    latencies: list[float] = []
    decodes: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.perf_counter() + duration

    def client(index: int) -> None:
        i = index
        while time.perf_counter() < end:
            start = time.perf_counter()
            try:
                decode = call(index, i)
            except Exception as err:  # counted, and shown once
                with lock:
                    if not errors[0]:
                        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
                    errors[0] += 1
                continue
            latency = time.perf_counter() - start
            with lock:
                latencies.append(latency)
                decodes.append(decode)
            i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, decodes, errors[0]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def start_server(model: str) -> tuple[subprocess.Popen, str, int]:
    """``python -m swipe.demo`` in its own process on a free port: the process, its host and port."""
    server = subprocess.Popen([sys.executable, "-m", "swipe.demo", "--model", model, "--port", "0",
                               "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        if found:
            return server, found.group(1), int(found.group(2))
    raise RuntimeError("the demo server did not start")


def ms(values: list[float], q: float) -> str:
    """Percentile ``q`` of ``values`` (seconds) in milliseconds, or ``-`` where there are none."""
    return f"{1000 * float(np.percentile(values, q)):.1f}" if values else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="en_hws", help="shipped model name or model file (default en_hws)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run (default 30)")
    parser.add_argument("--swipes", type=int, default=64, help="distinct swipes sent (default 64)")
    parser.add_argument("--data", default=str(REAL_EN_SWIPES), help="swipes to send (jsonl)")
    args = parser.parse_args(argv)
    bodies = request_bodies(Path(args.data), args.swipes)

    from swipe.demo import Engine

    engine = Engine(args.model)
    swipes = [engine.swipe(json.loads(body)) for body in bodies]

    def decode(client: int, i: int) -> float:
        return engine.decode(swipes[i % len(swipes)]).seconds

    run_clients(args.clients, min(5.0, args.duration / 5), decode)  # warm-up: builds the template matcher
    local = run_clients(args.clients, args.duration, decode)

    server, host, port = start_server(args.model)
    try:
        connections = [http.client.HTTPConnection(host, port, timeout=120) for _ in range(args.clients)]

        def post(client: int, i: int) -> float:
            conn = connections[client]
            conn.request("POST", "/api/decode", body=bodies[i % len(bodies)],
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {answer.get('error')}")
            return answer["decode_ms"] / 1000

        run_clients(args.clients, min(5.0, args.duration / 5), post)  # warm-up: threads, allocator
        rss = [rss_mb(server.pid)]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(args.duration / 6):
                rss.append(rss_mb(server.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        remote = run_clients(args.clients, args.duration, post)
        done.set()
        sampler.join()
        rss.append(rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait()

    overhead = [rt - dec for rt, dec in zip(remote[0], remote[1], strict=True)]
    print(f"model {args.model}, {args.clients} clients, {args.duration:g} s per run, "
          f"{len(bodies)} real English swipes round robin")
    print(f"{'':<34}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}")
    rows = [("in process: Engine.decode", local[0], local[2]),
            ("HTTP: round trip", remote[0], remote[2]),
            ("HTTP: decoding (server's decode_ms)", remote[1], remote[2])]
    for name, values, errors in rows:
        print(f"{name:<34}{len(values):>9}{errors:>8}{ms(values, 50):>9}{ms(values, 99):>9}"
              f"{len(values) / args.duration:>8.1f}")
    print(f"{'HTTP overhead (round trip - decoding)':<34}{'':>17}{ms(overhead, 50):>9}{ms(overhead, 99):>9}")
    print(f"server RSS (MB) after the warm-up, then every {args.duration / 6:g} s: "
          f"{' '.join(f'{mb:.0f}' for mb in rss)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
