"""Discord's OpenAPI description as a request checker: finds the operation of a method and path and
validates the body (JSON, or a multipart ``payload_json``) against its request schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).resolve().parent / "specs" / "discord-openapi.json"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    params: frozenset[str]
    body: dict[str, Any] | None
    # name -> schema of each path and query parameter
    path_schemas: dict[str, Any]
    query_schemas: dict[str, Any]
    # OpenAPI security requirements: any one of them suffices; ``{}`` means none is needed.
    security: tuple[dict[str, Any], ...]


@cache
def load_spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text("utf-8")))


@cache
def operations() -> tuple[Operation, ...]:
    spec = load_spec()
    default_security = tuple(spec.get("security") or [{}])
    found: list[Operation] = []
    for template, item in spec["paths"].items():
        pattern = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        )
        shared = item.get("parameters", [])
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            declared = [*shared, *op.get("parameters", [])]
            query = {p["name"]: p.get("schema", {}) for p in declared if p.get("in") == "query"}
            found.append(
                Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    template=template,
                    pattern=pattern,
                    params=frozenset(query),
                    body=op.get("requestBody"),
                    path_schemas={
                        p["name"]: p.get("schema", {}) for p in declared if p.get("in") == "path"
                    },
                    query_schemas=query,
                    security=tuple(op.get("security", default_security)),
                )
            )
    # Literal segments win over parameters (``/messages/@original`` before ``/messages/{id}``).
    found.sort(key=lambda o: o.template.count("{"))
    return tuple(found)


def find_operation(method: str, path: str) -> Operation | None:
    for op in operations():
        if op.method == method.upper() and op.pattern.match(path):
            return op
    return None


@cache
def _validator(operation_id: str, content_type: str) -> Draft202012Validator:
    op = next(o for o in operations() if o.operation_id == operation_id)
    assert op.body is not None
    return _schema_validator(op.body["content"][content_type]["schema"])


def _schema_validator(schema: dict[str, Any]) -> Draft202012Validator:
    components = dict(load_spec()["components"])
    schemas = dict(components["schemas"])
    # Discord sends snowflakes as strings; discord.py sends some as JSON integers (the ids in
    # ``allowed_mentions.users``, discord/mentions.py ``AllowedMentions.to_dict``), which Discord
    # takes. The checker accepts both, and still only digits or a non-negative integer.
    snowflake = dict(schemas["SnowflakeType"])
    schemas["SnowflakeType"] = {**snowflake, "type": ["string", "integer"], "minimum": 0}
    root = {**schema, "components": {**components, "schemas": schemas}}
    return Draft202012Validator(root)


class SpecViolation(AssertionError):
    pass


def _query_value(raw: str, schema: dict[str, Any]) -> Any:
    """A query string value as the type its schema names (booleans as true/false or 1/0)."""
    kind = schema.get("type")
    if kind == "boolean" and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    if kind == "integer" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def _check_parameters(op: Operation, path: str, query: dict[str, str]) -> None:
    match = op.pattern.match(path)
    assert match is not None
    values = [
        ("path", name, value, op.path_schemas.get(name, {}))
        for name, value in match.groupdict().items()
    ]
    values += [
        ("query", name, _query_value(value, op.query_schemas[name]), op.query_schemas[name])
        for name, value in query.items()
    ]
    for where, name, value, schema in values:
        errors = list(_schema_validator(schema).iter_errors(value))
        if errors:
            raise SpecViolation(
                f"{op.operation_id}: {where} parameter {name}: {errors[0].message}"[:500]
            )


def _check_security(op: Operation, headers: Mapping[str, str]) -> None:
    """Operations that need a bot token (``BotToken``, an ``Authorization: Bot ...`` header)."""
    if any(not requirement for requirement in op.security):
        return  # one of the accepted ways is no authorization at all
    authorization = headers.get("Authorization", "")
    if all("BotToken" in r for r in op.security) and not authorization.startswith("Bot "):
        raise SpecViolation(f"{op.operation_id}: needs Authorization: Bot <token>")


def check_request(
    method: str,
    path: str,
    query: dict[str, str],
    content_type: str,
    body: Any,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Return the operation id; raise SpecViolation where Discord's description disagrees: an
    unknown operation or query parameter, a path or query value off its schema, a missing bot
    token where the operation requires one (when ``headers`` are given), a body off its schema."""
    op = find_operation(method, path)
    if op is None:
        raise SpecViolation(f"{method} {path}: no such operation in Discord's API")
    unknown = set(query) - op.params
    if unknown:
        raise SpecViolation(f"{op.operation_id}: unknown query parameters {sorted(unknown)}")
    _check_parameters(op, path, query)
    if headers is not None:
        _check_security(op, headers)
    if op.body is None:
        if body not in (None, b"", {}):
            raise SpecViolation(f"{op.operation_id}: takes no body")
        return op.operation_id
    if body is None:
        if op.body.get("required"):
            raise SpecViolation(f"{op.operation_id}: a body is required")
        return op.operation_id
    if content_type not in op.body["content"]:
        raise SpecViolation(f"{op.operation_id}: content type {content_type} not accepted")
    errors = sorted(_validator(op.operation_id, content_type).iter_errors(body), key=str)
    if errors:
        best = errors[0]
        where = "/".join(str(p) for p in best.absolute_path)
        raise SpecViolation(f"{op.operation_id}: {where}: {best.message}"[:2000])
    return op.operation_id
