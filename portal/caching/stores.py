"""Key-value stores shared by the widget cache and the session records.

- `LocalStore`: in this process only (Redis' fallback for the widget cache).
- `RedisStore`: every worker of every replica; bounded timeouts so a dead Redis cannot hang.
- `FallbackStore`: Redis first, the in-process store while Redis cannot be reached.
- `FileStore`: files every gunicorn worker of one pod shares (session records without Redis);
  `pod_store.PodStore` adds what the widget cache needs (its store without Redis).

Every store has get, set, delete, a non-blocking lock and ping (`Store`). The widget cache needs
three more primitives (`CacheStore`): delete by prefix, a counter, and a write that lands only if
no invalidation newer than a given counter value happened (atomic in Redis, a Lua script), so a
fetch that began before an invalidation can never write its older value after it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import redis

from .codec import TAG_LENGTH, Codec, ValueRefused

log = logging.getLogger(__name__)


class Lock(Protocol):
    def release(self) -> None: ...


class Store(Protocol):
    """Where entries live; `try_lock` returns None when another process holds the key."""

    @property
    def shared(self) -> bool:
        """True when other processes see the same entries."""
        ...

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: float) -> None: ...
    def add(self, key: str, value: Any, timeout: float) -> bool:
        """Set `key` only if it is absent (at once, for every process that shares the store)."""
        ...

    def delete(self, key: str) -> None: ...
    def try_lock(self, key: str, ttl: float) -> Lock | None: ...
    def ping(self) -> bool: ...


class CacheStore(Store, Protocol):
    """A store the widget cache can invalidate in."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with `prefix`; how many there were."""
        ...

    def incr(self, key: str) -> int:
        """Add one to a counter (0 when missing) and return it."""
        ...

    def read_counter(self, key: str) -> int:
        """A counter's value (0 when missing)."""
        ...

    def set_counter(self, key: str, value: int, timeout: float) -> None:
        """Set a counter (as `incr` and `set_unless_newer` read it)."""
        ...

    def set_unless_newer(
        self, key: str, value: Any, timeout: float, guards: Sequence[str], seen: int
    ) -> tuple[bool, bytes | None]:
        """Set `key` unless one of the `guards` counters holds more than `seen`: whether it was
        set, and the tag of the value set (as `tag` will read it; None: not set, or no tags)."""
        ...

    def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        """The value and a short tag that names it (None: this store has no tags)."""
        ...

    def copy(self, source: str, target: str, timeout: float) -> bool:
        """Store `source`'s value under `target` as it is stored (neither decoded nor encoded
        again: a board of 1,000 people takes 0.2 s of CPU to read and write back); whether
        there was one to copy."""
        ...

    def tag(self, key: str) -> bytes | None:
        """The tag of the value stored now, without reading the value (None: missing, or no tags).

        A process that kept a decoded copy of a value asks this to know that the store still
        holds that very value, instead of reading and decoding it again.
        """
        ...


def _read(codec: Codec, raw: bytes, key: str) -> Any:
    """A stored value, or None (a miss) when the portal did not write it."""
    try:
        return codec.loads(raw)
    except ValueRefused as exc:
        fields = {"event": "store_value_refused", "key": key[:120], "error": str(exc)}
        log.warning("stored value refused", extra=fields)
        return None


def _read_unexpired(codec: Codec, expires: bytes, raw: bytes, key: str) -> Any:
    """A stored value whose file gives its expiry (epoch s), or None once that has passed."""
    try:
        if float(expires) <= time.time():
            return None
    except ValueError:
        return None
    return _read(codec, raw, key)


ABANDONED_AFTER = 60.0  # s after which a temporary file is a write that will never finish
LOCK_TRIES = 3  # opens of a lock file that its holder removed as we opened it, before giving up


def _whole_seconds(timeout: float) -> int:
    return max(1, int(timeout + 0.999))


class _NoLock:
    """Within one process the per-key flight already serialises fetches."""

    def release(self) -> None:
        return None


# --- in process ---------------------------------------------------------------------------------


class LocalStore:
    """A bounded in-process map with expiry; the least recently written go first when full."""

    shared = False

    def __init__(self, max_entries: int = 5000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                return None
            expires, value = found
            if expires <= self._clock():
                del self._data[key]
                return None
            return value

    def set(self, key: str, value: Any, timeout: float) -> None:
        with self._lock:
            self._set(key, value, timeout)

    def add(self, key: str, value: Any, timeout: float) -> bool:
        with self._lock:
            found = self._data.get(key)
            if found is not None and found[0] > self._clock():
                return False
            self._set(key, value, timeout)
            return True

    def _set(self, key: str, value: Any, timeout: float) -> None:
        self._data[key] = (self._clock() + _whole_seconds(timeout), value)
        self._data.move_to_end(key)
        if len(self._data) > self.max_entries:
            now = self._clock()
            for stale in [k for k, (expires, _) in self._data.items() if expires <= now]:
                del self._data[stale]
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def keys(self) -> list[str]:
        """Every key held now (for inspection)."""
        with self._lock:
            return list(self._data)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._data if key.startswith(prefix)]
            for key in doomed:
                del self._data[key]
            return len(doomed)

    def incr(self, key: str) -> int:
        with self._lock:
            value = self._counter(key) + 1
            self._set(key, value, 86400)
            return value

    def read_counter(self, key: str) -> int:
        with self._lock:
            return self._counter(key)

    def set_counter(self, key: str, value: int, timeout: float) -> None:
        self.set(key, value, timeout)

    def _counter(self, key: str) -> int:
        found = self._data.get(key)
        return found[1] if found is not None and isinstance(found[1], int) else 0

    def set_unless_newer(
        self, key: str, value: Any, timeout: float, guards: Sequence[str], seen: int
    ) -> tuple[bool, bytes | None]:
        with self._lock:
            if any(self._counter(guard) > seen for guard in guards):
                return False, None
            self._set(key, value, timeout)
            return True, None

    def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        return self.get(key), None  # in-process values need no decoding: nothing to spare

    def copy(self, source: str, target: str, timeout: float) -> bool:
        value = self.get(source)
        if value is None:
            return False
        self.set(target, value, timeout)
        return True

    def tag(self, key: str) -> bytes | None:
        return None

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        return _NoLock()

    def ping(self) -> bool:
        return True


# --- Redis --------------------------------------------------------------------------------------

# Set KEYS[1] to ARGV[1] for ARGV[2] seconds unless a guard counter (KEYS[2..]) exceeds ARGV[3].
_SET_UNLESS_NEWER = """
for i = 2, #KEYS do
  local mark = tonumber(redis.call('GET', KEYS[i]) or '0')
  if mark and mark > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class RedisStore:
    """Values as signed JSON (codec.py) under `key_prefix`, on a client whose every call is bounded.

    A value the portal did not write (another application's, a forged one, a pickle from an
    older version) is refused and read as missing.
    """

    shared = True

    def __init__(self, client: redis.Redis, key_prefix: str, codec: Codec) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.codec = codec
        self._set_unless_newer = client.register_script(_SET_UNLESS_NEWER)

    @classmethod
    def from_url(cls, url: str, password: str | None, key_prefix: str, codec: Codec) -> RedisStore:
        """Connect lazily; every operation is bounded so a dead Redis cannot hang a request."""
        client = redis.Redis.from_url(
            url,
            password=password,
            socket_connect_timeout=0.3,
            socket_timeout=0.5,
            health_check_interval=30,
        )
        return cls(client, key_prefix, codec)

    def _key(self, key: str) -> str:
        return self.key_prefix + key

    def _raw(self, key: str) -> bytes | None:
        raw: bytes | None = self.client.get(self._key(key))  # type: ignore[assignment]  # sync client
        return raw

    def get(self, key: str) -> Any:
        raw = self._raw(key)
        return None if raw is None else _read(self.codec, raw, key)

    def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        raw = self._raw(key)
        if raw is None:
            return None, None
        value = _read(self.codec, raw, key)
        return value, (raw[:TAG_LENGTH] if value is not None else None)

    def tag(self, key: str) -> bytes | None:
        found: bytes = self.client.getrange(self._key(key), 0, TAG_LENGTH - 1)  # type: ignore[assignment]
        return found if len(found) == TAG_LENGTH else None

    def set(self, key: str, value: Any, timeout: float) -> None:
        self.client.set(self._key(key), self.codec.dumps(value), ex=_whole_seconds(timeout))

    def copy(self, source: str, target: str, timeout: float) -> bool:
        raw = self._raw(source)  # the signature covers the value, not its key: it holds as it is
        if raw is None:
            return False
        self.client.set(self._key(target), raw, ex=_whole_seconds(timeout))
        return True

    def add(self, key: str, value: Any, timeout: float) -> bool:
        stored = self.client.set(self._key(key), self.codec.dumps(value), ex=_whole_seconds(timeout), nx=True)
        return bool(stored)

    def delete(self, key: str) -> None:
        self.client.delete(self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        pattern = self._key(prefix).replace("\\", "\\\\")
        for special in "*?[]":
            pattern = pattern.replace(special, "\\" + special)
        doomed = list(self.client.scan_iter(match=pattern + "*", count=500))
        if doomed:
            self.client.delete(*doomed)
        return len(doomed)

    def incr(self, key: str) -> int:
        value: int = self.client.incr(self._key(key))  # type: ignore[assignment]  # sync client
        return value

    def read_counter(self, key: str) -> int:
        raw = self._raw(key)
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    def set_counter(self, key: str, value: int, timeout: float) -> None:
        self.client.set(self._key(key), value, ex=_whole_seconds(timeout))

    def set_unless_newer(
        self, key: str, value: Any, timeout: float, guards: Sequence[str], seen: int
    ) -> tuple[bool, bytes | None]:
        keys = [self._key(key), *(self._key(guard) for guard in guards)]
        raw = self.codec.dumps(value)
        done = self._set_unless_newer(keys=keys, args=[raw, _whole_seconds(timeout), seen])
        return (True, raw[:TAG_LENGTH]) if done else (False, None)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        lock = self.client.lock(self._key(f"lock:{key}"), timeout=ttl, blocking=False)
        return lock if lock.acquire(blocking=False) else None

    def ping(self) -> bool:
        return bool(self.client.ping())


class FallbackObserver(Protocol):
    def backend_fallback(self, active: bool) -> None:
        """The shared store became unreachable (True) or came back (False)."""


class FallbackStore:
    """Redis first; while Redis is unreachable, an in-process store (rechecked every few s)."""

    def __init__(
        self,
        primary: RedisStore,
        fallback: Any,  # a LocalStore for the cache, the pod's FileStore for session records
        observer: FallbackObserver,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.observer = observer
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._down = False
        self.down_since: float | None = None  # when (epoch s) this process found Redis away
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        return not self.degraded

    @property
    def degraded(self) -> bool:
        """True while the in-process fallback is in use."""
        return self._down

    def _call(self, operation: str, *args: Any) -> Any:
        if self._down and self._clock() < self._down_until:
            return getattr(self.fallback, operation)(*args)
        try:
            result = getattr(self.primary, operation)(*args)
        except redis.RedisError as exc:
            self._mark_down(exc)
            return getattr(self.fallback, operation)(*args)
        if self._down:
            self._mark_up()
        return result

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = self._clock() + self.retry_after
            if self._down:
                return
            self._down = True
            self.down_since = time.time()
        log.warning(
            "shared store unreachable, using the in-process store",
            extra={"event": "cache_fallback", "error": type(exc).__name__},
        )
        self.observer.backend_fallback(True)

    def _mark_up(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
            self.down_since = None
        log.warning("shared store is back", extra={"event": "cache_recovered"})
        self.observer.backend_fallback(False)

    def get(self, key: str) -> Any:
        return self._call("get", key)

    def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        found: tuple[Any, bytes | None] = self._call("get_tagged", key)
        return found

    def tag(self, key: str) -> bytes | None:
        found: bytes | None = self._call("tag", key)
        return found

    def set(self, key: str, value: Any, timeout: float) -> None:
        self._call("set", key, value, timeout)

    def copy(self, source: str, target: str, timeout: float) -> bool:
        copied: bool = self._call("copy", source, target, timeout)
        return copied

    def add(self, key: str, value: Any, timeout: float) -> bool:
        added: bool = self._call("add", key, value, timeout)
        return added

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def delete_prefix(self, prefix: str) -> int:
        deleted: int = self._call("delete_prefix", prefix)
        return deleted

    def incr(self, key: str) -> int:
        value: int = self._call("incr", key)
        return value

    def read_counter(self, key: str) -> int:
        value: int = self._call("read_counter", key)
        return value

    def set_counter(self, key: str, value: int, timeout: float) -> None:
        self._call("set_counter", key, value, timeout)

    def set_unless_newer(
        self, key: str, value: Any, timeout: float, guards: Sequence[str], seen: int
    ) -> tuple[bool, bytes | None]:
        done: tuple[bool, bytes | None] = self._call("set_unless_newer", key, value, timeout, guards, seen)
        return done

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        lock = self._call("try_lock", key, ttl)
        return None if lock is None else _SafeLock(lock)

    def ping(self) -> bool:
        try:
            ok = self.primary.ping()
        except redis.RedisError as exc:
            self._mark_down(exc)
            return False
        if ok and self._down:
            self._mark_up()
        return ok


class _SafeLock:
    """Releasing a Redis lock must not fail a request when Redis went away meanwhile."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    def release(self) -> None:
        try:
            self._lock.release()
        except redis.RedisError:
            pass  # the lock expires on its own (its TTL)
        except Exception as exc:  # redis LockError (lost ownership) is not a RedisError
            log.debug("lock release failed: %s", exc)


# --- files (session records without Redis) --------------------------------------------------


class _FileLock:
    """An flock on a file: released by `release()`, or by the kernel if the process dies.

    The file goes with the lock, so that a lock per session or per person's key leaves nothing
    behind. It is removed while still held: whoever opened it meanwhile and locks it next finds
    it no longer at its path, and tries again on a new one (`FileStore.try_lock`).
    """

    def __init__(self, handle: int, path: str) -> None:
        self._handle = handle
        self._path = path

    def release(self) -> None:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        finally:
            os.close(self._handle)


def _still_at(handle: int, path: str) -> bool:
    """Whether the open file `handle` is the one at `path` (not removed or replaced since)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle)
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


class FileStore:
    """One file per key in a directory every gunicorn worker of this pod shares (on tmpfs).

    Without Redis, an in-process store would log a user out whenever the next request reached
    another worker; a small file per session is shared by all of them and costs one read. Each
    file holds its expiry and the signed JSON value (codec.py); it is replaced whole (a rename),
    so a reader never sees half a value.
    """

    shared = True
    SWEEP_CHANCE = 0.01

    def __init__(self, directory: Path, codec: Codec) -> None:
        self.directory = directory
        self.codec = codec
        (directory / "locks").mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "entries").mkdir(parents=True, exist_ok=True, mode=0o700)
        self._entries = str(directory / "entries")
        self._locks = str(directory / "locks")

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def _path(self, key: str) -> Path:
        return Path(self._entries, self._name(key))

    def get(self, key: str) -> Any:
        try:
            raw = self._path(key).read_bytes()
        except OSError:
            return None
        expires, _, value = raw.partition(b"\n")
        return _read_unexpired(self.codec, expires, value, key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        expires = f"{time.time() + _whole_seconds(timeout):.3f}\n".encode()
        self._write(key, expires + self.codec.dumps(value))
        if random.random() < self.SWEEP_CHANCE:
            self.sweep()

    def _write(self, key: str, data: bytes) -> None:
        """The key's file replaced whole by `data` (a temporary file, readable by this user only,
        renamed over it); the temporary file is removed if that fails."""
        path = self._path(key)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:  # writes it all, or raises (a full tmpfs: ENOSPC)
                handle.write(data)
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def _files(self) -> list[Path]:
        """The entries' files (not the temporary files of writes under way)."""
        return [path for path in Path(self._entries).iterdir() if "." not in path.name]

    def _drop_abandoned(self, now: float) -> None:
        """Temporary files a worker killed in the middle of a write left behind."""
        for path in Path(self._entries).iterdir():
            with contextlib.suppress(OSError):
                if "." in path.name and now - path.stat().st_mtime > ABANDONED_AFTER:
                    path.unlink()

    def sweep(self) -> None:
        """Remove the files of expired entries (now and then, from `set`), and the temporary
        files of writes that never finished."""
        now = time.time()
        self._drop_abandoned(now)
        for entry in self._files():
            try:
                with entry.open("rb") as handle:
                    expires = float(handle.readline() or 0)
                if expires <= now:
                    entry.unlink()
            except (OSError, ValueError):
                continue

    def add(self, key: str, value: Any, timeout: float) -> bool:
        lock = self.try_lock(f"add:{key}", 5)  # one writer at a time for this key, across workers
        if lock is None:
            return False
        try:
            if self.get(key) is not None:
                return False
            self.set(key, value, timeout)
            return True
        finally:
            lock.release()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def exists(self, key: str) -> bool:
        """Whether a file for `key` is there (one stat: expiry not checked).

        Asked on every request (sessions.OutageLedger.waiting), hence os.path rather than pathlib.
        """
        return os.path.exists(os.path.join(self._entries, self._name(key)))

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        """The key's lock for every worker of the pod, or None while another holds it."""
        path = os.path.join(self._locks, self._name(key))
        for _ in range(LOCK_TRIES):
            handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                return None
            if _still_at(handle, path):
                return _FileLock(handle, path)
            os.close(handle)  # its holder removed it as it released it: a new file, a new try
        return None

    def ping(self) -> bool:
        return self.directory.is_dir()


def temporary_directory(prefix: str) -> Path:
    """A private directory (on tmpfs when there is one), removed when the creating process exits.

    Made before gunicorn forks, it is shared by the pod's workers.
    """
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    creator = os.getpid()

    def _remove() -> None:
        if os.getpid() == creator:  # forked workers inherit this hook; only the creator cleans up
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(_remove)
    return directory


def temporary_file_store(codec: Codec) -> FileStore:
    """Session records in files every worker of this pod shares."""
    return FileStore(temporary_directory("portal-sessions-"), codec)
