"""`python -m bench.profile_crowd [--people N] [--seconds S]`: where a worker's CPU goes under a crowd.

The dashboard of figure 1 (bench/dashboard.py) with N people polling the six cards; once they
have all arrived and settled, py-spy samples each worker (`--gil`: the thread holding the GIL,
that is the worker's CPU) for S seconds. Writes `profile-<pid>.txt` (py-spy's raw format, one
line per stack and its count) in the current directory, prints the CPU per poll and the
functions that take most of it (self and inclusive), summed over the workers.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from .context import Bench
from .dashboard import dashboard, process_cpu
from .monitoring import monitoring
from .people import Crowd
from .stack import peers

PY_SPY = Path(".venv/bin/py-spy")


def summarise(paths: list[Path], top: int = 30) -> None:
    """The functions with the most samples: their own (self) and with what they call (inclusive)."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                within[frame] += n
    print(f"{total} samples")
    for title, counter in (("self", own), ("inclusive", within)):
        print(f"-- {title}")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_crowd", description=__doc__)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--ramp", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="portal-profile-") as tmp,
        peers(Path(tmp)) as (sim, keycloak, redis),
        monitoring(Path(tmp)) as prometheus,
    ):
        assert redis is not None
        bench = Bench(Path(tmp), False, sim, keycloak, redis, prometheus)
        with dashboard(bench, args.people, busy_team=True) as board:
            crowd = Crowd(board.server.url, board.cards(), connections=64).start()
            try:
                crowd.join(board.login(args.people), args.ramp)
                crowd.wait_until(crowd.now() + args.ramp + 15)
                workers = board.server.workers()
                cpu = sum(process_cpu(pid) for pid in workers)
                start = crowd.now()
                spies = [
                    subprocess.Popen(
                        [
                            str(PY_SPY),
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(args.seconds),
                            "--rate",
                            "100",
                            "--gil",
                            "--format",
                            "raw",
                            "-o",
                            f"profile-{pid}.txt",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for pid in workers
                ]
                for spy in spies:
                    spy.wait()
                end = crowd.now()
                cpu = sum(process_cpu(pid) for pid in workers) - cpu
                crowd.drain(end)
                time.sleep(0.5)
                samples = crowd.window(start, end)
            finally:
                crowd.stop()
    statuses = Counter(s.status for s in samples)
    print(
        f"{args.people} people, {len(samples)} polls in {end - start:.0f} s {dict(statuses)}; "
        f"worker CPU {cpu:.1f} s: {1000 * cpu / max(1, len(samples)):.1f} ms a poll "
        f"(py-spy's sampling included)"
    )
    summarise([Path(f"profile-{pid}.txt") for pid in workers])


if __name__ == "__main__":
    main()
