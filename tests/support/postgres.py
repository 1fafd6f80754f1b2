"""A real PostgreSQL server for the portal's own database in tests (Debian's `postgresql`)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
from pathlib import Path

from .processes import free_port, run_logged, stop_pid

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_bin() -> Path:
    """The directory of initdb, pg_ctl and postgres (Debian keeps them off the PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test-deps`")
    return found[-1].parent


class PostgresServer:
    """A throw-away cluster on a free loopback port, started by pg_ctl and stopped by its PID.

    initdb and postgres refuse to run as root: as root both run as the `postgres` user, in a
    temporary directory under /tmp that it can reach (its socket goes there too, `-k`). fsync is
    off: nothing here has to survive a crash. Every connection is trusted (loopback only).
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.pid: int | None = None
        self._as_owner: list[str] = []

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: Path, *arguments: str | Path) -> None:
        """Run initdb or pg_ctl, as the `postgres` user when we are root."""
        log = self.directory / "commands.log"
        run_logged([*self._as_owner, program, *arguments], log, program.name)

    def start(self) -> PostgresServer:
        try:
            self._start(postgres_bin())
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, binaries: Path) -> None:
        self.directory.chmod(0o755)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run(
            binaries / "initdb",
            *("-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"),
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.directory / "postgres.log"
        self._run(binaries / "pg_ctl", "-D", self.data, "-l", log, "-w", "-t", "60", "-o", options, "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL (`postgresql+psycopg://...`)."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        import psycopg
        from psycopg import sql

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def allow_connections(self, name: str, allowed: bool) -> None:
        """Take a database away from its clients (its open connections are ended) or give it back:
        an outage of that database alone, while the server goes on."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        import psycopg
        from psycopg import sql

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(name), sql.SQL("true" if allowed else "false")
                )
            )
            if not allowed:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                )

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, by PID), then the directory goes."""
        if self.pid is not None:
            stop_pid(self.pid, signal.SIGINT, grace=30)
            self.pid = None
        shutil.rmtree(self.directory, ignore_errors=True)
