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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"{self.path}: cannot create the folder of the results store "
                            f"({error.strerror or error}); expected a writable location") from None
        try:
            self._db = sqlite3.connect(self.path)
        except sqlite3.Error as error:  # e.g. a folder in the way, or no permission
            raise DataError(f"{self.path}: cannot open the results store ({error}); "
                            "expected a writable SQLite file") from None
        try:
            # A file whose header is intact but whose pages are damaged opens fine and answers
            # the first queries (the count of finished runs), then fails half-way through a
            # read. quick_check reads every page now, so the damage is reported before any
            # work is planned on top of it.
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise DataError(f"{self.path}: damaged SQLite database (quick_check: {problems[0]}); "
                                "expected an intact file: move it away to start the store afresh")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        except sqlite3.DatabaseError as error:
            self._db.close()
            # quick_check itself may fail on a page it cannot even parse (SQLITE_CORRUPT)
            damaged = getattr(error, "sqlite_errorname", "") == "SQLITE_CORRUPT" or "malformed" in str(error)
            if damaged:
                raise DataError(f"{self.path}: damaged SQLite database ({error}); expected an intact "
                                "file: move it away to start the store afresh") from None
            raise DataError(f"{self.path}: not a textmtl study database ({error})") from None
        except DataError:
            self._db.close()
            raise
        expected = {"key", "kind", "tasks", "seed", "config", "metrics", "curves", "seconds", "created"}
        if not expected <= columns:
            self._db.close()
            raise DataError(f"{self.path}: table 'runs' lacks columns {sorted(expected - columns)}")

    def _execute(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """Run one statement and fetch every row; a database error names the file.

        Damage quick_check did not see (or that happened since) still must not surface as a
        traceback in the middle of a study.
        """
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as error:
            raise DataError(f"{self.path}: cannot read the results store ({error}); "
                            "expected an intact textmtl study database") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self) -> set[str]:
        return {row[0] for row in self._execute("SELECT key FROM runs")}

    def __len__(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM runs")[0][0])

    def add(self, key: str, kind: str, tasks: list[str], seed: int, config: dict[str, Any],
            metrics: dict[str, dict[int, float]], curves: dict[str, list[float]], seconds: float) -> None:
        """Write one finished run (a no-op if its key is already there)."""
        try:
            with self._db:  # one transaction: the row is there entirely or not at all
                self._db.execute(
                    "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, kind, json.dumps(tasks), seed, json.dumps(config, sort_keys=True),
                     json.dumps({t: {str(e): f for e, f in m.items()} for t, m in metrics.items()}),
                     json.dumps(curves), seconds, time.time()))
        except sqlite3.DatabaseError as error:  # disk full, read-only file, damage
            raise DataError(f"{self.path}: cannot write run {key!r} to the results store ({error}); "
                            "expected a writable, intact SQLite file") from None

    def rows(self, keys: set[str] | None = None) -> Iterator[RunRow]:
        """The stored runs (those of ``keys`` only, when given), in key order, each validated.

        Raises:
            DataError: a row that is not what :meth:`add` writes (malformed JSON, a wrong shape),
                naming the file and the row's key.
        """
        # fetched at once: a damaged page then fails here, as one DataError, not mid-iteration
        for record in self._execute(
                "SELECT key, kind, tasks, seed, config, metrics, curves, seconds FROM runs ORDER BY key"):
            if keys is not None and record[0] not in keys:
                continue
            yield self._row(*record)

    def _row(self, key: Any, kind: Any, tasks: Any, seed: Any, config: Any, metrics: Any, curves: Any,
             seconds: Any) -> RunRow:
        """One stored row as a :class:`RunRow`, or a DataError saying what is wrong with it.

        The file is the user's (copied, merged, edited by hand), so its rows are checked as
        input: a bad one must name itself rather than raise JSONDecodeError or KeyError deep
        inside the analysis.
        """
        def bad(what: str) -> DataError:
            return DataError(f"{self.path}: row {key!r}: {what}; remove the row (it is trained again) "
                             "or the file")

        def parse(column: str, text: Any) -> Any:
            if not isinstance(text, str):
                raise bad(f"column {column!r} should hold JSON text, found {type(text).__name__}")
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                raise bad(f"column {column!r} is not valid JSON ({error.msg} at position {error.pos})") from None

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if kind not in ("single", "mtl"):
            raise bad(f"column 'kind' should be 'single' or 'mtl', found {kind!r}")
        task_list, config_dict = parse("tasks", tasks), parse("config", config)
        metrics_dict, curves_dict = parse("metrics", metrics), parse("curves", curves)
        if not (isinstance(task_list, list) and task_list and all(isinstance(t, str) for t in task_list)):
            raise bad(f"column 'tasks' should be a JSON list of task names, found {tasks!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise bad(f"column 'seed' should be an integer, found {seed!r}")
        if not isinstance(config_dict, dict):
            raise bad(f"column 'config' should be a JSON object, found {type(config_dict).__name__}")
        if not number(seconds):
            raise bad(f"column 'seconds' should be a number, found {seconds!r}")
        expected = sorted(task_list)
        if not isinstance(metrics_dict, dict) or sorted(metrics_dict) != expected:
            found = sorted(metrics_dict) if isinstance(metrics_dict, dict) else type(metrics_dict).__name__
            raise bad(f"column 'metrics' should map each of the tasks {expected} to its F1 by epoch, "
                      f"found {found}")
        by_epoch: dict[str, dict[int, float]] = {}
        for task, values in metrics_dict.items():
            if not isinstance(values, dict) or not all(
                    isinstance(e, str) and e.lstrip("-").isdigit() and number(f) for e, f in values.items()):
                raise bad(f"column 'metrics' of task {task!r} should map epochs to F1 scores, "
                          f"found {json.dumps(values)[:80]}")
            by_epoch[task] = {int(e): f for e, f in values.items()}
        if not isinstance(curves_dict, dict) or sorted(curves_dict) != expected:
            found = sorted(curves_dict) if isinstance(curves_dict, dict) else type(curves_dict).__name__
            raise bad(f"column 'curves' should map each of the tasks {expected} to its loss per epoch, "
                      f"found {found}")
        for task, losses in curves_dict.items():
            if not isinstance(losses, list) or not all(number(v) for v in losses):
                raise bad(f"column 'curves' of task {task!r} should be a list of losses, "
                          f"found {json.dumps(losses)[:80]}")
        return RunRow(key, kind, task_list, seed, config_dict, by_epoch, curves_dict, seconds)
