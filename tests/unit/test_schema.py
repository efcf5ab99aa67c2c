"""Option descriptions for ``plugins --json`` and the docs: types, defaults, secrets,
choices, bounds and nested tables."""

from __future__ import annotations

import enum
from typing import Literal

import orjson
from click.testing import CliRunner
from pydantic import AnyHttpUrl, BaseModel, Field

from connectord import Options, Secret
from connectord.cli import cli
from connectord.docgen import _toml
from connectord.schema import describe_options, nested_model, secret_fields


class Region(enum.StrEnum):
    eu = "eu"
    us = "us"


class Auth(BaseModel):
    user: str = Field(description="Login.")
    password: Secret = Field(description="Password.")


class Column(BaseModel):
    name: str = Field(description="Column name.")
    kind: Literal["text", "int"] = Field("text", description="SQL type.")


class Everything(Options):
    api_key: Secret = Field(description="Key.")
    region: Region = Field(Region.eu, description="Data center.")
    mode: Literal["batch", "each"] | None = Field(None, description="Mode.")
    events: list[str] = Field(default_factory=list, description="Events to read.")
    platforms: list[Literal["ios", "android"]] = Field(["ios"], description="Platforms.")
    limits: dict[str, int] = Field(default_factory=dict, description="Per-event caps.")
    page_size: int = Field(100, ge=1, le=1000, description="Page size.")
    ratio: float | None = Field(None, gt=0, description="Sampling ratio.")
    base_url: AnyHttpUrl = Field("https://api.example.com", description="Host.")
    auth: Auth | None = Field(None, description="Basic auth.")
    columns: list[Column] = Field(default_factory=list, description="Extra columns.")


def by_name():
    return {o["name"]: o for o in describe_options(Everything)}


def test_every_option_has_type_default_secret_and_description():
    for option in describe_options(Everything):
        assert set(option) >= {"name", "type", "required", "default", "secret", "description"}
        assert option["description"]


def test_secrets_are_marked_and_never_defaulted():
    options = by_name()
    assert options["api_key"] == {
        "name": "api_key",
        "type": "secret",
        "required": True,
        "default": None,
        "secret": True,
        "description": "Key.",
    }
    assert secret_fields(Everything) == ["api_key"]


def test_enums_and_literals_list_their_choices():
    options = by_name()
    assert (options["region"]["choices"], options["region"]["default"]) == (["eu", "us"], "eu")
    assert options["mode"]["choices"] == ["batch", "each"]
    assert options["mode"]["type"] == "one of 'batch', 'each'"
    assert options["platforms"]["choices"] == ["ios", "android"]
    assert options["platforms"]["type"] == "list[one of 'ios', 'android']"
    assert "choices" not in options["events"]


def test_lists_maps_and_bounds():
    options = by_name()
    assert (options["events"]["type"], options["events"]["default"]) == ("list[string]", [])
    assert options["limits"]["type"] == "table[string, integer]"
    assert options["page_size"]["constraints"] == {">=": 1, "<=": 1000}
    assert options["ratio"]["constraints"] == {">": 0}
    assert options["ratio"]["type"] == "number"
    assert options["base_url"]["type"] == "url"


def test_nested_tables_describe_their_own_options():
    options = by_name()
    auth = {o["name"]: o for o in options["auth"]["options"]}
    assert options["auth"]["type"] == "table"
    assert auth["password"]["secret"] is True and auth["user"]["required"] is True
    columns = {o["name"]: o for o in options["columns"]["options"]}
    assert options["columns"]["type"] == "list[table]"
    assert columns["kind"]["choices"] == ["text", "int"]


def test_nested_model_finds_models_inside_containers():
    assert nested_model(Auth | None) is Auth
    assert nested_model(list[Column]) is Column
    assert nested_model(dict[str, Auth]) is Auth
    assert nested_model(list[str]) is None


def test_plugins_json_lists_every_type_with_its_options():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    described = {d["type"]: d for d in orjson.loads(result.output)}
    webhook = described["http.webhook"]
    assert (webhook["kind"], webhook["mode"], webhook["package"]) == (
        "source",
        "push",
        "connectord",
    )
    token = next(o for o in webhook["options"] if o["name"] == "token")
    assert token["secret"] is True and token["description"]
    mode = next(o for o in described["webhook"]["options"] if o["name"] == "mode")
    assert (mode["choices"], mode["default"]) == (["batch", "each"], "batch")


def test_toml_values_in_the_docs():
    assert _toml(True) == "true"
    assert _toml('say "hi"') == '"say \\"hi\\""'
    assert _toml(["a", 1]) == '["a", 1]'
    assert _toml({}) == "{}"
    assert _toml({"a": 1}) == "{ a = 1 }"
    assert _toml(10.0) == "10"
    assert _toml(0.5) == "0.5"
