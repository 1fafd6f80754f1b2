"""The widget cache without Redis: files every gunicorn worker of this pod shares (on tmpfs).

With a store in each worker, the browser's polls, which land on either worker, met two caches:
during an outage one worker showed the last good data, marked stale, and the other, which had
none of its own, "Data unavailable", so the card changed at every other poll; and each worker
called every upstream for itself. `PodStore` gives the workers one cache, as Redis gives every
replica one: one fetch per key for the pod, the last good data and the failure records seen by
every worker, the widget cache's locks and invalidation marks kept across processes.

Each key is a file (`FileStore`): its expiry, its key (for `delete_prefix`), then the signed
value, replaced whole by a rename. A file's tag (`tag`) is its inode and modification time, one
stat. A write that must not land after a newer invalidation (`set_unless_newer`) and the
invalidation's mark (`set_counter`) take one lock of the pod, so that the check and the write
are one step for every other process, as the Lua script makes them in Redis.

tmpfs is memory, and a pod's /dev/shm is small (64 MiB unless the runtime is told otherwise):
the sweep keeps the entries within `max_entries` files and `max_bytes` (half of that), a write
the full space refuses sweeps and tries once more, and one that fails still is logged and
dropped: the fetched data is served all the same.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .codec import Codec
from .stores import (
    CacheStore,
    FallbackObserver,
    FallbackStore,
    FileStore,
    LocalStore,
    Lock,
    RedisStore,
    _NoLock,
    _read_unexpired,
    _whole_seconds,
    temporary_directory,
)

log = logging.getLogger(__name__)

WRITE_FAILURE_LOG_EVERY = 60.0  # s between two warnings of failing writes, per process
# Half of a pod's usual /dev/shm (64 MiB): the session records' files (without Redis) share it.
MAX_BYTES = 32 * 1024 * 1024
# The widget cache's invalidation counter and marks: never evicted for room (they expire), or a
# fetch that began before an invalidation could write its older value after it.
COUNTERS = "inval:"


class PodStore(FileStore):
    """A `CacheStore` in files the pod's workers share: the widget cache's store without Redis."""

    shared = True

    def __init__(
        self, directory: Path, codec: Codec, max_entries: int = 5000, max_bytes: int = MAX_BYTES
    ) -> None:
        super().__init__(directory, codec)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._guard = str(directory / "locks" / "guarded-writes")
        self._warned_at = 0.0
        self._warn_lock = threading.Lock()

    # --- reading -----------------------------------------------------------------------------

    def _open_entry(self, key: str) -> tuple[bytes, os.stat_result] | None:
        """The file's bytes and its stat (of the same open file), or None when there is none."""
        try:
            with open(self._path(key), "rb") as handle:
                return handle.read(), os.fstat(handle.fileno())
        except OSError:
            return None

    @staticmethod
    def _fields(raw: bytes) -> tuple[bytes, bytes]:
        """A file's expiry (epoch s) and its stored value (after the key's line)."""
        expires, _, rest = raw.partition(b"\n")
        _, _, value = rest.partition(b"\n")
        return expires, value

    def _value(self, raw: bytes, key: str) -> Any:
        return _read_unexpired(self.codec, *self._fields(raw), key)

    @staticmethod
    def _tag_of(stat: os.stat_result) -> bytes:
        return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}".encode()

    def get(self, key: str) -> Any:
        found = self._open_entry(key)
        return None if found is None else self._value(found[0], key)

    def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        found = self._open_entry(key)
        if found is None:
            return None, None
        value = self._value(found[0], key)
        return value, (self._tag_of(found[1]) if value is not None else None)

    def tag(self, key: str) -> bytes | None:
        try:
            return self._tag_of(os.stat(self._path(key)))
        except OSError:
            return None

    # --- writing -----------------------------------------------------------------------------

    def set(self, key: str, value: Any, timeout: float) -> None:
        head = f"{time.time() + _whole_seconds(timeout):.3f}\n{json.dumps(key)}\n".encode()
        data = head + self.codec.dumps(value)
        try:
            self._write(key, data)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                self._write_failed(exc)
                return
            self.sweep()  # the space is full: make room (expired, then the oldest), try once more
            try:
                self._write(key, data)
            except OSError as again:
                self._write_failed(again)
                return
        if random.random() < self.SWEEP_CHANCE:
            self.sweep()

    def copy(self, source: str, target: str, timeout: float) -> bool:
        found = self._open_entry(source)
        if found is None:
            return False
        expires, value = self._fields(found[0])
        try:
            if float(expires) <= time.time():
                return False
        except ValueError:
            return False
        head = f"{time.time() + _whole_seconds(timeout):.3f}\n{json.dumps(target)}\n".encode()
        try:
            self._write(target, head + value)
        except OSError as exc:
            self._write_failed(exc)
            return False
        return True

    def _write_failed(self, exc: OSError) -> None:
        with self._warn_lock:
            now = time.monotonic()
            if self._warned_at and now - self._warned_at < WRITE_FAILURE_LOG_EVERY:
                return
            self._warned_at = now
        log.warning(
            "cache entry not written: the pod's cache directory refused it",
            extra={"event": "cache_write_failed", "directory": str(self.directory), "error": str(exc)},
        )

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._write_failed(exc)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        """The key's lock for the pod; this process's alone when the directory refuses a lock file."""
        try:
            return super().try_lock(key, ttl)
        except OSError as exc:
            self._write_failed(exc)
            return _NoLock()

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """The pod's lock of guarded writes and invalidation marks (held for one small write)."""
        try:
            fd = os.open(self._guard, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:  # the writes that follow will most likely fail too, and say so
            self._write_failed(exc)
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _keyed_files(self) -> Iterator[tuple[str, Path]]:
        """Each entry's key and file, read from the file's head."""
        for entry in self._files():
            try:
                with entry.open("rb") as handle:
                    handle.readline()
                    key = json.loads(handle.readline() or b'""')
            except (OSError, ValueError):
                continue
            if isinstance(key, str):
                yield key, entry

    def keys(self) -> list[str]:
        """Every key held now, expired or not (for inspection)."""
        return [key for key, _ in self._keyed_files()]

    def delete_prefix(self, prefix: str) -> int:
        """Every entry whose key starts with `prefix` (reads each file's head: a rare call)."""
        deleted = 0
        for key, entry in self._keyed_files():
            if key.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    deleted += 1
        return deleted

    def incr(self, key: str) -> int:
        with self._guarded():
            value = self.read_counter(key) + 1
            self.set(key, value, 86400)
            return value

    def read_counter(self, key: str) -> int:
        found = self.get(key)
        return found if isinstance(found, int) else 0

    def set_counter(self, key: str, value: int, timeout: float) -> None:
        with self._guarded():
            self.set(key, value, timeout)

    def set_unless_newer(
        self, key: str, value: Any, timeout: float, guards: Sequence[str], seen: int
    ) -> tuple[bool, bytes | None]:
        with self._guarded():
            if any(self.read_counter(guard) > seen for guard in guards):
                return False, None
            self.set(key, value, timeout)
            return True, self.tag(key)  # of this value: no guarded write can replace it meanwhile

    # --- size --------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Remove expired entries, then the oldest written while more than `max_entries` remain
        or they hold more than `max_bytes` (invalidation counters and marks excepted), and the
        temporary files of writes that never finished."""
        now = time.time()
        self._drop_abandoned(now)
        kept: list[tuple[float, int, Path]] = []
        for entry in self._files():
            try:
                with entry.open("rb") as handle:
                    expires = float(handle.readline() or 0)
                    key = json.loads(handle.readline() or b'""')
                    stat = os.fstat(handle.fileno())
                if expires <= now:
                    entry.unlink()
                elif not (isinstance(key, str) and key.startswith(COUNTERS)):
                    kept.append((stat.st_mtime, stat.st_size, entry))
            except (OSError, ValueError):
                continue
        kept.sort()
        held = sum(size for _, size, _ in kept)
        for index, (_, size, entry) in enumerate(kept):
            if len(kept) - index <= self.max_entries and held <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                entry.unlink()
            held -= size


def build_store(
    redis_url: str | None,
    password: str | None,
    key_prefix: str,
    max_entries: int,
    observer: FallbackObserver,
    codec: Codec,
) -> CacheStore:
    """Redis (with an in-process fallback) when a URL is configured, else the pod's files."""
    if not redis_url:
        return PodStore(temporary_directory("portal-cache-"), codec, max_entries)
    local = LocalStore(max_entries)
    return FallbackStore(RedisStore.from_url(redis_url, password, key_prefix, codec), local, observer)
