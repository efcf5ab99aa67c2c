"""docs/plugins.md keeps up with the code: every hook with its exact signature, every
hook tested, the public API and the testing helpers described, the examples valid."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

import connectord
import connectord.testing
from connectord import hookspecs
from connectord.registry import get_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = sorted(get_plugin_manager(load_entry_points=False).hook.__dict__)


def spec(name: str):
    return getattr(hookspecs, name)


def annotated_signature(name: str) -> str:
    """``def register_sources(register: Callable[[type[Source]], None]) -> None:``"""
    signature = inspect.signature(spec(name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}:"


def test_every_hookspec_is_found():
    assert HOOKS == ["register_destinations", "register_mappings", "register_sources"]


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook):
    names = ", ".join(inspect.signature(spec(hook)).parameters)
    assert f"### {hook}({names})\n" in GUIDE, f"docs/plugins.md has no section for {hook}"
    assert annotated_signature(hook) in GUIDE, (
        f"docs/plugins.md must show the exact signature of {hook}: {annotated_signature(hook)}"
    )
    section = GUIDE.split(f"### {hook}(", 1)[1].split("\n### ", 1)[0]
    assert f"@hookimpl\ndef {hook}(register):" in section, f"{hook} needs a minimal example"


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_tests(hook):
    pattern = re.compile(rf"^\s*(async\s+)?def test_hook_{hook}\b", re.MULTILINE)
    tested = any(pattern.search(p.read_text()) for p in (ROOT / "tests").rglob("test_*.py"))
    assert tested, f"Plugin hook is missing tests: {hook} (add a test_hook_{hook})"


PLUGIN_API = [
    "hookimpl",
    "PullSource",
    "PushSource",
    "Mapping",
    "Destination",
    "Options",
    "Secret",
    "Batch",
    "DeliveryResult",
    "PluginContext",
    "Route",
    "RetryableError",
    "AuthError",
    "PermanentError",
    "RecordRejected",
    "IngestError",
    "QueueFull",
    "raise_for_status",
    "retry_after_seconds",
    "call_with_retries",
    "stable_message_id",
    "read_body",
    "secrets_match",
    "CONNECTORD_LOAD_PLUGINS",
    "[project.entry-points.connectord]",
    "context.state",
    "context.http()",
    "records.md",
]


@pytest.mark.parametrize("name", PLUGIN_API)
def test_the_plugin_api_is_described(name):
    assert name in GUIDE


@pytest.mark.parametrize("name", sorted(set(connectord.testing.__all__)))
def test_every_testing_helper_is_described(name):
    assert f"`{name}" in GUIDE, f"connectord.testing.{name} is not described in docs/plugins.md"


def test_python_examples_are_valid_python():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, re.DOTALL)
    assert len(blocks) >= 10
    for block in map(textwrap.dedent, blocks):
        if block.rstrip().endswith(":"):  # a bare signature, as the hook sections show
            block += "    ...\n"
        compile(block, "docs/plugins.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_links_point_to_existing_files():
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", GUIDE):
        assert (ROOT / "docs" / target).resolve().exists(), f"broken link: {target}"


def test_the_exported_names_exist():
    for name in PLUGIN_API[:18]:
        if name in connectord.__all__:
            assert hasattr(connectord, name)
