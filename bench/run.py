"""Run the benchmarks (``make bench``) and keep each result as JSON in bench/results/."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import segment_pendo  # noqa: E402 - found through the line above


def main() -> int:
    result = segment_pendo.main(sys.argv[1:])
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"segment_pendo-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"saved {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
