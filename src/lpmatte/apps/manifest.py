"""A record of a folder run: one row per input, kept across reruns.

Rows are appended and flushed one by one while the run goes (a ``kill -9`` loses at most
the row being written); at the end the file is rewritten atomically from the rows of earlier
runs merged with this run's, so the final manifest names every input exactly once.
CSV or JSON Lines, chosen by the suffix (``.jsonl``/``.json``: JSON Lines; else CSV).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lpmatte.files import atomic_write, make_parent

STATUSES = ("written", "skipped", "failed")


@dataclass(frozen=True)
class Row:
    """What happened to one input: ``status`` one of :data:`STATUSES`, the output path, its
    size in bytes, the milliseconds spent on it and the error message (empty if none)."""

    input: str
    status: str
    output: str
    bytes: int
    ms: float
    error: str


COLUMNS = [f.name for f in fields(Row)]


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".json", ".ndjson")


def parse_rows(path: Path) -> list[Row]:
    """Rows of an existing manifest; a line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    text = path.read_text(errors="replace")
    records = ([_json_or_none(line) for line in text.splitlines() if line.strip()]
               if is_jsonl(path) else list(csv.DictReader(io.StringIO(text))))
    return [row for row in map(_row_or_none, records) if row is not None]


def _json_or_none(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _row_or_none(record) -> Row | None:
    if not isinstance(record, dict) or record.get("status") not in STATUSES:
        return None
    try:
        return Row(str(record["input"]), record["status"], str(record["output"] or ""),
                   int(record["bytes"]), float(record["ms"]), str(record["error"] or ""))
    except (KeyError, TypeError, ValueError):
        return None


def merge(old: list[Row], new: list[Row]) -> list[Row]:
    """One row per input: this run's, except that "skipped" keeps an earlier "written" row
    (it says how the output was made); inputs only in ``old`` keep their row."""
    rows = {row.input: row for row in old}
    for row in new:
        earlier = rows.get(row.input)
        if row.status == "skipped" and earlier is not None and earlier.status == "written":
            continue
        rows[row.input] = row
    return list(rows.values())


def format_rows(rows: list[Row], jsonl: bool, header: bool) -> str:
    if jsonl:
        return "".join(json.dumps(asdict(row)) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    return buffer.getvalue()


class Manifest:
    """``with Manifest(path) as log: log.add(row)``; ``path`` None records nothing.

    Thread-safe: the encoding thread and the main thread both add rows.
    """

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.new: list[Row] = []
        self.lock = threading.Lock()
        self.file = None

    def __enter__(self) -> Manifest:
        if self.path is None:
            return self
        if self.path.is_dir():
            from lpmatte.errors import LpmatteError

            raise LpmatteError(f"{self.path}: is a folder; give a manifest file name")
        self.old = parse_rows(self.path)
        make_parent(self.path)
        fresh = not self.path.is_file() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        if not is_jsonl(self.path):
            # a line cut short by a kill must not glue onto the next row
            self.file.write(format_rows([], False, header=fresh) if fresh else "\n")
        return self

    def add(self, row: Row) -> None:
        with self.lock:
            self.new.append(row)
            if self.file is not None:
                self.file.write(format_rows([row], is_jsonl(self.path), header=False))
                self.file.flush()

    def __exit__(self, kind, error, traceback) -> None:
        if self.file is None:
            return
        self.file.close()
        if kind is None:  # after a failure the appended rows stay for the rerun to merge
            text = format_rows(merge(self.old, self.new), is_jsonl(self.path), header=True)
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
