"""Figures with their goals and verdicts: the table printed at the end and the JSON written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Figure:
    """One measured figure; `passed` is None for figures reported without a goal."""

    section: str
    name: str
    value: str
    goal: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else "pass" if self.passed else "SHORT"


def at_most(value: float, limit: float) -> bool:
    return value <= limit


def at_least(value: float, limit: float) -> bool:
    return value >= limit


def table(figures: list[Figure]) -> str:
    """A Markdown table: section, figure, value, goal, verdict."""
    rows = [("", "Figure", "Measured", "Goal", "Verdict")]
    rows += [(f.section, f.name, f.value, f.goal, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
    }


def write(
    figures: list[Figure],
    details: dict[str, Any],
    quick: bool,
    started: float,
    directory: Path = RESULTS,
    measured_on: dict[str, Any] | None = None,
) -> Path:
    """<directory>/<UTC time>[-quick].json with every figure, the raw measurements and the machine."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    path = directory / f"{stamp}{'-quick' if quick else ''}.json"
    document = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "quick": quick,
        "seconds": round(time.time() - started, 1),
        "machine": measured_on or machine(),  # (read when the run began: the commit it ran)
        "figures": [{**asdict(f), "verdict": f.verdict} for f in figures],
        "details": details,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def readme_block(document: dict[str, Any]) -> str:
    """The latest full run as the README quotes it: when, where, how, and the table."""
    machine = document["machine"]
    figures = [
        Figure(f["section"], f["name"], f["value"], f["goal"], f["passed"]) for f in document["figures"]
    ]
    return (
        f"`make bench` on {document['date']} (commit {machine['commit']}): {machine['cores']} cores "
        f"({machine['cpu']}), {machine['memory_gib']} GiB, Python {machine['python']}; the load "
        f"generator on the same cores. Took {document['seconds'] / 60:.0f} min{_steal(document)}.\n\n"
        + table(figures)
    )


def _steal(document: dict[str, Any]) -> str:
    share = document["details"].get("host_steal")
    return "" if share is None else f"; the host took {share:.1%} of the CPU (steal, bench/host.py)"


def quote_in_readme(document: dict[str, Any], readme: Path = README) -> None:
    """Replace the README's table between its bench markers."""
    text = readme.read_text(encoding="utf-8")
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        readme.write_text(f"{before}{START}\n{readme_block(document)}\n{END}{after}", encoding="utf-8")
