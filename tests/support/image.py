"""Read the Dockerfile's stages, so tests run the image's own commands without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    """One FROM ... stage: its instructions, in order, as (keyword, arguments)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    @property
    def env(self) -> dict[str, str]:
        """ENV key=value pairs, `${NAME}` of ARGs left as they are."""
        found: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                found[key] = value
        return found

    @property
    def workdir(self) -> str:
        return self.all("WORKDIR")[-1]

    @property
    def cmd(self) -> list[str]:
        command: list[str] = json.loads(self.all("CMD")[-1])
        return command

    @property
    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """COPY instructions as (--from stage or None, sources, destination)."""
        found = []
        for args in self.all("COPY"):
            words = shlex.split(args)
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            found.append((origin, paths[:-1], paths[-1]))
        return found


def read_stages(dockerfile: Path) -> list[Stage]:
    """Parse the instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    args: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(base, words[2] if len(words) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages
