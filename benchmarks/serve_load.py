"""Load test of `gan-translate serve` on loopback: latency, throughput and memory, batching on and off.

    python benchmarks/serve_load.py                                  # 500 requests, 16 clients, batching 8 vs 1
    python benchmarks/serve_load.py --requests 64 --clients 8 --modes batched   # a quick look
    python benchmarks/serve_load.py --json benchmarks/results-cpu-serve.json

For each mode a fresh server process runs `gan-translate serve` on a free port with a small CycleGAN generator
(ResNet, ``--ngf`` filters, ``--blocks`` residual blocks, random weights: the cost of a trained one) on the CPU.
``--clients`` concurrent clients (asyncio + httpx, one connection each) then send ``--requests`` translate requests
in all, each a ``--size`` px PNG drawn from a few pictures, as fast as answers come back. Every answer is checked:
status 200, the input's size, and pixels within one level of the same generator run in this process (so nothing is
lost, swapped between requests or run on the wrong image). Reported per mode: errors, p50 / p90 / p99 latency,
throughput, the server's mean batch size, and its resident memory after a warm-up, at its peak and at the end
(sampled every 0.1 s from /proc): a leak shows as growth from the warm-up to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODES = {"batched": ("8", "10"), "unbatched": ("1", "0")}  # mode -> (--max-batch, --max-wait-ms)


def _model(path: Path, ngf: int, blocks: int) -> Path:
    import torch

    from gan_translate.models.cyclegan import CycleGAN

    torch.manual_seed(0)
    model = CycleGAN(generator="resnet", generator_args={"n_blocks": blocks}, ngf=ngf, ndf=8,
                     discriminator_args={"n_layers": 1})
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "gan_translate": {"model": "cyclegan", "version": "benchmark"}}, path)
    return path


def _pictures(size: int, count: int = 4) -> list[Any]:
    import numpy as np
    import torch

    pictures = []
    for seed in range(count):
        low = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, 6, 6)).astype(np.float32))[None]
        image = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic")[0].clamp(0, 255).round().byte()
        pictures.append(image.permute(1, 2, 0).numpy())
    return pictures


def _png(image: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class MemorySampler(threading.Thread):
    """The server's resident memory every ``period_s`` until stopped."""

    def __init__(self, pid: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s, self.samples = pid, period_s, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(_rss_mb(self.pid))
            time.sleep(self.period_s)

    def stop(self) -> list[float]:
        self._stop_event.set()
        self.join()
        return self.samples


def _start_server(checkpoint: Path, port: int, max_batch: str, max_wait_ms: str, threads: int) -> subprocess.Popen[str]:
    import httpx

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gan_translate", "serve", "--checkpoint", f"bench={checkpoint}", "--port", str(port),
         "--device", "cpu", "--max-batch", max_batch, "--max-wait-ms", max_wait_ms, "--max-queue", "256",
         "--gatys", "off", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.communicate()[0][-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not become ready in 120 s")


async def _load(base: str, uploads: list[bytes], expected: list[Any], requests: int, clients: int) -> dict[str, Any]:
    import httpx
    import numpy as np
    from PIL import Image

    latencies: list[float] = []
    errors: list[str] = []
    next_request = iter(range(requests))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as session:
            for index in next_request:
                which = index % len(uploads)
                started = time.perf_counter()
                try:
                    response = await session.post("/v1/translate", files={"image": ("p.png", uploads[which])})
                except httpx.HTTPError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                got = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
                if got.shape != expected[which].shape or np.abs(got - expected[which]).max() > 1:
                    errors.append(f"request {index}: a wrong result")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else 0.0

    return {"requests": requests, "answered": len(latencies), "errors": len(errors), "error_examples": errors[:3],
            "p50_ms": percentile(0.50), "p90_ms": percentile(0.90), "p99_ms": percentile(0.99),
            "throughput_rps": round(len(latencies) / elapsed, 2), "elapsed_s": round(elapsed, 2)}


def run_mode(mode: str, checkpoint: Path, args: argparse.Namespace, uploads: list[bytes], expected: list[Any]) -> dict[str, Any]:
    import httpx

    max_batch, max_wait_ms = MODES[mode]
    port = _free_port()
    server = _start_server(checkpoint, port, max_batch, max_wait_ms, args.server_threads)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_load(base, uploads, expected, min(args.clients * 2, args.requests), args.clients))  # warm-up
        warm_mb = _rss_mb(server.pid)
        sampler = MemorySampler(server.pid)
        sampler.start()
        result = asyncio.run(_load(base, uploads, expected, args.requests, args.clients))
        samples = sampler.stop()
        stats = httpx.get(f"{base}/v1/stats").json()
    finally:
        server.terminate()
        server.wait(60)
    end_mb = _rss_mb(server.pid) if server.poll() is None else (samples[-1] if samples else 0.0)
    return {"mode": mode, "max_batch": int(max_batch), "max_wait_ms": float(max_wait_ms), **result,
            "mean_batch_size": stats["mean_batch_size"], "rss_warm_mb": round(warm_mb, 1),
            "rss_peak_mb": round(max(samples, default=0.0), 1), "rss_end_mb": round(end_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="image side (px)")
    parser.add_argument("--ngf", type=int, default=16, help="generator filters")
    parser.add_argument("--blocks", type=int, default=3, help="residual blocks")
    parser.add_argument("--modes", default="batched,unbatched", help=f"comma-separated of {', '.join(MODES)}")
    parser.add_argument("--server-threads", type=int, default=1, help="OMP_NUM_THREADS of the server (the clients use the other core)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    import torch

    from gan_translate.inference.translator import load_translator

    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; valid: {', '.join(MODES)}")
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = _model(Path(folder) / "bench.ckpt", args.ngf, args.blocks)
        pictures = _pictures(args.size)
        torch.set_num_threads(1)
        translator = load_translator(checkpoint, device="cpu", precision="auto")  # what serve runs by default
        expected = [translator(picture) for picture in pictures]
        uploads = [_png(picture) for picture in pictures]
        rows = [run_mode(mode, checkpoint, args, uploads, expected) for mode in modes]
    for row in rows:
        print(f"{row['mode']:>9} (max-batch {row['max_batch']}): {row['answered']}/{row['requests']} answered, "
              f"{row['errors']} errors; p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['throughput_rps']} req/s; "
              f"mean batch {row['mean_batch_size']}; server RSS {row['rss_warm_mb']} MB warm, {row['rss_peak_mb']} peak, "
              f"{row['rss_end_mb']} end")
    if args.json:
        report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                              "torch": torch.__version__},
                  "settings": {k: v for k, v in vars(args).items() if k != "json"}, "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(row["errors"] == 0 and row["answered"] == row["requests"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
