"""A real Prometheus server for tests: scrapes targets listed in a file, answers PromQL queries,
evaluates alert rules and sends the alerts to an Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from .processes import free_port, start_child, stop_child, wait_for


class PrometheusServer:
    """`prometheus` on a free loopback port; `scrape(name, address)` adds a target while it runs.

    Rules: the files in `rule_files` are loaded at start, and `add_rules(name, groups)` loads more
    while it runs (a reload). Give a group `interval: 1s` for an alert that fires within a second or
    two. With `alertmanager` (its base URL) alerts go there, re-sent every second
    (`--rules.alert.resend-delay=1s`: without it the Alertmanager hears of one after about a minute).
    """

    def __init__(
        self,
        directory: Path,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.scrape_interval = scrape_interval
        self.targets_file = directory / "targets.json"
        self.rules_dir = directory / "rules"
        self.rule_files = list(rule_files)
        self.alertmanager = alertmanager
        self.log = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._targets: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        interval = self.scrape_interval
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(self.rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": "portal",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        if self.alertmanager:
            address = self.alertmanager.split("://", 1)[-1].rstrip("/")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [address]}]}]}
        return config

    def start(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make test-deps`")
        self.targets_file.write_text("[]", encoding="utf-8")
        self.rules_dir.mkdir(exist_ok=True)
        for index, source in enumerate(self.rule_files):
            shutil.copyfile(source, self.rules_dir / f"{index:02d}-{source.stem}.yml")
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self._config()), encoding="utf-8")
        command = [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=1s",
        ]
        self.process = start_child(
            command, self.log, lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, "prometheus"
        )
        return self

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None

    def scrape(self, name: str, address: str) -> None:
        """Scrape `address` (host:port) with the label `target=name`, and wait until it is up.

        Prometheus applies new targets on a 5-second tick: the first scrape comes 5 to 6 s later.
        """
        self._targets.append({"targets": [address], "labels": {"target": name}})
        self.targets_file.write_text(json.dumps(self._targets), encoding="utf-8")
        wait_for(
            lambda: self.value(f'up{{target="{name}"}}') == 1,
            timeout=30,
            interval=0.25,
            what=f"prometheus to scrape {name}",
        )

    # --- rules and alerts -----------------------------------------------------------------------

    def add_rules(self, name: str, groups: list[dict[str, Any]]) -> None:
        """Load rule groups (as in a rules file) from `rules/<name>.yml`; back once they are loaded."""
        (self.rules_dir / f"{name}.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
        self._reload()
        wanted = {group["name"] for group in groups}
        wait_for(lambda: wanted <= self.rule_groups(), timeout=10, what=f"rules {sorted(wanted)}")

    def remove_rules(self, name: str) -> None:
        """Unload what `add_rules(name, ...)` loaded."""
        (self.rules_dir / f"{name}.yml").unlink(missing_ok=True)
        self._reload()

    def _reload(self) -> None:
        answer = requests.post(f"{self.url}/-/reload", timeout=10)
        if not answer.ok:  # a rule that does not parse: Prometheus says which
            raise RuntimeError(f"prometheus refused its configuration: {answer.text}")

    def rule_groups(self) -> set[str]:
        """The names of the rule groups loaded now."""
        answer = requests.get(f"{self.url}/api/v1/rules", timeout=5)
        answer.raise_for_status()
        return {group["name"] for group in answer.json()["data"]["groups"]}

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now (`/api/v1/alerts`)."""
        answer = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["data"]["alerts"]
        return found

    def alert_state(self, alertname: str) -> str | None:
        """ "pending" or "firing" for an alert of that name, None when it is inactive."""
        states = {alert["state"] for alert in self.alerts() if alert["labels"]["alertname"] == alertname}
        return "firing" if "firing" in states else states.pop() if states else None

    # --- queries --------------------------------------------------------------------------------

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The value of a query that yields one sample (None when it yields nothing)."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])
