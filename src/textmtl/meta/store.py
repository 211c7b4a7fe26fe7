"""The study's results store: one SQLite row per finished training run.

A row is written in one transaction when its run has finished, so a study killed at any moment
keeps every finished run and no partial one; started again, it skips the keys already present.
Only the coordinating process writes (workers return their results to it), so SQLite's
single-writer model is never contended.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key      TEXT PRIMARY KEY,  -- kind | tasks | seed | settings digest
    kind     TEXT NOT NULL,     -- 'single' or 'mtl'
    tasks    TEXT NOT NULL,     -- JSON list of task names
    seed     INTEGER NOT NULL,
    config   TEXT NOT NULL,     -- JSON of the settings that produced the run
    metrics  TEXT NOT NULL,     -- JSON {task: {epoch: test F1}}
    curves   TEXT NOT NULL,     -- JSON {task: [mean training loss per epoch]}
    seconds  REAL NOT NULL,     -- training time of the run
    created  REAL NOT NULL      -- unix time the row was written
);
"""


@dataclass(frozen=True)
class RunRow:
    """One finished run as stored."""

    key: str
    kind: str
    tasks: list[str]
    seed: int
    config: dict[str, Any]
    metrics: dict[str, dict[int, float]]
    curves: dict[str, list[float]]
    seconds: float


class RunStore:
    """Open (creating if needed) the SQLite file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        except sqlite3.DatabaseError as error:
            raise DataError(f"{self.path}: not a textmtl study database ({error})") from None
        expected = {"key", "kind", "tasks", "seed", "config", "metrics", "curves", "seconds", "created"}
        if not expected <= columns:
            raise DataError(f"{self.path}: table 'runs' lacks columns {sorted(expected - columns)}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM runs")}

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def add(self, key: str, kind: str, tasks: list[str], seed: int, config: dict[str, Any],
            metrics: dict[str, dict[int, float]], curves: dict[str, list[float]], seconds: float) -> None:
        """Write one finished run (a no-op if its key is already there)."""
        with self._db:  # one transaction: the row is there entirely or not at all
            self._db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, json.dumps(tasks), seed, json.dumps(config, sort_keys=True),
                 json.dumps({t: {str(e): f for e, f in m.items()} for t, m in metrics.items()}),
                 json.dumps(curves), seconds, time.time()))

    def rows(self, keys: set[str] | None = None) -> Iterator[RunRow]:
        for key, kind, tasks, seed, config, metrics, curves, seconds in self._db.execute(
                "SELECT key, kind, tasks, seed, config, metrics, curves, seconds FROM runs ORDER BY key"):
            if keys is not None and key not in keys:
                continue
            yield RunRow(key, kind, json.loads(tasks), seed, json.loads(config),
                         {t: {int(e): f for e, f in m.items()} for t, m in json.loads(metrics).items()},
                         json.loads(curves), seconds)
