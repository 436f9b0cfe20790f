"""The result contract: ``result.json`` checked against the project's JSON schema.

``contract/drill-result.schema.json`` in this repository is *the* schema: the harness writes
against it and the report reads through it. It starts as a copy of the shared version 1 and
may only grow (a new ``schema_version``, new optional fields); ``tests/test_contract.py``
checks that against the shared original. Errors are one line each, in the report's words
(``measurements lacks rpo_s``, ``status 'done' is not one of ...``).
"""

from __future__ import annotations

import copy
import json
import reprlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from mpac_drill import PROJECT_ROOT
from mpac_drill.errors import HarnessError

#: The schema every ``result.json`` is written and read against.
SCHEMA_PATH = PROJECT_ROOT / "contract" / "drill-result.schema.json"
#: How the document itself is named in errors about its top level.
ROOT = "result.json"

_Validator = jsonschema.Draft202012Validator
_FORMATS = jsonschema.FormatChecker(formats=())
_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40
_SHORT.maxlist = _SHORT.maxdict = 4
_TYPES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """An ISO-8601 time with a UTC offset (what the report reads with ``fromisoformat``)."""
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError("is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError("has no UTC offset")
    return True


@cache
def _validator_at(path: Path) -> Validator:
    """The validator of the schema file at ``path``, read once (failures are not cached)."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"contract schema {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"contract schema {path} is unreadable: {_line(str(exc))}") from None
    return _compiled(schema, str(path))


def _compiled(schema: Any, name: str) -> Validator:
    try:
        _Validator.check_schema(schema)
    except SchemaError as exc:
        raise HarnessError(f"contract schema {name} is not a valid schema: {exc.message}") from None
    return _Validator(schema, format_checker=_FORMATS)


def load_schema() -> dict[str, Any]:
    """The project's contract schema as a dict (a copy: change it freely)."""
    return copy.deepcopy(_validator_at(SCHEMA_PATH).schema)


def schema_version() -> int:
    """The newest ``schema_version`` the project's schema accepts (what the harness writes)."""
    version = load_schema()["properties"]["schema_version"]
    return int(version["const"]) if "const" in version else max(version["enum"])


def validate_result(data: Any, schema: Mapping[str, Any] | None = None) -> list[str]:
    """One-line errors of ``data`` against the contract, empty when valid.

    Never raises on any JSON value. ``schema`` replaces the project's schema (the
    compatibility test passes the shared original); a missing or unreadable project schema
    raises ``HarnessError``.
    """
    validator = _validator_at(SCHEMA_PATH) if schema is None else _compiled(schema, "given")
    try:
        return list(_messages(validator.iter_errors(data)))
    except RecursionError:
        return [f"{ROOT} is nested too deeply to check"]


def validate_document(data: Any, schema_path: Path) -> list[str]:
    """One-line errors of ``data`` against another contract of the project (the schema file
    at ``schema_path``, e.g. ``contract/check-result.schema.json``), empty when valid; a
    missing or unreadable schema raises ``HarnessError``."""
    validator = _validator_at(schema_path)
    try:
        return list(_messages(validator.iter_errors(data)))
    except RecursionError:
        return [f"{schema_path.name}: the document is nested too deeply to check"]


# ---------------------------------------------------------------- wording


def _messages(errors: Iterator[ValidationError]) -> Iterator[str]:
    """The errors in schema order, one line each; a field's missing names in one line."""
    lacking: set[str] = set()
    for error in errors:
        where = _where(error.absolute_path)
        if error.validator == "required":
            if where in lacking:
                continue
            lacking.add(where)
            names = [str(k) for k in error.validator_value if k not in error.instance]
            yield f"{where} lacks {', '.join(names)}"
        else:
            yield _message(error, where)


def _message(error: ValidationError, where: str) -> str:
    value, expected = _short(error.instance), error.validator_value
    match error.validator:
        case "pattern":
            return f"{where} must match {expected}, not {value}"
        case "type" | "minimum" | "minLength":
            return f"{where} must {_expectation(error.schema)}, not {value}"
        case "const":
            return f"{where} {value} is not {_short(expected)}"
        case "enum":
            return f"{where} {value} is not one of {', '.join(map(str, expected))}"
        case "format" if error.cause is not None:
            return f"{where} {_line(str(error.cause))}: {value}"
        case _:
            return f"{where} fails {error.validator}: {_line(error.message)}"


def _expectation(schema: Any) -> str:
    """What the field's schema asks for, after "must": ``be a number >= 0 or null``."""
    if not isinstance(schema, Mapping):
        return "match the contract"
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    extra = schema.get("additionalProperties")
    if kinds == ["object"] and isinstance(extra, Mapping) and isinstance(extra.get("type"), str):
        noun = _TYPES.get(str(extra["type"]), "a value").split(" ", 1)[-1]
        return f"map names to {noun}s"
    words = []
    for kind in kinds:
        word = _TYPES.get(kind, str(kind))
        if kind == "string" and schema.get("format") == "date-time":
            word = "an ISO-8601 time"
        elif kind == "string" and schema.get("minLength") == 1:
            word = "a non-empty string"
        elif kind in ("integer", "number") and "minimum" in schema:
            word += f" >= {schema['minimum']}"
        words.append(word)
    return "be " + (" or ".join(words) or "valid")


def _where(path: Any) -> str:
    """``measurements.load.requests``, ``verdicts[0].passed``; the top level is ``result.json``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{_short(part)}]"
    return out if out[:1].isidentifier() else ROOT + out


def _short(value: Any) -> str:
    """A value as one short line (a repr, clipped)."""
    try:
        return _line(_SHORT.repr(value))
    except (ValueError, RecursionError):
        return f"<{type(value).__name__}>"


def _line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "SCHEMA_PATH",
    "load_schema",
    "schema_version",
    "validate_document",
    "validate_result",
]
