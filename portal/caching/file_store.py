"""Where server-side sessions live: Redis when configured (every replica), else files every worker shares."""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cachelib.file import FileSystemCache

from .widget_cache import Lock, Store


class _FileLock:
    """An flock on a file: released by `release()`, or by the kernel if the process dies."""

    def __init__(self, handle: int) -> None:
        self._handle = handle

    def release(self) -> None:
        try:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        finally:
            os.close(self._handle)


class FileStore:
    """cachelib's FileSystemCache in a directory every gunicorn worker of this process tree shares.

    Without Redis, an in-process store would log a user out whenever the next request reached
    another worker; a file per session on tmpfs is shared by all of them and costs one small read.
    """

    shared = True

    def __init__(self, directory: Path, max_entries: int = 50_000) -> None:
        self.directory = directory
        (directory / "locks").mkdir(parents=True, exist_ok=True, mode=0o700)
        self._cache = FileSystemCache(str(directory / "entries"), threshold=max_entries, mode=0o600)

    def get(self, key: str) -> Any:
        return self._cache.get(key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        self._cache.set(key, value, timeout=max(1, int(timeout + 0.999)))

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        handle = os.open(self.directory / "locks" / name, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return None
        return _FileLock(handle)

    def ping(self) -> bool:
        return self.directory.is_dir()


def temporary_file_store() -> FileStore:
    """A private directory (on tmpfs when there is one), removed when the creating process exits."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="portal-sessions-", dir=base))
    creator = os.getpid()

    def _remove() -> None:
        if os.getpid() == creator:  # forked workers inherit this hook; only the creator cleans up
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(_remove)
    return FileStore(directory)


def session_store(shared: Store) -> Store:
    """The cache's store when other processes see it (Redis), else a file store."""
    return shared if shared.shared else temporary_file_store()
