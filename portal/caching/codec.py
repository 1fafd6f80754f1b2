"""Values in a shared store as data, never code: typed results to JSON and back, authenticated.

Whoever can write to the Redis the portal uses (it may be shared with other applications through
`key_prefix`) must be able neither to make the portal run code nor to feed it data it did not
write. So a stored value is JSON, never a pickle, with its types named (dataclasses, enums,
dates, tuples, sets) and rebuilt on read, and it carries an HMAC-SHA256 under a key derived from
the portal's secret: a value without a valid one is refused (the caller treats it as a miss).

Only types already imported by the portal can be rebuilt, and only dataclasses and enums.

A dataclass is stored with its shape (a digest of its fields' names and annotations): during a
rolling upgrade, or after one while older entries are still kept, a release whose dataclass
changed (a field added, renamed, or of another type under the same name) reads another shape
as a miss, rather than rebuilding it into the wrong types for its templates.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import hmac
import math
import sys
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = b"p2"  # the first bytes of every stored value: the format's version (p2: shapes)
# The format and the signature (base64 of HMAC-SHA256): the first bytes of a stored value, which
# name it (two values with the same tag are the same value), read without reading the value.
TAG_LENGTH = len(FORMAT) + 1 + 44


class ValueRefused(ValueError):
    """A stored value the portal did not write (no valid signature) or cannot rebuild."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the portal's secret (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"portal:{purpose}".encode())
    return hkdf.derive(secret.encode())


class Codec:
    """`dumps` a value to signed JSON bytes; `loads` them back, or raises ValueRefused."""

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "store-values")

    def dumps(self, value: Any) -> bytes:
        payload = orjson.dumps(_encode(value))
        return b":".join((FORMAT, self._sign(payload), payload))

    def loads(self, raw: bytes) -> Any:
        version, _, rest = raw.partition(b":")
        signature, _, payload = rest.partition(b":")
        if version != FORMAT or not hmac.compare_digest(signature, self._sign(payload)):
            raise ValueRefused("a value the portal did not write (no valid signature)")
        try:
            return _decode(orjson.loads(payload))
        except ValueRefused:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueRefused(f"a value that cannot be rebuilt: {type(exc).__name__}") from exc

    def _sign(self, payload: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest())


def _path(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


@functools.cache
def _shape(kind: type) -> str:
    """A dataclass's fields as a release defines them: names and annotations, in order."""
    fields = ";".join(f"{f.name}:{f.type}" for f in dataclasses.fields(kind) if f.init)
    return hashlib.blake2b(fields.encode(), digest_size=4).hexdigest()


def _resolve(path: str) -> type:
    """A dataclass or enum type by its path, from a module the portal already imported."""
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, type) or not (dataclasses.is_dataclass(found) or issubclass(found, enum.Enum)):
        raise ValueRefused(f"not a type a stored value may name: {path}")
    return found


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return {"$e": _path(type(value)), "v": _encode(value.value)}
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else {"$i": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"$c": _path(type(value)), "h": _shape(type(value)), "f": fields}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$da": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$t": [_encode(item) for item in value]}
    if isinstance(value, set | frozenset):
        return {"$s": [_encode(item) for item in value], "frozen": isinstance(value, frozenset)}
    if isinstance(value, dict):
        return {"$m": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    raise TypeError(f"a {type(value).__name__} cannot be stored (only data: dataclasses, enums, ...)")


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "$c" in data:
        kind = _resolve(data["$c"])
        if data.get("h") != _shape(kind):
            raise ValueRefused(f"written for another shape of {data['$c']}")
        return kind(**{k: _decode(v) for k, v in data["f"].items()})
    if "$e" in data:
        return _resolve(data["$e"])(_decode(data["v"]))
    if "$t" in data:
        return tuple(_decode(item) for item in data["$t"])
    if "$m" in data:
        return {_decode(k): _decode(v) for k, v in data["$m"]}
    if "$dt" in data:
        return dt.datetime.fromisoformat(data["$dt"])
    if "$da" in data:
        return dt.date.fromisoformat(data["$da"])
    if "$td" in data:
        return dt.timedelta(seconds=data["$td"])
    if "$s" in data:
        items = {_decode(item) for item in data["$s"]}
        return frozenset(items) if data.get("frozen") else items
    if "$f" in data:
        return float(data["$f"])
    if "$i" in data:
        return int(data["$i"])
    if "$b" in data:
        return base64.b64decode(data["$b"])
    raise ValueRefused("an unknown kind of stored value")
