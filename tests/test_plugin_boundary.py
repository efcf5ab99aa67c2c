"""The line between connectord and its plugins, held the way Home Assistant's hassfest
holds its integrations: every plugin, the third-party example and the scaffold import
only the public modules that docs/plugins.md documents, and no plugin imports another.

Built-in plugins go through the same door as third-party ones, so a helper that two
plugins need belongs in a public core module, not in one plugin imported by the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")

# The modules docs/plugins.md names as the plugin API ("Packaging" lists them).
PUBLIC = {
    "connectord",
    "connectord.expressions",
    "connectord.http",
    "connectord.ingest",
    "connectord.pull",
    "connectord.records",
    "connectord.tables",
    "connectord.testing",
}


def plugin_roots() -> Iterator[tuple[str, Path]]:
    """(the import name a plugin's own modules have, its folder)."""
    for folder in sorted((ROOT / "plugins").iterdir()):
        if (folder / "__init__.py").exists():
            yield f"connectord.plugins.{folder.name}", folder
    for package in sorted((ROOT / "examples").glob("*/connectord_*")):
        yield package.name, package.parent
    yield "connectord_myvendor", ROOT / "core" / "templates" / "plugin"


def module_name(root: str, folder: Path, path: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if root.startswith("connectord.plugins."):
        return ".".join([root, *parts])
    return ".".join(parts)


def imported_modules(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, relative imports resolved, with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target


def forbidden(target: str, own: str) -> str | None:
    """Why importing ``target`` from the plugin whose modules are ``own.*`` crosses the
    line, or None when it does not."""
    if target == own or target.startswith(own + "."):
        return None
    if target.startswith("connectord_"):
        return f"imports another plugin: {target}"
    if target.split(".")[0] != "connectord" or target in PUBLIC:
        return None
    if target.startswith("connectord.plugins."):
        return f"imports another plugin: {target}"
    return f"imports {target}, not a public module"


def violations() -> Iterator[str]:
    for root, folder in plugin_roots():
        for path in sorted(folder.rglob("*.py")):
            if "build" in path.relative_to(folder).parts:
                continue
            module = module_name(root, folder, path)
            for line, target in imported_modules(path, module):
                if why := forbidden(target, root):
                    yield f"{path.relative_to(ROOT)}:{line} {why}"


def test_plugins_import_only_the_public_api():
    found = list(violations())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_module_is_documented(module):
    assert f"`{module}`" in GUIDE, f"docs/plugins.md does not list {module} as public"


def test_the_checker_catches_what_it_should(tmp_path: Path):
    plugin = tmp_path / "acme"
    plugin.mkdir()
    (plugin / "__init__.py").write_text("")
    (plugin / "source.py").write_text(
        "from connectord.backoff import Backoff\n"
        "from ..files import destination\n"
        "from connectord.plugins.warehouse import schema\n"
        "from . import client\n"
        "from connectord.http import Backoff\n"
    )
    found = [
        forbidden(target, "connectord.plugins.acme")
        for _, target in imported_modules(plugin / "source.py", "connectord.plugins.acme.source")
    ]
    assert found == [
        "imports connectord.backoff, not a public module",
        "imports another plugin: connectord.plugins.files",
        "imports another plugin: connectord.plugins.warehouse",
        None,
        None,
    ]
