"""`make audit`: Lighthouse on the demo dashboard, on a phone and a desktop, scores into audit/.

    audit/lighthouse.json   every run's scores and key metrics, and the median per form factor
    audit/SUMMARY.md        the medians as a table (also written into the README between markers)

Not a test: scores depend on the machine. It exits 1 when a median is under the bar:
accessibility and best practices 98, performance 95. Lighthouse comes from npm (audit/
package.json); the browser is Debian's Chromium.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.browser import CHROMIUM, CHROMIUM_ARGS
from demo.running import ROOT, running_demo
from portal.widgets import WIDGETS

AUDIT = ROOT / "audit"
LIGHTHOUSE = AUDIT / "node_modules" / ".bin" / "lighthouse"
README = ROOT / "README.md"
RUNS = 3
CATEGORIES = {"performance": 95, "accessibility": 98, "best-practices": 98}
METRICS = {
    "first-contentful-paint": "FCP",
    "largest-contentful-paint": "LCP",
    "total-blocking-time": "TBT",
    "cumulative-layout-shift": "CLS",
    "speed-index": "Speed Index",
}
START, END = "<!-- audit:start -->", "<!-- audit:end -->"


def _lighthouse(url: str, form_factor: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as scratch:
        report = Path(scratch) / "report.json"
        command = [
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={report}",
            f"--only-categories={','.join(CATEGORIES)}",
            f"--chrome-flags=--headless {' '.join(CHROMIUM_ARGS)}",
        ]
        if form_factor == "desktop":
            command.append("--preset=desktop")
        env = {**os.environ, "CHROME_PATH": CHROMIUM, "TMPDIR": scratch}
        subprocess.run(command, check=True, env=env, cwd=AUDIT, timeout=300)
        data = json.loads(report.read_text(encoding="utf-8"))
    return {
        "scores": {name: round(data["categories"][name]["score"] * 100) for name in CATEGORIES},
        "metrics": {label: data["audits"][key]["displayValue"] for key, label in METRICS.items()},
        "failed": sorted(
            key
            for key, audit in data["audits"].items()
            if audit.get("score") is not None
            and audit["score"] < 0.9
            and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
        ),
        "lighthouse": data["lighthouseVersion"],
        "browser": data["environment"]["hostUserAgent"],
    }


def _summary(results: dict[str, Any]) -> str:
    lines = [
        f"Lighthouse {results['lighthouse']} on the demo dashboard (`make audit`, {results['date']}),",
        f"median of {RUNS} runs, Lighthouse's simulated throttling:",
        "",
        "| | Performance | Accessibility | Best practices |",
        "|---|---|---|---|",
    ]
    for form_factor, label in (("mobile", "Phone (Moto G power, slow 4G)"), ("desktop", "Desktop")):
        median = results[form_factor]["median"]
        lines.append(
            f"| {label} | {median['performance']} | {median['accessibility']} | {median['best-practices']} |"
        )
    return "\n".join(lines)


def _write_readme(summary: str) -> None:
    text = README.read_text(encoding="utf-8")
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        README.write_text(f"{before}{START}\n{summary}\n{END}{after}", encoding="utf-8")


def main() -> int:
    if not LIGHTHOUSE.exists():
        sys.exit(f"{LIGHTHOUSE} is missing: `npm ci` in audit/ (make audit does it)")
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d")}
    with running_demo() as base:
        url = f"{base}/"
        requests.get(url, timeout=10)  # warm the workers and every card's cache (the demo user's)
        for widget in WIDGETS:  # until no part of it is still being fetched
            for _ in range(40):
                if 'data-poll="soon"' not in requests.get(f"{base}/widgets/{widget.slug}", timeout=10).text:
                    break
                time.sleep(0.5)
        for form_factor in ("mobile", "desktop"):
            runs = [_lighthouse(url, form_factor) for _ in range(RUNS)]
            median = {name: int(statistics.median(r["scores"][name] for r in runs)) for name in CATEGORIES}
            results[form_factor] = {"median": median, "runs": runs}
            results["lighthouse"] = runs[0]["lighthouse"]
            print(form_factor, median, flush=True)
    AUDIT.mkdir(exist_ok=True)
    (AUDIT / "lighthouse.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    summary = _summary(results)
    (AUDIT / "SUMMARY.md").write_text(summary + "\n", encoding="utf-8")
    _write_readme(summary)
    print(summary)
    low = [
        f"{form_factor} {name}: {results[form_factor]['median'][name]} < {bar}"
        for form_factor in ("mobile", "desktop")
        for name, bar in CATEGORIES.items()
        if results[form_factor]["median"][name] < bar
    ]
    for line in low:
        print(f"under the bar: {line}", file=sys.stderr)
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
