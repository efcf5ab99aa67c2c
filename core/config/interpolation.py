"""Option values as written: ``${VAR}`` / ``${VAR:-default}`` and ``<name>_file`` secrets.

Interpolation happens before validation, so a value from the environment is checked like
one written in the file; an unset variable in a disabled connector is only noted.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from .collector import Collector
from .issues import Path_, describe_value

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Interpolation(Collector):
    """Expands environment variables and reads secret files, reporting what it cannot."""

    def interpolate(self, where: Path_, value: Any, *, strict: bool) -> tuple[Any, set[str]]:
        """Replace ``${VAR}`` / ``${VAR:-default}``; return the value and unset names."""
        unresolved: set[str] = set()

        def walk(path: Path_, item: Any) -> Any:
            if isinstance(item, str):
                return self.expand(path, item, strict, unresolved)
            if isinstance(item, dict):
                return {k: walk((*path, k), v) for k, v in item.items()}
            if isinstance(item, list):
                return [walk((*path, i), v) for i, v in enumerate(item)]
            return item

        return walk(where, value), unresolved

    def expand(self, path: Path_, text: str, strict: bool, unresolved: set[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env and self.env[name] != "":
                return self.env[name]
            if default is not None:
                return default
            unresolved.add(name)
            if strict:
                self.issue(
                    path,
                    f"environment variable {name} is not set",
                    hint=f"export {name}=..., give a default with ${{{name}:-value}}, "
                    "or set enabled = false on this connector",
                )
            return match.group(0)

        return _VAR.sub(replace, text)

    def read_secret_files(
        self, where: Path_, options: dict[str, Any], model: type[BaseModel]
    ) -> dict[str, Any]:
        """``<name>_file = "path"`` reads option ``<name>`` from a file (systemd credentials)."""
        out = dict(options)
        for key, value in options.items():
            if not key.endswith("_file") or key in model.model_fields:
                continue
            target = key[: -len("_file")]
            if target not in model.model_fields:
                continue
            del out[key]
            if target in options:
                self.issue(
                    (*where, key),
                    f"both {target} and {key} are set",
                    hint=f"keep one: {key} reads {target} from a file",
                )
                continue
            if not isinstance(value, str):
                self.issue(
                    (*where, key),
                    "must be a file path",
                    expected="a string",
                    found=describe_value(value),
                )
                continue
            file = (self.path.parent / value).resolve()
            try:
                out[target] = file.read_text(encoding="utf-8").strip()
            except OSError as err:
                self.issue(
                    (*where, key),
                    f"cannot read secret file {str(file)!r}: {err.strerror or err}",
                    hint="check the path and that the connectord user may read it",
                )
                out[target] = "(unreadable)"  # one error for one mistake: not also 'missing'
        return out
