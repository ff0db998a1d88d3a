"""Rewrite ``tests/data/example_result.json``: the bundled example's whole result, as
``songmap analyze "$(songmap example)" --json`` writes it (networks run, no cache).

The exporter, schema and terminal-format tests read that file instead of running the
networks, which keeps them in the fast lane. ``tests/integration/test_golden.py`` (marked
``models``) analyses the example afresh and fails when the file no longer matches.

When to regenerate: only after a change meant to move the example's result (an algorithm,
a field of the schema, the version, the weights) has been measured on the evaluation sets.
Review the diff like code: it shows what the change did to the example's map.

    python -m tests.regen_golden            # rewrite the file
    python -m tests.regen_golden --check    # exit 1 if it differs (timings aside)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).with_name("data") / "example_result.json"
#: Wall-clock timings: different on every run, left out of every comparison.
TIMING_FIELDS = ("performance_metrics",)


def analyse_example() -> dict:
    """The bundled example's result from the CLI of the songmap on ``sys.path``."""
    env = dict(os.environ, SONGMAP_CACHE_DIR="")  # no disk cache: the networks really run
    code = ("import sys; from songmap.cli.main import main; from songmap.examples import "
            "example_path; sys.exit(main(['analyze', str(example_path()), '--json']))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def without_timings(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMING_FIELDS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    fresh = analyse_example()
    if args.check:
        stored = json.loads(GOLDEN.read_text(encoding="utf-8"))
        same = without_timings(stored) == without_timings(fresh)
        print(f"{GOLDEN}: {'up to date' if same else 'STALE: python -m tests.regen_golden'}")
        return 0 if same else 1
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    # indented, in the schema's field order: a regeneration reads as a reviewable diff
    GOLDEN.write_text(json.dumps(fresh, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
