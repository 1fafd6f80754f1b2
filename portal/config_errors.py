"""The words of a refused configuration: each wrong key by its path, what is wrong in terms an
admin reads (not pydantic's), and for a misspelt key the one it resembles."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .url_credentials import masked

# Pydantic's wording for a value of the wrong shape, said as what the file should hold.
EXPECTED = {
    "tuple_type": "a list is expected, e.g. [a, b]",
    "list_type": "a list is expected, e.g. [a, b]",
    "set_type": "a list is expected, e.g. [a, b]",
    "dict_type": "a mapping of keys is expected",
    "model_type": "a mapping of keys is expected",
    "model_attributes_type": "a mapping of keys is expected",
    "string_type": "a text is expected",
    "int_type": "a whole number is expected",
    "int_parsing": "a whole number is expected",
    "int_from_float": "a whole number is expected",
    "float_type": "a number is expected",
    "float_parsing": "a number is expected",
    "bool_type": "true or false is expected",
    "bool_parsing": "true or false is expected",
    "url_parsing": "not a full URL: give its scheme and host, e.g. https://tool.example.org/",
    "url_type": "not a full URL: give its scheme and host, e.g. https://tool.example.org/",
}
SHOWN_KNOWN = 16  # an unknown key lists the known ones when there are at most this many


def key_path(location: tuple[str | int, ...]) -> str:
    """('tiles', 2, 'url') -> 'tiles[2].url'."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def clean_location(error: Mapping[str, Any]) -> tuple[str | int, ...]:
    """The error's path of keys, without what pydantic adds to it (the union member tried,
    'str' or 'dict[...]', and validator tags)."""
    return tuple(
        part
        for part in error["loc"]
        if not (isinstance(part, str) and ("[" in part or part in ("str", "function-after")))
    )


def describe(error: Mapping[str, Any], model: type[BaseModel] | None = None) -> str:
    """What is wrong, in words: `model` (the whole file's) lets an unknown key name the known ones."""
    kind = error["type"]
    if kind == "extra_forbidden":
        location = clean_location(error)
        key = str(location[-1]) if location else ""
        known = _keys_at(model, location[:-1]) if model is not None else ()
        elsewhere = _places_of(model, key) if model is not None else ()
        if 0 < len(elsewhere) <= 3 and key not in known:
            return f"unknown key here (it belongs under {' or '.join(elsewhere)})"
        return "unknown key" + _hint(key, known)
    if kind == "missing":
        return "required key is missing"
    given = error.get("input")
    message = EXPECTED.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    # A mapping or a list given is not quoted back: it may hold anything, a secret included.
    if "input" in error and not isinstance(given, dict | list | tuple):
        shown = quoted(given)
        return message if shown in message else f"{message} (got {shown})"
    return message


def quoted(value: object) -> str:
    """A refused value as its message quotes it: a URL's credentials masked (logs keep it)."""
    return repr(masked(value)) if isinstance(value, str) and "://" in value else repr(value)


def _hint(key: str, known: tuple[str, ...]) -> str:
    """' (did you mean 'status'?)', or the keys allowed there when they are few, or nothing."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if 0 < len(known) <= SHOWN_KNOWN:
        return f" (known here: {', '.join(known)})"
    return ""


def _keys_at(model: type[BaseModel], location: tuple[str | int, ...]) -> tuple[str, ...]:
    """The keys the mapping at `location` of `model` may hold; () when it is not a model's."""
    current: type[BaseModel] | None = model
    for part in location:
        if isinstance(part, int):
            continue  # an item of a list: the list's annotation already led to the item's model
        field = current.model_fields.get(part) if current is not None else None
        current = _model_in(field.annotation) if field is not None else None
        if current is None:
            return ()
    return tuple(current.model_fields) if current is not None else ()


def _places_of(model: type[BaseModel], key: str, where: str = "") -> tuple[str, ...]:
    """The paths of the sections of `model` that have a key named `key` ('auth.oidc')."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        if name == key and where:
            found.append(where)
        inner = _model_in(field.annotation)
        if inner is not None and inner is not model:
            found += _places_of(inner, key, f"{where}.{name}" if where else name)
    return tuple(dict.fromkeys(found))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or inside Optional, Annotated, tuple[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def as_helm_values(message: str) -> str:
    """A refusal with each key named as the Helm chart's values name it: the file's keys under
    `config.`, the secrets under `secrets.env.` (what the chart's check-config Job prints)."""
    message = re.sub(r"(?m)^(PORTAL_[A-Z0-9_]+:)", r"secrets.env.\1", message)
    message = re.sub(r"(?m)^(\s+)(?=[^\s:.\[(]+[.\[:])", r"\1config.", message)
    return re.sub(r"(?m)^(\s+)\(top level\)", r"\1config", message)
