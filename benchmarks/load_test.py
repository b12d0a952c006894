"""Load test of the REST server: C concurrent clients x N requests each on localhost.

Starts ``unmasked serve`` in a subprocess (as a user would), warms it up, then runs rounds of
concurrent ``POST /api/v1/inpaint`` requests (multipart, a textured photo and a different
rectangle mask per request) and reports throughput, latency percentiles, status codes and the
server's resident memory (VmRSS from /proc) after warm-up, at its peak and after each round:
memory that stays flat from round to round is what a bounded worker pool should give.

    python benchmarks/load_test.py                    # 16 clients x 20 requests, 2 rounds, telea, 256 px
    python benchmarks/load_test.py --model deepfill_v2_faces128 --size 128

Exit code 1 if any request failed or answered 5xx.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from PIL import Image


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: str, workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "unmasked.cli", "serve", "--port", str(port), "--workers", str(workers),
           "--queue", str(queue), "--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def run_load(clients: int = 16, requests: int = 20, rounds: int = 2, model: str = "telea", size: int = 256,
             workers: int = 2, queue: int = 32, seed: int = 0) -> dict:
    """Run the test; returns the figures (latencies in ms, RSS in MB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    photo = np.clip(np.stack([x, y, (x + y) // 2], -1) * (255 / size) + rng.normal(0, 12, (size, size, 3)), 0, 255)
    image = _png(photo.astype(np.uint8))
    masks = []
    for _ in range(64):
        m = np.zeros((size, size), np.uint8)
        h, w = rng.integers(size // 10, size // 3, 2)
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        m[top : top + h, left : left + w] = 255
        masks.append(_png(m))

    proc, base = start_server(model, workers, queue)
    url = f"{base}/api/v1/inpaint"
    try:
        with httpx.Client(timeout=120) as c:  # warm-up: loads the model, fills caches
            for k in range(4):
                c.post(url, files={"image": image, "mask": masks[k]}, data={"model": model}).raise_for_status()
        rss_warm = _rss_mb(proc.pid)
        peak = [rss_warm]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_mb(proc.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def client(k: int) -> list[tuple[int, float]]:
            out = []
            with httpx.Client(timeout=300) as c:
                for j in range(requests):
                    t0 = time.perf_counter()
                    try:
                        r = c.post(url, files={"image": image, "mask": masks[(k * requests + j) % len(masks)]},
                                   data={"model": model})
                        status = r.status_code
                    except httpx.HTTPError:
                        status = -1  # connection error, timeout
                    out.append((status, 1000 * (time.perf_counter() - t0)))
            return out

        results = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                samples = [s for per in pool.map(client, range(clients)) for s in per]
            wall = time.perf_counter() - t0
            lat = sorted(ms for _, ms in samples)
            codes: dict[str, int] = {}
            for status, _ in samples:
                codes[str(status)] = codes.get(str(status), 0) + 1
            results.append({
                "requests": len(samples), "seconds": round(wall, 2), "requests_per_s": round(len(samples) / wall, 2),
                "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
                "max_ms": round(lat[-1], 1), "status": codes,
                "errors": sum(n for s, n in codes.items() if s == "-1"),
                "5xx": sum(n for s, n in codes.items() if s.startswith("5")),
                "rss_after_mb": round(_rss_mb(proc.pid), 1),
            })
        stop.set()
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(30)
    return {"clients": clients, "requests_per_client": requests, "model": model, "size": size, "workers": workers,
            "queue": queue, "rss_after_warmup_mb": round(rss_warm, 1), "rss_peak_mb": round(peak[0], 1), "rounds": results}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=20, help="Requests per client per round.")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="telea")
    p.add_argument("--size", type=int, default=256, help="Photo side in pixels.")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=32)
    p.add_argument("--json", help="Also write the figures to this JSON file.")
    a = p.parse_args()
    out = run_load(a.clients, a.requests, a.rounds, a.model, a.size, a.workers, a.queue)
    print(f"{a.clients} clients x {a.requests} requests x {a.rounds} rounds, {a.model}, {a.size}x{a.size} PNG, "
          f"{a.workers} workers, queue {a.queue}")
    print("| round | requests | req/s | p50 ms | p95 ms | max ms | 5xx | errors | RSS after (MB) |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for i, r in enumerate(out["rounds"], 1):
        print(f"| {i} | {r['requests']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
              f"{r['5xx']} | {r['errors']} | {r['rss_after_mb']} |")
    print(f"server RSS after warm-up {out['rss_after_warmup_mb']} MB, peak {out['rss_peak_mb']} MB; "
          f"status codes: {[r['status'] for r in out['rounds']]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    bad = sum(r["5xx"] + r["errors"] + sum(n for s, n in r["status"].items() if s != "200") for r in out["rounds"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
