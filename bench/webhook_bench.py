"""Benchmark: webhook ack latency at a steady rate while the worker is busy reviewing.

Starts the real `calora serve` (receiver and in-process worker) on a fresh SQLite file, with the
review replaced by `busy_review` below (CALORA_JOB_RUNNER): each job burns CPU in a thread that releases
the GIL (as a model forward pass does) and then waits, so the worker is never idle. Then it sends
signed deliveries over loopback on an open-loop schedule (request i leaves at t0 + i/rate whether or
not earlier ones were answered): one in four opens a new pull request (a job), the rest cycle through
GitHub's real example payloads. It stops by itself after `--seconds`, prints ack latency p50/p99/max
and the error count, and writes bench/results/webhook-<machine>.json.

    .venv/bin/python bench/webhook_bench.py                     # 200 requests/s for 30 s
    .venv/bin/python bench/webhook_bench.py --rate 50 --seconds 5 --machine smoke

Target: p99 < 50 ms on 2 cores. The sender runs on the same cores as the server, and the worker's
CPU burn takes most of one core, so the figure is an upper bound of the server's own latency.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from reviewers.settings import CaloraSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
WEBHOOKS_DIR = REPO_ROOT.parent / "shared" / "github" / "webhooks"
SECRET = b"bench-secret"


# --- the job runner the server loads (CALORA_JOB_RUNNER=webhook_bench:busy_review) --------------------------

def _burn(seconds: float) -> int:
    """CPU work that releases the GIL between 256 KB hashes, like a model step."""
    block, rounds, until = os.urandom(256 * 1024), 0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        hashlib.sha256(block).digest()
        rounds += 1
    return rounds


class BenchJobSettings(CaloraSettings):
    """The stand-in review's cost (CALORA_BENCH_JOB_CPU, CALORA_BENCH_JOB_WAIT), set by `start_server`."""

    bench_job_cpu: float = 0.2
    bench_job_wait: float = 0.1


async def busy_review(spec: Any) -> int:
    """Stand-in review: CPU for `bench_job_cpu` s, then waiting for `bench_job_wait` s."""
    cost = BenchJobSettings()
    rounds = await asyncio.to_thread(_burn, cost.bench_job_cpu)
    await asyncio.sleep(cost.bench_job_wait)
    return rounds


# --- deliveries ----------------------------------------------------------------------------------------------

def sign(body: bytes) -> str:
    import hmac

    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def build_deliveries(count: int, webhooks_dir: Path = WEBHOOKS_DIR) -> list[tuple[str, bytes]]:
    """(event, body) for each request: every 4th opens a new pull request, others replay real examples."""
    examples = [(path.parent.name, path.read_bytes()) for path in sorted(webhooks_dir.glob("*/*.json"))]
    if not examples:
        raise SystemExit(f"no webhook examples under {webhooks_dir}")
    opened = json.loads((webhooks_dir / "pull_request" / "opened.payload.json").read_text())
    deliveries = []
    for index in range(count):
        if index % 4 == 0:
            payload = copy.deepcopy(opened)
            payload["number"] = payload["pull_request"]["number"] = 1000 + index
            payload["pull_request"]["head"]["sha"] = hashlib.sha1(str(index).encode()).hexdigest()
            deliveries.append(("pull_request", json.dumps(payload).encode()))
        else:
            deliveries.append(examples[index % len(examples)])
    return deliveries


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a sender light enough that, on the
    same two cores as the server, it does not become the bottleneck it measures (httpx's async pool
    costs several ms per request)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        assert self.reader is not None
        status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length)
        if any(line.lower() == "connection: close" for line in lines[1:]):
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def send_all(url: str, deliveries: list[tuple[str, bytes]], rate: float, connections: int = 64) -> dict[str, Any]:
    """Send on an open-loop schedule through a pool of keep-alive connections.

    Latency is measured from the moment a request was due, so time spent waiting for a free connection
    (the server being slow) counts, and from the moment it was written, the server's own share.
    """
    host, port = url.removeprefix("http://").split(":")
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(host, int(port)))
    from_due: list[float] = []
    from_write: list[float] = []
    statuses: Counter[str] = Counter()
    errors: list[str] = []

    async def send(event: str, body: bytes, due: float) -> None:
        connection = await pool.get()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
                   "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(body)}
        written = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(connection.request("POST", "/webhooks/github", headers, body), 10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            statuses["exception"] += 1
            await connection.close()
            return
        finally:
            pool.put_nowait(connection)
        done = time.perf_counter()
        from_due.append(done - due)
        from_write.append(done - written)
        statuses[str(status)] += 1
        if status >= 300:
            errors.append(f"{status}: {payload[:200]!r}")

    # Open the connections before the clock starts.
    warm = [await pool.get() for _ in range(connections)]
    for connection in warm:
        await connection.request("GET", "/healthz", {})
        pool.put_nowait(connection)
    tasks = []
    t0 = time.perf_counter() + 0.1
    for index, (event, body) in enumerate(deliveries):
        due = t0 + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(event, body, due)))
    sent_in = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    metrics_connection = Connection(host, int(port))
    _, metrics = await metrics_connection.request("GET", "/metrics", {})
    await metrics_connection.close()
    while not pool.empty():
        await pool.get_nowait().close()
    from_due.sort()
    from_write.sort()

    def summary(values: list[float]) -> dict[str, float | None]:
        return {
            "p50": round(1000 * percentile(values, 0.50), 2),
            "p90": round(1000 * percentile(values, 0.90), 2),
            "p99": round(1000 * percentile(values, 0.99), 2),
            "max": round(1000 * values[-1], 2) if values else None,
            "mean": round(1000 * statistics.fmean(values), 2) if values else None,
        }

    return {
        "requests": len(deliveries),
        "connections": connections,
        "sent_in_seconds": round(sent_in, 3),
        "achieved_rate": round(len(deliveries) / sent_in, 1) if sent_in > 0 else None,
        "statuses": dict(statuses),
        "errors": len(errors),
        "first_errors": errors[:5],
        "ack_latency_ms": summary(from_due),
        "ack_latency_from_write_ms": summary(from_write),
        "server_metrics": _server_figures(metrics.decode()),
    }


def _server_figures(metrics_text: str) -> dict[str, Any]:
    """The server's own view: ack histogram buckets (cumulative counts) and jobs per status."""
    figures: dict[str, Any] = {"ack_seconds_buckets": {}, "jobs": {}}
    for line in metrics_text.splitlines():
        if line.startswith("calora_webhook_ack_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            figures["ack_seconds_buckets"][bound] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("calora_jobs{"):
            status = line.split('status="', 1)[1].split('"', 1)[0]
            figures["jobs"][status] = float(line.rsplit(" ", 1)[1])
    return figures


# --- the server process ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(workdir: Path, port: int, job_cpu: float, job_wait: float) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CALORA_")}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), str(REPO_ROOT / "bench"),
                                                    os.environ.get("PYTHONPATH", "")])),
        "CALORA_WEBHOOK_SECRET": SECRET.decode(),
        "CALORA_DATABASE_URL": f"sqlite:///{workdir / 'queue.sqlite'}",
        "CALORA_JOB_RUNNER": "webhook_bench:busy_review",
        "CALORA_BENCH_JOB_CPU": str(job_cpu),
        "CALORA_BENCH_JOB_WAIT": str(job_wait),
    })
    log = (workdir / "serve.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60, log: Path | None = None) -> None:
    """Until `url`/healthz answers 200 (the benches' servers: `calora serve`, `calora reviewers serve`);
    exits with the end of `log` if the process dies first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = f":\n{log.read_text()[-3000:]}" if log is not None else ""
            raise SystemExit(f"{' '.join(map(str, process.args[2:]))} exited before it was healthy{tail}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not healthy after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send (default 30)")
    parser.add_argument("--job-cpu", type=float, default=0.2, help="CPU seconds per stand-in review")
    parser.add_argument("--job-wait", type=float, default=0.1, help="waiting seconds per stand-in review")
    parser.add_argument("--machine", default=socket.gethostname(), help="name in the results file")
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--webhooks", type=Path, default=WEBHOOKS_DIR, help="folder of example payloads")
    args = parser.parse_args(argv)

    deliveries = build_deliveries(int(args.rate * args.seconds), args.webhooks)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        workdir = Path(tmp)
        server = start_server(workdir, port, args.job_cpu, args.job_wait)
        try:
            wait_healthy(url, server)
            load_before = os.getloadavg()
            cpu_before = process_cpu_seconds(server.pid)
            print(f"sending {len(deliveries)} deliveries at {args.rate:.0f}/s for {args.seconds:.0f} s to {url}",
                  file=sys.stderr)
            result = asyncio.run(send_all(url, deliveries, args.rate))
            load_after = os.getloadavg()
            cpu_after = process_cpu_seconds(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    latency = result["ack_latency_ms"]
    report = {
        "benchmark": "webhook_ack_latency",
        "machine": args.machine,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rate_per_second": args.rate,
        "seconds": args.seconds,
        "job_cpu_seconds": args.job_cpu,
        "job_wait_seconds": args.job_wait,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "target": "p99 < 50 ms on 2 cores",
        "meets_target": bool(latency["p99"] < 50 and result["errors"] == 0),
        "note": args.note,
        # The server process's CPU (receiver, worker loop and the stand-in reviews' CPU burn together).
        "server_process_cpu_seconds": (round(cpu_after - cpu_before, 2)
                                       if cpu_before is not None and cpu_after is not None else None),
        **result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"webhook-{args.machine}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"ack latency p50 {latency['p50']} ms, p99 {latency['p99']} ms, max {latency['max']} ms; "
          f"errors {result['errors']}; achieved {result['achieved_rate']}/s; "
          f"jobs {result['server_metrics']['jobs']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
