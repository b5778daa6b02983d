"""Alert engine at scale: RSS and denials/s for 100,000 denials over 10,000 groups.

Each variant runs in a fresh child process over the same generated stream (every denial with
its own ~1.9 KB resource ARN in its suggested policy, times spread over an hour, rule
threshold 5 / window 10m / cooldown 30m / the default storm cap):

- reference: what the pipeline does for every denial anyway, serialise the event (json.dumps);
- engine: ``AlertEngine.observe`` on every denial (the default rule).

Prints each run, the medians, the ratio engine/reference of the time per denial, and each
child's peak RSS (VmHWM). Fails when the engine's peak RSS is above the target.

    python benchmarks/alerts_scale.py [--denials 100000] [--groups 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_alerts import denial
from watcher.alerts import AlertEngine
from watcher.config import AlertRule

REPO = Path(__file__).resolve().parent.parent

TARGET_ENGINE_RSS_MB = 150.0
BATCH = 1000
SPAN_SECONDS = 3600.0
RESOURCE_PADDING = "k" * 1900


def denials(count: int, groups: int, seed: int = 7) -> Iterator[list[dict[str, object]]]:
    """The stream, in batches: denial i belongs to group i % groups, at a rising time."""
    rng = random.Random(seed)
    batch: list[dict[str, object]] = []
    for i in range(count):
        group = rng.randrange(groups)
        action = "s3:GetObject" if group % 2 else "ec2:RunInstances"
        resource = f"arn:aws:s3:::bucket-{group}/{i:07d}-{RESOURCE_PADDING}"
        event = denial(i, principal=f"arn:aws:iam::111122223333:user/u{group}", action=action)
        event["suggested_policy"]["Statement"][0]["Resource"] = resource
        event.update(resource=resource, _at=1_700_000_000.0 + SPAN_SECONDS * i / count)
        batch.append(event)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(variant: str, count: int, groups: int) -> None:
    engine = AlertEngine((AlertRule(name="repeated-denials"),))
    seconds, alerts, summaries = 0.0, 0, 0
    for batch in denials(count, groups):
        started = time.perf_counter()
        if variant == "engine":
            for event in batch:
                for alert in engine.observe(event, float(event["_at"])):  # type: ignore[arg-type]
                    alerts += 1
                    summaries += "storm_groups" in alert
        else:
            for event in batch:
                json.dumps(event)
        seconds += time.perf_counter() - started
    if variant == "engine":
        for _ in engine.flush_summaries():
            alerts += 1
            summaries += 1
    print(
        json.dumps(
            {"seconds": seconds, "peak_kib": peak_rss_kib(), "alerts": alerts, "storm": summaries}
        )
    )


def run(variant: str, count: int, groups: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", variant, f"--denials={count}", f"--groups={groups}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    measured: dict[str, float] = json.loads(result.stdout)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--denials", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=("engine", "reference"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.denials, args.groups)
        return 0
    results: dict[str, list[dict[str, float]]] = {"reference": [], "engine": []}
    for number in range(args.runs):
        for variant in ("reference", "engine"):  # interleaved: drift hits both alike
            measured = run(variant, args.denials, args.groups)
            results[variant].append(measured)
            print(
                f"run {number + 1} {variant:>9}: {measured['seconds']:.2f} s, "
                f"peak RSS {measured['peak_kib'] / 1024:.0f} MB"
                + (
                    f", {measured['alerts']:.0f} alerts ({measured['storm']:.0f} storm summaries)"
                    if variant == "engine"
                    else ""
                )
            )
    medians = {
        variant: (
            statistics.median(r["seconds"] for r in runs),
            statistics.median(r["peak_kib"] for r in runs) / 1024,
        )
        for variant, runs in results.items()
    }
    (ref_seconds, ref_mb), (engine_seconds, engine_mb) = medians["reference"], medians["engine"]
    alerts = statistics.median(r["alerts"] for r in results["engine"])
    print(
        f"\n{args.denials:,} denials over {args.groups:,} groups (medians of {args.runs}):\n"
        f"  reference (json.dumps of each event): {ref_seconds:.2f} s, "
        f"{args.denials / ref_seconds:,.0f} denials/s, peak RSS {ref_mb:.0f} MB\n"
        f"  alert engine:                         {engine_seconds:.2f} s, "
        f"{args.denials / engine_seconds:,.0f} denials/s, peak RSS {engine_mb:.0f} MB "
        f"(target <= {TARGET_ENGINE_RSS_MB:g} MB)\n"
        f"  alerts raised:                        {alerts:,.0f} "
        f"({alerts / engine_seconds:,.0f} alerts/s)\n"
        f"  time per denial, engine / reference:  {engine_seconds / ref_seconds:.2f}x\n"
        f"  peak RSS, engine - reference:         {engine_mb - ref_mb:+.0f} MB"
    )
    return 0 if engine_mb <= TARGET_ENGINE_RSS_MB else 1


if __name__ == "__main__":
    sys.exit(main())
