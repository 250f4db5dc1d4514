"""Load/soak test of ``lpmatte serve`` on 127.0.0.1: throughput, latency, errors, memory.

Starts its own server (``lpmatte serve`` in a subprocess, loopback only), then N client
threads send M requests: good photos (the bundled example, as PNG and JPEG, in every
output format) mixed with bad uploads (text, truncated, empty, too large, too many
pixels, bad parameters). Reports a markdown table and checks the promises: no 5xx but 503
(overload), every bad upload a 4xx, RSS growth under --max-rss-growth-mb. Exit 1 if one
fails. Bounded: stops issuing requests after --time-limit seconds.

    python benchmarks/bench_serve.py --clients 8 --requests 500 --bad-fraction 0.25
"""

from __future__ import annotations

import argparse
import io
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.png"
UPLOAD_MB = 4  # the server's --max-upload-mb here, so "too large" stays cheap to send
GOOD_FORMATS = ({"format": "alpha"}, {"format": "rgba"}, {"format": "trimap"},
                {"format": "composite", "background": "white", "output": "jpeg"})


@dataclass(frozen=True)
class Case:
    kind: str  # "good" or the bad-upload class
    body: bytes
    params: dict


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no answer (connection error or client timeout)
    seconds: float
    refused: int = 0  # 503s before this answer (with --retries)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def good_cases(max_side: int | None) -> list[Case]:
    photo = Image.open(EXAMPLE).convert("RGB")
    if max_side:
        photo.thumbnail((max_side, max_side))
    bodies = [encoded(photo, "PNG"), encoded(photo, "JPEG", quality=90)]
    return [Case("good", body, params) for body in bodies for params in GOOD_FORMATS]


def bad_cases() -> list[Case]:
    jpeg = encoded(Image.open(EXAMPLE).convert("RGB"), "JPEG", quality=90)
    bomb = encoded(Image.new("L", (8000, 8000)), "PNG")  # ~60 KB that would decode to 64 MP
    return [
        Case("not an image", b"plain text, not a picture " * 50, {}),
        Case("truncated", jpeg[: len(jpeg) // 3], {}),
        Case("empty", b"", {}),
        Case("too large", os.urandom(UPLOAD_MB * 2**20 + 1024), {}),
        Case("too many pixels", bomb, {}),
        Case("unknown format", jpeg, {"format": "sepia"}),
        Case("bad colour", jpeg, {"format": "composite", "background": "no-such-colour"}),
    ]


def plan(requests: int, bad_fraction: float, max_side: int | None, seed: int) -> list[Case]:
    good, bad = good_cases(max_side), bad_cases()
    n_bad = round(requests * bad_fraction)
    cases = [bad[i % len(bad)] for i in range(n_bad)]
    cases += [good[i % len(good)] for i in range(requests - n_bad)]
    random.Random(seed).shuffle(cases)
    return cases


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lpmatte", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--model", args.model, "--device", args.device,
               "--workers", str(args.workers), "--max-queue", str(args.max_queue),
               "--max-upload-mb", str(UPLOAD_MB), "--max-pixels", str(args.max_pixels)]
    if not args.server_log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(args.server_log, "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(command, stdout=log, stderr=log)


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench_serve: the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"bench_serve: the server was not ready within {timeout:g} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """The server's peak resident memory, sampled every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.period):
            self.samples.append(rss_mb(self.pid))

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    def quarters(self) -> list[float]:
        """RSS at the end of each quarter of the run: flat, or still climbing?"""
        n = len(self.samples)
        return [self.samples[min(n - 1, (n * q) // 4)] for q in (1, 2, 3, 4)] if n else []


def send(client: httpx.Client, url: str, case: Case, deadline: float,
         retries: int) -> Outcome | None:
    """One request; a 503 is retried after its Retry-After (at most ``retries`` times)."""
    if time.monotonic() > deadline:
        return None  # over the time limit: not sent
    started, refused = time.perf_counter(), 0
    while True:
        try:
            response = client.post(f"{url}/v1/matte", params=case.params, content=case.body,
                                   headers={"content-type": "application/octet-stream"})
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        if status != 503 or refused >= retries or time.monotonic() > deadline:
            return Outcome(case.kind, status, time.perf_counter() - started, refused)
        refused += 1
        time.sleep(min(float(response.headers.get("retry-after", 1)), 5.0))


def run_load(url: str, cases: list[Case], clients: int, time_limit: float,
             retries: int) -> list[Outcome]:
    deadline = time.monotonic() + time_limit
    local = threading.local()

    def one(case: Case):
        if not hasattr(local, "client"):  # one keep-alive connection per client thread
            local.client = httpx.Client(timeout=120)
        return send(local.client, url, case, deadline, retries)

    with ThreadPoolExecutor(clients) as pool:
        return [outcome for outcome in pool.map(one, cases) if outcome is not None]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def cpu_model() -> str:
    import torch

    from lpmatte.evaluation.profiler import hardware_name

    return hardware_name(torch.device("cpu"))


def report(outcomes, elapsed, rss, args) -> tuple[str, list[str]]:
    good = [o for o in outcomes if o.kind == "good"]
    bad = [o for o in outcomes if o.kind != "good"]
    ok = [o.seconds for o in good if o.status == 200]
    statuses = Counter(o.status for o in outcomes)
    rows = [
        ("requests sent / planned", f"{len(outcomes)} / {args.requests}"),
        ("clients, server workers, queue", f"{args.clients}, {args.workers}, {args.max_queue}"),
        ("wall time", f"{elapsed:.1f} s"),
        ("throughput (all answers)", f"{len(outcomes) / elapsed:.2f} req/s"),
        ("throughput (good photos matted)", f"{len(ok) / elapsed:.2f} img/s"),
        ("good photo latency p50 / p99", f"{percentile(ok, 50):.0f} / {percentile(ok, 99):.0f} ms"),
        ("bad upload latency p50 / p99",
         f"{percentile([o.seconds for o in bad], 50):.0f} / "
         f"{percentile([o.seconds for o in bad], 99):.0f} ms"),
        ("503s retried after Retry-After", f"{sum(o.refused for o in outcomes)}"),
        ("final answers by status",
         ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(statuses.items()))),
        ("bad uploads by class -> status", "; ".join(
            f"{kind}: {dict(Counter(o.status for o in bad if o.kind == kind))}"
            for kind in sorted({o.kind for o in bad}))),
        ("server RSS start / after warm-up / end / peak",
         f"{rss['start']:.0f} / {rss['warm']:.0f} / {rss['end']:.0f} / {rss['peak']:.0f} MB"),
        ("server RSS at 1/4, 2/4, 3/4, 4/4 of the run",
         " / ".join(f"{value:.0f}" for value in rss["quarters"]) + " MB"),
        ("RSS growth (end - after warm-up)", f"{rss['end'] - rss['warm']:+.1f} MB"),
        ("CPU", f"{cpu_model()} ({os.cpu_count()} cores)"),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    problems = []
    fives = {s: n for s, n in statuses.items() if (s >= 500 and s != 503) or s == 0}
    if fives:
        problems.append(f"5xx other than 503 (or no answer): {fives}")
    not_4xx = [o.status for o in bad if not 400 <= o.status < 500 and o.status != 503]
    if not_4xx:
        problems.append(f"{len(not_4xx)} bad uploads not answered with a 4xx: {Counter(not_4xx)}")
    if rss["end"] - rss["warm"] > args.max_rss_growth_mb:
        problems.append(f"RSS grew by {rss['end'] - rss['warm']:.0f} MB")
    return table, problems


def warm_up(url: str, cases: list[Case], clients: int) -> None:
    """Each good kind, ``clients`` at a time, twice: every worker thread has made its
    first-use allocations (buffers, malloc arenas) before growth is measured."""
    kinds = {(c.body[:64], tuple(c.params.items())): c for c in cases if c.kind == "good"}
    batch = list(kinds.values()) * max(2, clients // len(kinds) + 1)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda case: httpx.post(f"{url}/v1/matte", params=case.params,
                                              content=case.body, timeout=120), batch))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--bad-fraction", type=float, default=0.25)
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--max-pixels", type=int, default=25_000_000)
    parser.add_argument("--max-side", type=int, default=None,
                        help="shrink the good photos to this long side first (faster soak)")
    parser.add_argument("--time-limit", type=float, default=900,
                        help="stop sending after this many seconds")
    parser.add_argument("--max-rss-growth-mb", type=float, default=100)
    parser.add_argument("--retries", type=int, default=0,
                        help="resend a request answered 503 after its Retry-After, this often")
    parser.add_argument("--server-log", default=None, help="keep the server's log here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cases = plan(args.requests, args.bad_fraction, args.max_side, args.seed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args, port)
    try:
        wait_ready(url, server, timeout=300)
        rss = {"start": rss_mb(server.pid)}
        warm_up(url, cases, args.clients)
        rss["warm"] = rss_mb(server.pid)
        sampler = RssSampler(server.pid)
        sampler.start()
        started = time.perf_counter()
        outcomes = run_load(url, cases, args.clients, args.time_limit, args.retries)
        elapsed = time.perf_counter() - started
        sampler.stopped.set()
        rss["end"] = rss_mb(server.pid)
        rss["peak"] = max(sampler.peak, rss["end"])
        rss["quarters"] = sampler.quarters()
    finally:
        server.terminate()
        code = server.wait(120)
    table, problems = report(outcomes, elapsed, rss, args)
    print(table)
    print(f"\nserver exit code after SIGTERM: {code}")
    for problem in problems + ([f"server exited {code}"] if code else []):
        print(f"bench_serve: FAIL: {problem}", file=sys.stderr)
    return 1 if problems or code else 0


if __name__ == "__main__":
    sys.exit(main())
