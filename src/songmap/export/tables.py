"""A result's flat tables written as CSV and JSON Lines (and the whole result as JSON).

The tables themselves (``beats``, ``bars``, ``chords``, ``onsets``: their rows, columns
and ``to_pandas``) are ``songmap.tables``; this module writes them in the formats of
``songmap.export.EXPORTERS``. Times are seconds, tempo BPM, beat positions 1-based.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from songmap.tables import COLUMNS, rows

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult


def to_json(result: AnalysisResult) -> str:
    return result.model_dump_json(indent=2) + "\n"


def to_csv(result: AnalysisResult, table: str = "beats") -> str:
    """Comma-separated, header row, ``\\n`` line ends; empty cells for missing values."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS.get(table, ()), lineterminator="\n")
    data = rows(result, table)
    writer.writeheader()
    for row in data:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def to_jsonl(result: AnalysisResult, table: str = "beats") -> str:
    """One JSON object per line (``null`` for missing values)."""
    return "".join(json.dumps(row) + "\n" for row in rows(result, table))
