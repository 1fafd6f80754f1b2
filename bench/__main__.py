"""`python -m bench [--quick] [--only NAMES]`: run the figures, print the table, write the JSON."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import (
    amplification,
    browser,
    capacity,
    faults,
    isolation,
    pipelines,
    soak,
    stampede,
    taiga_load,
    throughput,
    wire_cost,
    writes,
)
from .context import Bench
from .host import cpu_times, steal_share
from .monitoring import monitoring
from .report import RESULTS, machine, quote_in_readme, table, write
from .stack import peers

# The seven figures (the throughput ratio belongs to the first), then the cold-key
# stampede, the bytes of a poll, and last Taiga's calls per cache period at 10, 100 and 1,000
# people (the Taiga cards' issue asks for it; last, so that its 1,000 logins and realm weigh on
# no other figure). Writes and the soak run at half of figure 1's people.
PHASES = (
    "throughput",
    "capacity",
    "isolation",
    "faults",
    "writes",
    "browser",
    "soak",
    "stampede",
    "cost",
    "taiga",
)
# Earlier figures of one card each, which figure 2 now covers for every upstream at once:
# run on demand (`--only amplification,pipelines`).
EXTRA = ("amplification", "pipelines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorten every phase (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(PHASES), help=f"comma-separated among {', '.join(PHASES + EXTRA)}"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to write the JSON (bench/results)"
    )
    parser.add_argument(
        "--people",
        type=int,
        default=0,
        help="figure 1's capacity, for writes and the soak when capacity is not run (they run at half)",
    )
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(PHASES + EXTRA)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    started = time.time()
    measured_on = machine()
    host_before = cpu_times()
    failures = 0
    with (
        tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp,
        peers(Path(tmp)) as (sim, keycloak, redis),
        monitoring(Path(tmp)) as prometheus,
    ):
        assert redis is not None
        bench = Bench(Path(tmp), args.quick, sim, keycloak, redis, prometheus)
        people = args.people  # figure 1's capacity: the writes run at half of it, and the soak
        for name in chosen:
            print(f"[bench] {name} ...", flush=True)
            phase_started = time.monotonic()
            sim.reset()
            try:
                if name == "throughput":
                    throughput.measure(bench)
                elif name == "capacity":
                    people = capacity.measure(bench)
                    bench.details["capacity_people"] = people
                elif name == "writes":
                    writes.measure(bench, people)
                elif name == "soak":
                    soak.measure(bench, people)
                else:
                    {
                        "amplification": amplification.measure,
                        "pipelines": pipelines.measure,
                        "stampede": stampede.measure,
                        "isolation": isolation.measure,
                        "browser": browser.measure,
                        "cost": wire_cost.measure,
                        "faults": faults.measure,
                        "taiga": taiga_load.measure,
                    }[name](bench)
            except Exception:
                failures += 1
                traceback.print_exc()
                bench.add(name, "phase failed (see the traceback above)", "error", "runs", False)
            print(f"[bench] {name} took {time.monotonic() - phase_started:.0f} s", flush=True)
    print()
    print(table(bench.figures))
    bench.details["host_steal"] = round(steal_share(host_before, cpu_times()), 4)
    path = write(bench.figures, bench.details, args.quick, started, args.results, measured_on)
    if not args.quick and chosen == list(PHASES) and not failures:
        quote_in_readme(json.loads(path.read_text(encoding="utf-8")))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
