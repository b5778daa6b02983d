"""Decode throughput: serial against a pool of 8, through real boto3 to a local STS with latency.

Starts the test suite's local STS endpoint (real HTTP, Query protocol) with 50 ms latency per
call, and decodes 200 distinct blobs through the pipeline's ordered decoding stage three times:

1. ``max_concurrency: 1`` (the serial reference), with its own empty cache;
2. ``max_concurrency: 8``, with another empty cache, recording the most calls in flight;
3. again with the cache of run 2: it must make no STS call at all.

Prints the times, the speed-up of run 2 over run 1 (target >= 4x), the peak in-flight count
(must not exceed 8), and the calls of run 3 (must be 0). The rate limit is raised to 1,000
requests per second so that it measures concurrency, not the default limit of 10/s.

    python benchmarks/decode_throughput.py [--blobs 200] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sts_server import StsServer
from watcher.config import DecodeSettings
from watcher.decode import DecodeCache, StsDecoder
from watcher.log import configure_logging
from watcher.model import Origin
from watcher.pipeline import DenialBuilder, OrderedDecodingEmitter

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TARGET_SPEEDUP = 4.0
CONCURRENCY = 8
DECODED = {
    "allowed": False,
    "explicitDeny": False,
    "matchedStatements": {"items": []},
    "failures": {"items": []},
    "context": {
        "principal": {"id": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/bench"},
        "action": "ec2:RunInstances",
        "resource": "arn:aws:ec2:us-east-1:111122223333:instance/*",
        "conditions": {"items": []},
    },
}


def run(
    sts: StsServer, blobs: list[str], concurrency: int, cache: DecodeCache
) -> tuple[float, int, int]:
    """Decode every blob once; return (seconds, STS calls made, events emitted)."""
    settings = DecodeSettings(
        endpoint_url=sts.url, max_concurrency=concurrency, max_requests_per_second=1000.0
    )
    decoder = StsDecoder(settings, configure_logging(io.StringIO()), cache)
    events: list[dict[str, object]] = []
    emitter = OrderedDecodingEmitter(
        DenialBuilder(decoder=decoder), events.append, max_concurrency=concurrency
    )
    calls_before = len(sts.decode_calls())
    started = time.perf_counter()
    try:
        now = datetime.now(UTC)
        for index, blob in enumerate(blobs):
            line = f"Encoded authorization failure message: {blob}"
            emitter.add(line, Origin("file", "bench.log", source_offset=index), now)
    finally:
        emitter.close()
    elapsed = time.perf_counter() - started
    statuses = {str(event["decode_status"]) for event in events}
    if statuses - {"decoded", "cached"}:
        sys.exit(f"unexpected decode statuses: {statuses}")
    return elapsed, len(sts.decode_calls()) - calls_before, len(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blobs", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "AKIABENCHMARKKEY0000",
            "AWS_SECRET_ACCESS_KEY": "benchmark-secret",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    rng = random.Random(11)
    blobs = ["".join(rng.choice(ALPHABET) for _ in range(700)) for _ in range(args.blobs)]
    with StsServer() as sts:
        sts.behaviour.messages.update(dict.fromkeys(blobs, DECODED))
        sts.behaviour.latency_seconds = args.latency_ms / 1000
        serial, serial_calls, _ = run(sts, blobs, 1, DecodeCache(3600))
        shared_cache = DecodeCache(3600)
        sts.max_in_flight = 0
        pooled, pooled_calls, emitted = run(sts, blobs, CONCURRENCY, shared_cache)
        peak = sts.max_in_flight
        cached, cached_calls, _ = run(sts, blobs, CONCURRENCY, shared_cache)

    speedup = serial / pooled
    print(
        f"{args.blobs} distinct blobs, STS latency {args.latency_ms:g} ms\n"
        f"serial (max_concurrency 1): {serial:.2f} s, {serial_calls} calls\n"
        f"pooled (max_concurrency {CONCURRENCY}): {pooled:.2f} s, {pooled_calls} calls, "
        f"{emitted} events, peak in flight {peak}\n"
        f"second run, same cache: {cached:.3f} s, {cached_calls} calls\n"
        f"speed-up: {speedup:.1f}x (target >= {TARGET_SPEEDUP:g}x)"
    )
    ok = speedup >= TARGET_SPEEDUP and peak <= CONCURRENCY and cached_calls == 0
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
