"""Keep-alive load generator, run as its own process: ``python -m bench.loadgen``.

A separate process so that the client's GIL is not the server's. Each thread holds one
keep-alive connection with Nagle off and sends a pre-built request; responses are read
with a minimal HTTP/1.1 parser (status line, ``Content-Length``, body) because
``http.client`` would spend more CPU per request than the 2-core box can spare.
Only requests that complete inside the measured window count; the warm-up before it
lets both ends settle (thread start, JIT in DynamoDB Local, caches).

Input: one JSON object on stdin (host, port, path, token, threads, seconds, warmup).
Output: one JSON object on stdout (ok, errors, completed, statuses, seconds, p50_ms, p99_ms).
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO


@dataclass
class Tally:
    """One thread's results inside the window."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    #: Every response read, warm-up included: what the servers' CPU time is divided by.
    completed: int = 0


def _read_response(reader: BinaryIO) -> int:
    """Read one response off a keep-alive connection; return its status."""
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    length = 0
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return int(status_line.split(None, 2)[1])


def _connect(host: str, port: int) -> tuple[socket.socket, BinaryIO]:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, sock.makefile("rb")


def _worker(
    host: str, port: int, request: bytes, window: tuple[float, float], tally: Tally
) -> None:
    opens, closes = window
    sock, reader = _connect(host, port)
    try:
        while (started := time.perf_counter()) < closes:
            try:
                sock.sendall(request)
                status = _read_response(reader)
            except (OSError, ValueError, IndexError):
                tally.errors += 1
                sock.close()
                sock, reader = _connect(host, port)
                continue
            finished = time.perf_counter()
            tally.completed += 1
            if opens <= finished < closes:
                tally.latencies.append(finished - started)
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
    finally:
        sock.close()


def run(config: dict[str, Any]) -> dict[str, Any]:
    host, port = str(config["host"]), int(config["port"])
    request = (
        f"GET {config['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {config['token']}\r\nUser-Agent: gatehouse-bench\r\n\r\n"
    ).encode("ascii")
    seconds, threads = float(config["seconds"]), int(config["threads"])
    opens = time.perf_counter() + float(config["warmup"])
    window = (opens, opens + seconds)
    tallies = [Tally() for _ in range(threads)]
    workers = [
        threading.Thread(target=_worker, args=(host, port, request, window, t), daemon=True)
        for t in tallies
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies = sorted(x for t in tallies for x in t.latencies)
    statuses: dict[int, int] = {}
    for tally in tallies:
        for status, count in tally.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "ok": statuses.get(200, 0),
        "errors": sum(t.errors for t in tallies),
        "completed": sum(t.completed for t in tallies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": seconds,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
    sys.exit(0)
