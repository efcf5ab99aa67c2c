"""Run the benchmarks (``make bench``) and keep each result as JSON in bench/results/.

``segment_pendo`` first (its options pass through), then ``rate_limited`` (skip it with
``--no-rate-limited``), then ``push_scale`` (one process, ``workers = 2`` and PostgreSQL
state; a few minutes; skip it with ``--no-push-scale``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import push_scale  # noqa: E402 - found through the line above
import rate_limited  # noqa: E402
import segment_pendo  # noqa: E402


def save(name: str, result: dict[str, Any]) -> None:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"saved {path.relative_to(HERE.parent)}", flush=True)


def main() -> int:
    argv = sys.argv[1:]
    skip_rate_limited = "--no-rate-limited" in argv
    skip_push_scale = "--no-push-scale" in argv
    argv = [a for a in argv if a not in ("--no-rate-limited", "--no-push-scale")]
    save("segment_pendo", segment_pendo.main(argv))
    if not skip_rate_limited:
        print(flush=True)
        pin = ["--no-pin"] if "--no-pin" in argv else []
        save("rate_limited", rate_limited.main(pin))
    if not skip_push_scale:
        print(flush=True)
        save("push_scale", push_scale.main([]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
