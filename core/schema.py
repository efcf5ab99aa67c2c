"""Describe plugin options for humans and tools (``plugins --json``, docs, editors)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_CONSTRAINTS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
    "minLength": "min length",
    "maxLength": "max length",
    "minItems": "min items",
    "maxItems": "max items",
    "pattern": "pattern",
}


def describe_options(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One entry per option: name, type, required, default, secret, description.

    Enums and ``Literal`` options also carry ``choices``; options with bounds carry
    ``constraints`` (``{">=": 1, "<=": 100}``); an option that is itself a table (a
    nested model, or a list of them) carries its own ``options``, described the same way.
    """
    schema = model.model_json_schema(mode="validation")
    props = schema.get("properties", {})
    defs = schema.get("$defs", {})
    out = []
    for name, info in model.model_fields.items():
        prop = props.get(info.alias or name, {})
        entry: dict[str, Any] = {
            "name": info.alias or name,
            "type": type_label(prop, defs),
            "required": info.is_required(),
            "default": _default(info),
            "secret": is_secret(info),
            "description": info.description or "",
        }
        choices = _choices(prop, defs)
        if choices is not None:
            entry["choices"] = choices
        constraints = _constraints(prop)
        if constraints:
            entry["constraints"] = constraints
        nested = nested_model(info.annotation)
        if nested is not None:
            entry["options"] = describe_options(nested)
        out.append(entry)
    return out


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of the options declared as `Secret`."""
    return [name for name, info in model.model_fields.items() if is_secret(info)]


def is_secret(info: FieldInfo) -> bool:
    """Whether an option holds secrets: `Secret`, optional, or a list/table of them."""
    return _holds_secret(info.annotation)


def _holds_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``Model | None``, ``list[Model]`` or ``dict[str, Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset, dict):
        args = typing.get_args(annotation)
        if origin is dict:
            args = args[1:]
        for arg in args:
            found = nested_model(arg)
            if found is not None:
                return found
    if origin is typing.Annotated:
        return nested_model(typing.get_args(annotation)[0])
    return None


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


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in prop:
        return defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
    return prop


def _choices(prop: dict[str, Any], defs: dict[str, Any]) -> list[Any] | None:
    """The allowed values of an enum or ``Literal`` option (also inside ``| None`` and
    lists, where they are the allowed items)."""
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return list(prop["enum"])
    if "const" in prop:
        return [prop["const"]]
    if prop.get("type") == "array":
        return _choices(prop.get("items", {}), defs)
    if "anyOf" in prop:
        found: list[Any] = []
        for option in prop["anyOf"]:
            if option.get("type") == "null":
                continue
            choices = _choices(option, defs)
            if choices is None:
                return None
            found.extend(choices)
        return found or None
    return None


def _constraints(prop: dict[str, Any]) -> dict[str, Any]:
    """Bounds from the JSON schema, e.g. ``{">=": 1, "<=": 100}``."""
    found = {label: prop[key] for key, label in _CONSTRAINTS.items() if key in prop}
    for option in prop.get("anyOf", []):
        found.update(_constraints(option))
    return found


def type_label(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short readable type from a JSON-schema property: ``string``, ``list[string]``…"""
    if "$ref" in prop:
        target = _resolve(prop, defs)
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
    if kind == "string" and prop.get("format") == "uri":
        return "url"
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(
        kind or "", kind or "any"
    )
