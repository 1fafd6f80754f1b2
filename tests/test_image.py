"""The container image without a Docker engine (none runs here, nor in CI: the image itself is
never built by the tests). hadolint; the runtime stage needing nothing a hardened runtime image
leaves out; the files its command needs present on either base pair (the build stage's virtualenv
made at each pair's documented interpreter path, then laid into the runtime image's); and the
image's own command run as the image would run it (its files laid out from the Dockerfile's COPY
lines, read-only)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .support.image import (
    HARDENED,
    OFFICIAL,
    BasePair,
    Stage,
    missing_at_run_time,
    read_stages,
    which,
)
from .support.processes import ROOT, free_port, served

DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
BUILD_DIR, APP_DIR, VENV_DIR = "/build", "/app", "/opt/venv"
CONTEXT_IGNORED = ("__pycache__", "*.pyc", "*.mo")  # as .dockerignore says
PAIRS = {pair.name: pair for pair in (OFFICIAL, HARDENED)}
MAKE_TARGETS = {"image": OFFICIAL, "image-dhi": HARDENED}


@pytest.fixture(scope="module")
def stages() -> tuple[Stage, Stage]:
    build, runtime = read_stages(DOCKERFILE)
    return build, runtime


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_stage_needs_no_shell_and_runs_as_the_hardened_images_user(
    stages: tuple[Stage, Stage],
) -> None:
    build, runtime = stages
    assert build.base == runtime.base == "python:3.12-slim"  # the default: anyone can build it
    # Nothing a hardened runtime image leaves out: no shell to RUN in, no useradd, no apt.
    assert runtime.all("RUN") == [] and runtime.all("SHELL") == [] and runtime.all("ONBUILD") == []
    assert runtime.exec_form and runtime.all("ENTRYPOINT") == []
    # Numeric (runAsNonRoot can verify it): the hardened runtime image's own nonroot user.
    assert runtime.all("USER") == [f"{HARDENED.runtime_user}:{HARDENED.runtime_user}"]
    assert all(origin == build.name for origin, _, _ in runtime.copies)  # only built artefacts
    assert runtime.cmd == ["gunicorn", "--config", "/app/gunicorn.conf.py", "portal.wsgi:app"]
    # The base's PATH kept behind the virtualenv's; its LD_LIBRARY_PATH (hardened) left alone.
    assert runtime.env["PATH"] == f"{VENV_DIR}/bin:$PATH" and "LD_LIBRARY_PATH" not in runtime.env
    assert runtime.env["HOME"] == "/tmp" and runtime.env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert runtime.env["PORTAL_BUILD_COMMIT"] == "${PORTAL_BUILD_COMMIT}"
    ignored = [
        line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if line[:1] != "#"
    ]
    assert ignored[0] == "*"  # the build context is what is listed, nothing else (.venv, .git, ...)


@pytest.mark.parametrize("target", sorted(MAKE_TARGETS))
def test_each_make_target_builds_its_pair_with_build_arguments_alone(target: str) -> None:
    pair = MAKE_TARGETS[target]
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("docker build ")
    build_args = dict(re.findall(r"--build-arg (\w+)=(\S+)", dry.stdout))
    assert build_args.pop("PORTAL_BUILD_COMMIT") == '"$(git'  # "$(git rev-parse HEAD)"
    build, runtime = read_stages(DOCKERFILE, build_args)
    assert (build.base, runtime.base) == (pair.build_image, pair.runtime_image)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"make {target}" in readme and pair.runtime_image in readme and pair.build_image in readme


def test_the_images_user_is_the_charts_default() -> None:
    _, runtime = read_stages(DOCKERFILE)
    uid, gid = map(int, runtime.all("USER")[-1].split(":"))
    values = yaml.safe_load((ROOT / "helm" / "portal" / "values.yaml").read_text(encoding="utf-8"))
    pod = values["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid)
    assert pod["runAsNonRoot"] is True and values["securityContext"]["readOnlyRootFilesystem"] is True
    assert uid != OFFICIAL.runtime_user and uid == HARDENED.runtime_user


def _copy(source: Path, destination: str, workdir: Path, *ignored: str) -> None:
    """COPY's rules: a directory's contents go into the destination; a file into a "dir/"."""
    target = workdir / destination
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignored))
        return
    if destination.endswith("/"):
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _lay_out(stages: tuple[Stage, Stage], root: Path) -> Path:
    """The image's /app, built like the Dockerfile does (the checkout's venv stands for /opt/venv)."""
    build, runtime = stages
    build_dir, app_dir = root / "build", root / "app"
    assert build.workdir == BUILD_DIR and runtime.workdir == APP_DIR
    for origin, sources, destination in build.copies:
        assert origin is None
        for source in sources:
            _copy(ROOT / source, destination, build_dir, *CONTEXT_IGNORED)
    # The build stage's last step (catalogues and bytecode), with the checkout's venv.
    last = build.all("RUN")[-1].replace(f" {VENV_DIR}/lib", "").replace(f"{VENV_DIR}/bin/", f"{VENV_BIN}/")
    subprocess.run(["sh", "-c", last], cwd=build_dir, check=True, timeout=120)
    for _, sources, destination in runtime.copies:
        for source in sources:
            if source != VENV_DIR:
                _copy(build_dir / Path(source).relative_to(BUILD_DIR), destination, app_dir)
    return app_dir


def _rooted(path: str, root: Path) -> str:
    """A PATH of the image, as seen from the layout under `root`."""
    return ":".join(f"{root}{directory}" for directory in path.split(":"))


def _build_venv(build: Stage, pair: BasePair, root: Path) -> Path:
    """The build stage's virtualenv, made under `root` by the `python` found on the build image's
    PATH (the pair's interpreter laid out at its documented path; this machine's interpreter
    stands for it). Its packages: the checkout's, through a .pth file, and the gunicorn script
    pip wrote into the checkout's venv, whose #! line names that venv's own python (checked) and
    is made to name this one's, as pip install in the build stage does."""
    pair.lay_out(root, Path(sys.executable).resolve())
    (command,) = [shlex.split(run) for run in build.all("RUN") if " -m venv " in run]
    assert command == ["python", "-m", "venv", VENV_DIR]
    python = which("python", pair.path, root)
    assert python is not None, f"no python on the {pair.name} build image's PATH"
    venv = root / VENV_DIR.lstrip("/")
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    assert "pip install --no-cache-dir --requirement requirements.txt" in " ".join(build.all("RUN"))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / version / "site-packages" / "checkout.pth").write_text(sysconfig.get_paths()["purelib"])
    shebang, *script = (VENV_BIN / "gunicorn").read_text(encoding="utf-8").splitlines()
    assert Path(shebang.removeprefix("#!")).parent == VENV_BIN.resolve()
    gunicorn = venv / "bin" / "gunicorn"
    gunicorn.write_text("\n".join([f"#!{venv}/bin/python", *script, ""]), encoding="utf-8")
    gunicorn.chmod(0o755)
    return venv


def _into_runtime(stages: tuple[Stage, Stage], built_on: BasePair, run_on: BasePair, root: Path) -> None:
    """The runtime image under `root`: the build stage's artefacts over a fresh runtime base."""
    build, runtime = stages
    venv = _build_venv(build, built_on, root)
    kept = root.parent / "venv"
    venv.rename(kept)
    shutil.rmtree(root)
    run_on.lay_out(root, Path(sys.executable).resolve())
    (venv_copy,) = [(sources, to) for _, sources, to in runtime.copies if VENV_DIR in sources]
    assert venv_copy == ([VENV_DIR], VENV_DIR)  # the same path: its #! lines and links are absolute
    venv.parent.mkdir(parents=True, exist_ok=True)
    kept.rename(venv)
    _lay_out(stages, root)
    shutil.rmtree(root / "build")  # the build stage's directory, not copied


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_what_the_command_runs_is_in_the_runtime_image_of_either_pair(
    name: str, stages: tuple[Stage, Stage], scratch: Path
) -> None:
    pair, (_, runtime) = PAIRS[name], stages
    root = scratch / "image"
    _into_runtime(stages, pair, pair, root)
    assert missing_at_run_time(runtime, pair, root) == []
    # The venv's python links to the `python` first on the build image's PATH, not to the binary
    # (so /opt/python/bin/python stays valid when the runtime image has another 3.12.x).
    first_on_path = pair.path.split(":")[0]
    venv = root / VENV_DIR.lstrip("/")
    assert os.readlink(venv / "bin" / "python") == f"{root}{first_on_path}/python"
    assert (venv / "pyvenv.cfg").read_text(encoding="utf-8").startswith(f"home = {root}{first_on_path}\n")
    # And it runs: gunicorn on the image's PATH -> its #! -> the venv's python -> the base's links.
    path = _rooted(runtime.env["PATH"].replace("$PATH", pair.path), root)
    version = subprocess.run(
        [runtime.cmd[0], "--version"],
        env={"PATH": path},
        cwd=root / "app",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.stdout.startswith("gunicorn (version "), version.stdout + version.stderr
    prefix = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys, flask; print(sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert prefix.stdout.strip() == str(venv), prefix.stderr


def test_a_venv_built_on_one_pair_does_not_run_on_the_other(
    stages: tuple[Stage, Stage], scratch: Path
) -> None:
    """Why the two build arguments must name a pair (and proof that the check above can fail)."""
    root = scratch / "image"
    _into_runtime(stages, OFFICIAL, HARDENED, root)
    (missing,) = missing_at_run_time(stages[1], HARDENED, root)
    assert missing.startswith("/opt/venv/bin/python -> /usr/local/bin/python")


def _snapshot(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def _read_only_wrapper(paths: list[Path]) -> list[str]:
    """Run the command with these paths mounted read-only (root), or rely on modes (non-root)."""
    if os.geteuid() != 0:
        return []
    mounts = " && ".join(
        f"mount --bind {q} {q} && mount -o remount,bind,ro {q} {q}" for q in map(shlex.quote, map(str, paths))
    )
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && ! touch {paths[0]}/.w"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("cannot make a read-only mount here (root without mount namespaces)")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory outside the checkout, removed afterwards even though parts were read-only."""
    root = Path(tempfile.mkdtemp(prefix="portal-image-"))
    yield root
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root)


def test_the_image_command_serves_readyz_from_a_read_only_app_directory(
    stages: tuple[Stage, Stage], portal_config: dict[str, Any], scratch: Path
) -> None:
    _, runtime = stages
    app = _lay_out(stages, scratch)
    assert (app / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.mo").is_file()
    writable = scratch / "tmp"  # stands for the emptyDir on /tmp
    writable.mkdir()
    config = scratch / "portal.yaml"
    config.write_text(yaml.safe_dump(portal_config), encoding="utf-8")
    for path in [app, *app.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _snapshot(app)

    port, metrics_port = free_port(), free_port()
    image_env = {k: v.replace("/tmp", str(writable)) for k, v in runtime.env.items()}
    env = {
        **image_env,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "TMPDIR": str(writable),
        "PORTAL_BUILD_COMMIT": "0123456789abcdef",  # the build argument
        "PORTAL_CONFIG": str(config),  # the chart's ConfigMap
        "PORTAL_SECRET_KEY": "image-test-secret-key-0123456789",  # the chart's Secret
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_METRICS_BIND": f"127.0.0.1:{metrics_port}",
    }
    command = [arg.replace(APP_DIR + "/", f"{app}/") for arg in runtime.cmd]
    log = scratch / "stdout.log"
    wrapper = _read_only_wrapper([app, VENV_BIN.parent])
    url = f"http://127.0.0.1:{port}"
    with served([*wrapper, *command], cwd=app, env=env, log_file=log, url=url, timeout=60):
        ready = requests.get(f"{url}/readyz", timeout=5).json()
        page = requests.get(url, timeout=5, headers={"Accept-Language": "fr"}).text
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert ready["status"] == "ready"
    assert 'lang="fr"' in page and "État des services" in page  # the compiled catalogue
    assert 'portal_build_info{commit="0123456789abcdef"' in metrics
    assert _snapshot(app) == before  # nothing written next to the code
    assert list((writable / "portal-metrics").glob("*.db"))
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")], lines
