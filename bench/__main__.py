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
    capacity,
    faults,
    isolation,
    pipelines,
    soak,
    stampede,
    taiga_load,
    throughput,
    wire_cost,
)
from .context import Bench
from .monitoring import monitoring
from .report import RESULTS, quote_in_readme, table, write
from .stack import peers

PHASES = (
    "throughput",
    "capacity",
    "amplification",
    "pipelines",
    "stampede",
    "isolation",
    "cost",
    "soak",
    "faults",
    "taiga",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorten every phase (a smoke run)")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated among {', '.join(PHASES)}")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to write the JSON (bench/results)"
    )
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    started = time.time()
    failures = 0
    with (
        tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp,
        peers(Path(tmp)) as (sim, keycloak, redis),
        monitoring(Path(tmp)) as prometheus,
    ):
        assert redis is not None
        bench = Bench(Path(tmp), args.quick, sim, keycloak, redis, prometheus)
        max_rps = 0.0
        people = 0  # figure 1's capacity: the writes run at half of it, and the soak
        for name in chosen:
            print(f"[bench] {name} ...", flush=True)
            sim.reset()
            try:
                if name == "throughput":
                    max_rps = throughput.measure(bench)
                elif name == "capacity":
                    people = capacity.measure(bench)
                    bench.details["capacity_people"] = people
                elif name == "soak":
                    soak.measure(bench, max_rps or 200.0)
                else:
                    {
                        "amplification": amplification.measure,
                        "pipelines": pipelines.measure,
                        "stampede": stampede.measure,
                        "isolation": isolation.measure,
                        "cost": wire_cost.measure,
                        "faults": faults.measure,
                        "taiga": taiga_load.measure,
                    }[name](bench)
            except Exception:
                failures += 1
                traceback.print_exc()
                bench.add(name, "phase failed (see the traceback above)", "error", "runs", False)
    print()
    print(table(bench.figures))
    path = write(bench.figures, bench.details, args.quick, started, args.results)
    if not args.quick and chosen == list(PHASES) and not failures:
        quote_in_readme(json.loads(path.read_text(encoding="utf-8")))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
