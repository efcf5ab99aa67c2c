"""``connectord new-plugin NAME``: a new plugin package from the bundled template.

The template (``templates/plugin/``) is a working plugin for an imaginary vendor
called ``myvendor``: it has a pull source, a mapping, a destination, an emulator of
the vendor API and tests. Scaffolding copies it and replaces the name in file names
and file contents, so the result installs and passes its own tests straight away.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import unquote, urlparse

TEMPLATE = "myvendor"
_NAME = re.compile(r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$")
_SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache"}


class ScaffoldError(ValueError):
    """The plugin cannot be created (bad name, existing directory)."""


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of a plugin name the template uses."""

    snake: str  # acme_crm: module names, type names, entry point
    kebab: str  # acme-crm: the distribution (connectord-acme-crm)
    camel: str  # AcmeCrm: class names
    upper: str  # ACME_CRM: environment variables
    title: str  # Acme CRM: prose

    @classmethod
    def parse(cls, name: str, title: str | None = None) -> PluginNames:
        given = name.strip().lower()
        if not _NAME.match(given):
            raise ScaffoldError(
                f"invalid plugin name {name!r}: use lowercase letters and digits, words "
                "separated by '-' or '_', starting with a letter (e.g. 'acme' or 'acme-crm')"
            )
        words = re.split(r"[_-]", given)
        return cls(
            snake="_".join(words),
            kebab="-".join(words),
            camel="".join(w.capitalize() for w in words),
            upper="_".join(words).upper(),
            title=title or " ".join(w.capitalize() for w in words),
        )

    @property
    def distribution(self) -> str:
        return f"connectord-{self.kebab}"

    @property
    def package(self) -> str:
        return f"connectord_{self.snake}"

    def render(self, text: str) -> str:
        """Replace the template's name in every spelling (most specific first)."""
        for old, new in (
            (f"connectord-{TEMPLATE}", self.distribution),
            ("MyVendor", self.camel),
            ("MYVENDOR", self.upper),
            ("My Vendor", self.title),
            (TEMPLATE, self.snake),
        ):
            text = text.replace(old, new)
        return text


def connectord_source() -> str | None:
    """The directory connectord was pip-installed from, if it was a local one.

    A new plugin's venv needs connectord before ``pip install -e '.[test]'`` can
    resolve its ``connectord`` dependency when connectord is not on the package index.
    """
    try:
        raw = metadata.distribution("connectord").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    url = str(json.loads(raw).get("url", ""))
    if not url.startswith("file://"):
        return None
    return unquote(urlparse(url).path)


def template_root() -> Traversable:
    return resources.files("connectord") / "templates" / "plugin"


def create_plugin(name: str, directory: Path, *, title: str | None = None) -> Path:
    """Write ``<directory>/connectord-<name>/`` from the template; return its path.

    :raises ScaffoldError: the name is invalid or the target already exists.
    """
    names = PluginNames.parse(name, title)
    target = Path(directory) / names.distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or directory")
    for relative, source in _walk(template_root()):
        destination = target / names.render(relative)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(names.render(source.read_text(encoding="utf-8")), encoding="utf-8")
    return target


def _walk(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    files = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIP or entry.name.endswith(".pyc"):
            continue
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            files.extend(_walk(entry, relative + "/"))
        else:
            files.append((relative, entry))
    return files
