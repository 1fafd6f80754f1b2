"""Read the Dockerfile's stages, so tests run the image's own commands without a Docker engine,
and the two pairs of base images it builds on, as Docker documents them."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
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
    def exec_form(self) -> bool:
        """Every CMD and ENTRYPOINT is a JSON array: run without a shell."""
        return all(args.startswith("[") for args in self.all("CMD") + self.all("ENTRYPOINT"))

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


def read_stages(dockerfile: Path, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Parse the instructions (continuation lines joined, comments dropped); the global ARGs'
    defaults, overridden by `build_args` as `docker build --build-arg` does, name the bases."""
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
            args[name] = (build_args or {}).get(name, default)
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(base, words[2] if len(words) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    unknown = set(build_args or {}) - set(args)
    assert not unknown, f"build arguments the Dockerfile does not declare: {unknown}"
    return stages


@dataclass(frozen=True)
class BasePair:
    """A build image and its runtime image, as documented: where `python` is, on what PATH.

    Both images of a pair have the interpreter at the same place (that is what makes a virtualenv
    built in one run in the other). `links` are created in order, with targets relative to the
    link's directory, so that a layout under a scratch directory resolves inside it.
    """

    name: str
    build_image: str
    runtime_image: str
    path: str  # the images' PATH
    interpreter: str  # the binary
    links: tuple[tuple[str, str], ...]  # (link, target)
    runtime_user: int  # the runtime image's own USER (its shell and package manager: in comments)
    sources: tuple[str, ...]

    def lay_out(self, root: Path, binary: Path) -> None:
        """The pair's interpreter at its documented path under `root`; the real `binary` stands for it."""
        target = root / self.interpreter.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(binary)
        for link, to in self.links:
            path = root / link.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(to)


# docker-library/python 3.12/slim-trixie/Dockerfile: Python installed into /usr/local (make
# install: bin/python3 -> python3.12), "/usr/local/bin/python" and friends linked, PATH
# /usr/local/bin first (on Debian's own), no USER (root), a shell and apt.
OFFICIAL = BasePair(
    name="official",
    build_image="python:3.12-slim",
    runtime_image="python:3.12-slim",
    path="/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    interpreter="/usr/local/bin/python3.12",
    links=(("/usr/local/bin/python3", "python3.12"), ("/usr/local/bin/python", "python3")),
    runtime_user=0,
    sources=("https://github.com/docker-library/python/blob/master/3.12/slim-trixie/Dockerfile",),
)

# Docker Hardened Images, Debian 13: dev and runtime both take opt/** from the pkg-python
# artifact, built with --prefix=/opt/python-3.12.x, bin/python -> python3 linked and
# /opt/python -> /opt/python-3.12.x; PATH /opt/python/bin first. The dev image runs as root with
# bash and apt; the runtime image runs as nonroot (65532:65532), without shell or package manager.
HARDENED = BasePair(
    name="hardened",
    build_image="dhi.io/python:3.12-debian13-dev",
    runtime_image="dhi.io/python:3.12-debian13",
    path="/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    interpreter="/opt/python-3.12.13/bin/python3.12",
    links=(
        ("/opt/python-3.12.13/bin/python3", "python3.12"),
        ("/opt/python-3.12.13/bin/python", "python3"),
        ("/opt/python", "python-3.12.13"),
    ),
    runtime_user=65532,
    sources=(
        "https://docs.docker.com/dhi/migration/checklist/",
        "https://docs.docker.com/dhi/explore/available/",
        "https://docs.docker.com/dhi/migration/examples/python/",
        "https://github.com/docker-hardened-images/catalog/blob/main/image/python/debian-13/3.12.yaml",
        "https://github.com/docker-hardened-images/catalog/blob/main/image/python/debian-13/3.12-dev.yaml",
        "https://github.com/docker-hardened-images/catalog/blob/main/package/python/debian-13/3.12.yaml",
    ),
)


def which(command: str, path: str, root: Path) -> Path | None:
    """`command` looked up on `path` as the image would, inside the layout under `root`."""
    for directory in path.split(":"):
        candidate = root / directory.lstrip("/") / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_at_run_time(runtime: Stage, pair: BasePair, root: Path) -> list[str]:
    """What the runtime stage's command needs and the layout under `root` lacks (image paths):
    the program on the image's PATH, the interpreter of its #! line through the virtualenv's
    links, the configuration file and the application module in the working directory."""
    path = runtime.env["PATH"].replace("$PATH", pair.path)
    program, *args = runtime.cmd
    found = which(program, path, root)
    if found is None:
        return [f"{program} on PATH={path}"]
    missing = []
    interpreter = found.read_text(encoding="utf-8").splitlines()[0].removeprefix("#!").split()[0]
    chain = [Path(interpreter)]
    while chain[-1].is_symlink() and len(chain) < 10:
        chain.append(chain[-1].parent / os.readlink(chain[-1]))
    if not chain[-1].exists():
        missing.append(" -> ".join("/" + str(p.relative_to(root)) for p in chain))
    workdir = root / runtime.workdir.lstrip("/")
    if "--config" in args:
        config = root / args[args.index("--config") + 1].lstrip("/")
        if not config.is_file():
            missing.append(f"/{config.relative_to(root)}")
    module = args[-1].split(":")[0].replace(".", "/") + ".py"
    if not (workdir / module).is_file():
        missing.append(f"{runtime.workdir}/{module}")
    return missing
