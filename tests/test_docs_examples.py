"""The Python examples in docs/plugins.md are complete and they run.

Each block must name nothing it does not define or import (checked with ruff's
undefined-name rule), and the blocks that are whole plugins or whole calls are executed
against connectord's own testing helpers over real HTTP: the mapping maps, the push
source authenticates and commits, the state calls store, and the network-error snippet
turns a refused connection into a `RetryableError`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectord import RecordRejected, RetryableError
from connectord.testing import free_port, identify, make_context, map_records, push_source, track

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
BLOCKS = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", GUIDE, re.DOTALL)]


def block(containing: str) -> str:
    found = [b for b in BLOCKS if containing in b]
    assert len(found) == 1, f"expected one example containing {containing!r}, found {len(found)}"
    return found[0]


def as_checkable(code: str) -> str | None:
    """The block as a module ruff can check, or None for what is not code to run (the
    bare hook signatures and the record literal)."""
    stripped = code.strip()
    if stripped.endswith(":") or stripped.startswith("{"):
        return None
    if re.search(r"\bself\.", code) and not re.search(
        r"^(class|def|async def) ", code, re.M
    ):  # a method body
        return "async def example(self):\n" + textwrap.indent(code, "    ")
    return code


def exec_block(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, "docs/plugins.md", "exec", dont_inherit=True), namespace)
    return namespace


def test_examples_name_nothing_undefined(tmp_path: Path):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the test extra"
    files = []
    for number, code in enumerate(BLOCKS):
        if (checkable := as_checkable(code)) is not None:
            files.append(tmp_path / f"example_{number}.py")
            files[-1].write_text(checkable)
    assert len(files) >= 12
    result = subprocess.run(
        [ruff, "check", "--isolated", "--select", "F821,F822,F823", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


async def test_the_mapping_example_maps_drops_and_rejects():
    mapping = exec_block(block("class AcmeRenameEvents(Mapping)"))["AcmeRenameEvents"]
    records = [track("Order Completed"), track("Page Scrolled"), identify(), track("")]
    results = await map_records(mapping, {"events": {"Order Completed": "order_done"}}, records)
    assert [r["event"] for r in results[0]] == ["order_done"]
    assert results[1] == []  # not in the table: dropped
    assert results[2] == [records[2]]  # not a track: unchanged
    assert isinstance(results[3], RecordRejected)


async def test_the_push_source_example_authenticates_and_commits():
    source = exec_block(block("class AcmeWebhook(PushSource)"))["AcmeWebhook"]
    events = {"events": [{"name": "Signed Up", "user": "u1"}]}
    async with push_source(source, {"token": "s3cret"}) as push:
        status, answer = await push.post("v1/events", events, headers={"Authorization": "x"})
        assert status == 401 and push.records == []
        status, answer = await push.post(
            "v1/events", events, headers={"Authorization": "Bearer s3cret"}
        )
    assert (status, answer) == (200, {"accepted": 1})
    assert [(r["event"], r["userId"]) for r in push.records] == [("Signed Up", "u1")]


async def test_the_state_example_runs_against_the_plugin_state():
    code = as_checkable(block("self.context.state.get_many("))
    example = exec_block(code)["example"]
    async with make_context() as context:
        await example(SimpleNamespace(context=context))
        assert await context.state.get("token_expires_at") == 1767225600
        assert await context.state.get("a") is None  # deleted last
        assert await context.state.get("b") is None  # set_many with None deleted it


async def test_the_network_error_example_makes_a_retryable_error():
    post_events = exec_block(block("acme unreachable"))["post_events"]
    async with make_context() as context:
        closed = f"http://127.0.0.1:{free_port()}/v1/events"
        with pytest.raises(RetryableError, match="acme unreachable"):
            await post_events(SimpleNamespace(context=context), closed, {"events": []})


async def test_the_compare_and_set_example_retries_until_its_write_lands():
    example = exec_block(as_checkable(block("compare_and_set(")))["example"]
    async with make_context() as context:
        await context.state.set("device:abc", {"platform": 3})
        await example(SimpleNamespace(context=context))
        assert await context.state.get("device:abc") == {"platform": 3, "userId": "42"}
        assert not await context.state.compare_and_set("device:abc", {"platform": 3}, {})
        assert await context.state.compare_and_set("gone", None, None)  # absent stays absent
