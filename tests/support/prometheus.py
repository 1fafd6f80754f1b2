"""A real Prometheus server for tests: scrapes targets listed in a file, answers PromQL queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import requests
import yaml

from .processes import free_port, wait_for


class PrometheusServer:
    """`prometheus` on a free loopback port; `scrape(name, address)` adds a target at once."""

    def __init__(self, directory: Path, scrape_interval: str = "1s") -> None:
        self.directory = directory
        self.port = free_port()
        self.scrape_interval = scrape_interval
        self.targets_file = directory / "targets.json"
        self.process: subprocess.Popen[bytes] | None = None
        self._targets: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make test-deps`")
        self.targets_file.write_text("[]", encoding="utf-8")
        config = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
            "scrape_configs": [
                {
                    "job_name": "portal",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = self.directory / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, timeout=30, what="prometheus")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        self.process = None

    def scrape(self, name: str, address: str) -> None:
        """Scrape `address` (host:port) with the label `target=name`, and wait until it is up."""
        self._targets.append({"targets": [address], "labels": {"target": name}})
        self.targets_file.write_text(json.dumps(self._targets), encoding="utf-8")
        wait_for(
            lambda: self.value(f'up{{target="{name}"}}') == 1,
            timeout=30,
            interval=0.25,
            what=f"prometheus to scrape {name}",
        )

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
