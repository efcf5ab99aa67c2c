"""The Piano emulator's Data Query API rules: which parameters, columns, periods and
segments a query may name, and the rows it answers.

Mixed into `tests.plugins.piano.emulator.PianoEmulator`; see that module for the
contract and its sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectord.testing.emulator import json_response

SCOPES = {
    "visitor_id",
    "user_id",
    "visit_id",
    "event_id",
    "av_session_id",
    "cart_id",
    "pageview_id",
}
DATA_METHODS = {"getData", "getRowCount", "getTotal"}
DATA_PARAMS = {
    "columns",
    "sort",
    "space",
    "period",
    "max-results",
    "page-num",
    "options",
    "filter",
    "segment",
    "evo",
}
PAGING_PARAMS = {"sort", "max-results", "page-num"}
METRICS = {"m_visits"}
DATA_MODEL = {"visitor_id", "user_id", "user_category", "pushwooshid", "device_type", "src_medium"}
"""Properties the emulated organisation's data model knows, besides visitors' own."""
MAX_COLUMNS = 50
MAX_RESULTS = 10_000
MAX_ROWS = 200_000
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


@dataclass
class Segment:
    key: str
    name: str
    visitors: set[str] = field(default_factory=set)


class DataApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> web.Response:
        return json_response(
            {"ErrorMessage": self.message, "ErrorType": self.kind}, status=self.status
        )


class DataQueryRules:
    """Validation and evaluation of Data Query bodies over the emulator's visitors."""

    visitors: dict[str, dict[str, Any]]
    segments: dict[str, Segment]

    def known_columns(self) -> set[str]:
        columns = DATA_MODEL | METRICS
        for visitor in self.visitors.values():
            columns.update(visitor)
        return columns

    @staticmethod
    def column_info(name: str) -> dict[str, Any]:
        metric = name in METRICS
        return {
            "Category": "Metric" if metric else "Dimension",
            "Name": name,
            "Type": "int" if metric else "string",
            "CustomerType": "Integer" if metric else "Text",
            "Label": name,
            "Description": "",
            "Filterable": True,
        }

    def validate(self, method: str, body: dict[str, Any], sites: set[int]) -> None:
        unknown = set(body) - DATA_PARAMS
        if unknown:
            raise DataApiError(400, "InvalidParameter", f"unknown parameter {sorted(unknown)[0]}")
        for name in ("columns", "space", "period"):
            if name not in body:
                raise DataApiError(400, "MissingParameter", f"{name} is mandatory")
        if method != "getData":
            for name in PAGING_PARAMS & set(body):
                raise DataApiError(400, "InvalidParameter", f"{name} is not allowed in {method}")
        columns = body["columns"]
        if not isinstance(columns, list) or not columns or len(columns) > MAX_COLUMNS:
            raise DataApiError(400, "InvalidParameter", "columns must list 1 to 50 columns")
        missing = [c for c in columns if c not in self.known_columns()]
        if missing:
            raise DataApiError(400, "InvalidColumn", f"unknown column {missing[0]}")
        space = body["space"]
        if not isinstance(space, dict) or not isinstance(space.get("s"), list) or not space["s"]:
            raise DataApiError(400, "InvalidParameter", 'space must be {"s": [site ids]}')
        for site in space["s"]:
            if not isinstance(site, int) or isinstance(site, bool):
                raise DataApiError(400, "InvalidParameter", "site ids are integers")
            if site not in sites:
                raise DataApiError(403, "Forbidden", f"no access to site {site}")
        check_period(body["period"])
        size = body.get("max-results", MAX_RESULTS)
        page = body.get("page-num", 1)
        if not isinstance(size, int) or not 1 <= size <= MAX_RESULTS:
            raise DataApiError(400, "InvalidParameter", "max-results must be 1 to 10000")
        if not isinstance(page, int) or page < 1:
            raise DataApiError(400, "InvalidParameter", "page-num starts at 1")
        if (page - 1) * size >= MAX_ROWS:
            raise DataApiError(400, "InvalidParameter", "at most 200000 rows through page-num")
        for item in body.get("sort", []):
            if str(item).lstrip("-") not in columns:
                raise DataApiError(400, "InvalidParameter", f"cannot sort by {item}")
        if "segment" in body:
            self.segment_of(body["segment"])

    def segment_of(self, spec: Any) -> tuple[Segment, str]:
        section = spec.get("section") if isinstance(spec, dict) else None
        if not isinstance(section, dict):
            raise DataApiError(400, "InvalidParameter", "segment needs a section")
        if section.get("scope") not in SCOPES:
            raise DataApiError(400, "InvalidParameter", f"unknown scope {section.get('scope')}")
        mode = section.get("mode", "include")
        if mode not in ("include", "exclude"):
            raise DataApiError(400, "InvalidParameter", "mode is include or exclude")
        key = section.get("segmentKey")
        if key is None:
            raise DataApiError(400, "InvalidParameter", "segmentKey or content is required")
        if key not in self.segments:
            raise DataApiError(400, "SegmentNotFound", f"segment {key} does not exist")
        return self.segments[key], mode

    def rows(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        visitors = list(self.visitors.values())
        if "segment" in body:
            segment, mode = self.segment_of(body["segment"])
            inside = segment.visitors
            visitors = [v for v in visitors if (v["visitor_id"] in inside) == (mode == "include")]
        dimensions = [c for c in body["columns"] if c not in METRICS]
        metrics = [c for c in body["columns"] if c in METRICS]
        ignore_null = (body.get("options") or {}).get("ignore_null_properties", False)
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        for visitor in visitors:
            key = tuple(visitor.get(d) for d in dimensions)
            if ignore_null and any(v is None for v in key):
                continue
            row = grouped.setdefault(key, {**dict(zip(dimensions, key, strict=True))})
            for metric in metrics:
                row[metric] = row.get(metric, 0) + visitor.get(metric, 0)
        rows = list(grouped.values())
        for item in reversed(body.get("sort", [])):
            name = str(item).lstrip("-")
            rows.sort(
                key=lambda r, n=name: (r.get(n) is None, r.get(n)), reverse=item.startswith("-")
            )
        return rows


def check_period(period: Any) -> None:
    if not isinstance(period, dict) or not isinstance(period.get("p1"), list) or not period["p1"]:
        raise DataApiError(400, "InvalidParameter", 'period must be {"p1": [...]}')
    for name, items in period.items():
        if name not in ("p1", "p2") or not isinstance(items, list):
            raise DataApiError(400, "InvalidParameter", f"unknown period {name}")
        for item in items:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "D":
                if not DATE.match(str(item.get("start"))) or not DATE.match(str(item.get("end"))):
                    raise DataApiError(400, "InvalidParameter", "dates are YYYY-MM-DD")
                if str(item["start"]) > str(item["end"]):
                    raise DataApiError(400, "InvalidParameter", "period start is after its end")
            elif kind == "R":
                if item.get("granularity") not in ("Y", "Q", "M", "W", "D"):
                    raise DataApiError(400, "InvalidParameter", "unknown granularity")
                if not isinstance(item.get("offset"), int):
                    raise DataApiError(400, "InvalidParameter", "offset is an integer")
            else:
                raise DataApiError(400, "InvalidParameter", "period type is D or R")
