"""Describe plugin options for humans and tools (``plugins --json``, docs, editors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def describe_options(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One entry per option: name, type, required, default, secret, description."""
    schema = model.model_json_schema(mode="validation")
    props = schema.get("properties", {})
    defs = schema.get("$defs", {})
    out = []
    for name, info in model.model_fields.items():
        prop = props.get(info.alias or name, {})
        out.append(
            {
                "name": info.alias or name,
                "type": type_label(prop, defs),
                "required": info.is_required(),
                "default": _default(info),
                "secret": is_secret(info),
                "description": info.description or "",
            }
        )
    return out


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of the options declared as `Secret`."""
    return [name for name, info in model.model_fields.items() if is_secret(info)]


def is_secret(info: FieldInfo) -> bool:
    annotation = info.annotation
    if annotation is SecretStr:
        return True
    return SecretStr in getattr(annotation, "__args__", ())


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return None
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined or isinstance(value, SecretStr):
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        import orjson

        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return str(value)


def type_label(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short readable type from a JSON-schema property: ``string``, ``list[string]``…"""
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        return type_label(target, defs) if "enum" in target else "table"
    if "enum" in prop:
        return "one of " + ", ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if "anyOf" in prop:
        labels = [type_label(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " | ".join(dict.fromkeys(labels)) or "null"
    kind = prop.get("type")
    if kind == "array":
        return f"list[{type_label(prop.get('items', {}), defs)}]"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"table[string, {type_label(extra, defs)}]"
        return "table"
    if prop.get("format") == "password":
        return "secret"
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(
        kind or "", kind or "any"
    )
