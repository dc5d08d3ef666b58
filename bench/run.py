"""Every benchmark of the project, one after the other, and one table of what they measured.

    python bench/run.py [--quick]

Runs bench/webhooks.py, bench/inbound.py, bench/outbound.py, bench/e2e.py and
bench/scale.py (each prints its own table as it goes), then prints every figure
next to the ceiling measured in the same run and its target where the issues set
one. ``--quick`` shortens each run for a smoke test; the figures in
bench/README.md come from full runs. Needs wrk, and the machine's PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import json

from bench.common import RESULTS, ROOT, print_table
from bench.scale import READS

QUICK = {
    "webhooks": ["--seconds", "4"],
    "inbound": ["--messages", "4000"],
    "outbound": ["--sends", "1000"],
    "e2e": ["--seconds", "5"],
    "scale": ["--messages", "200000", "--conversations", "10000", "--inbound", "16000"],
}


def run_all(quick: bool) -> dict:
    figures = {}
    for name, short in QUICK.items():
        args = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *(short if quick else [])]
        subprocess.run(args, cwd=ROOT, check=True)
        figures[name] = json.loads((RESULTS / f"{name}.json").read_text())
    return figures


def summary(figures: dict) -> list[tuple]:
    hooks, inbound = figures["webhooks"], figures["inbound"]
    outbound, e2e, scale = figures["outbound"], figures["e2e"], figures["scale"]
    deployed, alone = e2e["postgres"], e2e["embedded"]
    bare, noop = hooks["bare"]["rps"], inbound["noop"]
    steady = hooks["snorq_at_1000_rps"]
    precision = outbound["precision"]
    return [
        ("figure", "value", "ceiling (same run)", "ratio", "target"),
        ("signed webhooks acknowledged", f"{hooks['snorq']['rps']:.0f}/s",
         f"bare Flask {bare:.0f}/s", f"{hooks['snorq']['rps'] / bare:.2f}", "≥ 0.45"),
        ("  naive HMAC + one send", f"{hooks['naive']['rps']:.0f}/s",
         f"bare Flask {bare:.0f}/s", f"{hooks['naive']['rps'] / bare:.2f}", "-"),
        ("webhook p50 / p99 at ~1,000/s", f"{steady['p50_ms']:.1f} / {steady['p99_ms']:.1f} ms",
         "-", "-", "p99 < 50 ms"),
        ("inbound persisted (1 per job)", f"{inbound['persist_group_1']:.0f}/s",
         f"no-op {noop:.0f}/s", f"{inbound['persist_group_1'] / noop:.2f}", "≥ 0.30"),
        ("inbound persisted (8 per job)", f"{inbound['persist_group_8']:.0f}/s",
         f"no-op {noop:.0f}/s", f"{inbound['persist_group_8'] / noop:.2f}", "≥ 0.40"),
        ("replies sent", f"{outbound['sends']:.0f}/s", f"no-op {outbound['noop']:.0f}/s",
         f"{outbound['sends'] / outbound['noop']:.2f}", "≥ 0.25"),
        ("rate limit: most in any window", str(precision["most_in_any_second"]),
         f"limit {precision['limit']}", "-", "≤ limit"),
        ("rate limit: utilisation", f"{precision['utilisation']:.0%}", "-", "-", "≥ 90%"),
        ("webhook → websocket p50 / p99", f"{deployed['p50_ms']:.0f} / {deployed['p99_ms']:.0f} ms",
         f"{deployed['rate']}/s offered", "-", "-"),
        ("  embedded `snorq run`", f"{alone['p50_ms']:.0f} / {alone['p99_ms']:.0f} ms",
         f"{alone['rate']}/s offered", "-", "p99 < 100 ms"),
        ("peak memory web / worker",
         f"{deployed['peak_rss_mib']['web']:.0f} / {deployed['peak_rss_mib']['worker']:.0f} MiB",
         "-", "-", "- / < 150 MiB"),
        ("  largest web / worker process",
         " / ".join(f"{deployed['largest_process_rss_mib'][k]:.0f}" for k in ("web", "worker"))
         + " MiB", "-", "-", "< 100 MiB / -"),
        ("  embedded `snorq run`", f"{alone['peak_rss_mib']['web']:.0f} MiB", "-", "-", "< 80 MiB"),
        *scale_rows(scale),
    ]  # fmt: skip


def scale_rows(scale: dict) -> list[tuple]:
    """The seeded database's figures next to the empty one's (bench/scale.py)."""
    empty, seeded = scale["empty"], scale["seeded"]
    size = f"{scale['sizes']['messages']:,} messages"
    rate = seeded["inbound_per_s"], empty["inbound_per_s"]
    rows = [
        (f"inbound persisted, {size}", f"{rate[0]:.0f}/s", f"empty {rate[1]:.0f}/s",
         f"{rate[0] / rate[1]:.2f}", "≥ 0.83"),
    ]  # fmt: skip
    for name in (*READS, "status_update"):
        p95 = seeded[name]["p95_ms"], empty[name]["p95_ms"]
        rows.append(
            (f"{name} p95, {size}", f"{p95[0]:.1f} ms", f"empty {p95[1]:.1f} ms",
             f"{p95[0] / p95[1]:.2f}", "< 50 ms, ≤ 1.2")
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    args = parser.parse_args()
    print_table("All benchmarks", summary(run_all(args.quick)))


if __name__ == "__main__":
    main()
