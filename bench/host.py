"""The CPU the hypervisor gave to other guests while we measured ("steal" in /proc/stat).

On a shared virtual machine the same build measures differently from hour to hour (figure 1
found 3,000, 2,000 and 1,500 people within eight hours). Steal is the part of that which the
machine itself can report: the time our virtual CPUs were ready to run and the host ran
someone else. Reported beside the figures it moves, never judged.

Also the CPU time of one process (`cpu_seconds`): what a worker spent during a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STAT = Path("/proc/stat")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time so far, in clock ticks: all of it, and the part stolen."""

    total: int
    steal: int


def cpu_times(stat: Path = STAT) -> CpuTimes:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal guest…
    (guest time is already counted in user, so it is left out of the total)."""
    try:
        fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return CpuTimes(0, 0)  # not Linux: nothing to report
    fields += [0] * (8 - len(fields))
    return CpuTimes(sum(fields), fields[7])


def steal_share(before: CpuTimes, after: CpuTimes) -> float:
    """The share of the machine's CPU time between two readings that the host took."""
    total = after.total - before.total
    return (after.steal - before.steal) / total if total > 0 else 0.0


def cpu_seconds(pid: int) -> float:
    """User and system time of every thread of a process, so far."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return ticks / _TICK
