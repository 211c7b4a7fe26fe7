"""Hardening of ``textmtl study``, ``textmtl advise`` and ``textmtl datasets`` against bad input.

Each case gets one test (tiny synthetic data, no real dataset, no network):

- the study's worker pool exits when its parent is killed with SIGKILL (a subprocess);
- the results store names the file (and the row) for a damaged database, malformed JSON and a
  wrong shape, instead of a sqlite3 / json / KeyError traceback;
- ``--db`` and ``--out`` below a regular file fail at once, one line, exit 2;
- ``advise``: too few examples, texts without words, a missing file, one topic twice (errors)
  and the main task as its own auxiliary task (a warning);
- ``datasets`` lists without downloading; ``--download`` fetches.

User errors are checked as in ``test_bad_input.py``: exit status 2 and exactly one stderr line
``textmtl: error: ...`` naming the file or key, what was expected and what was found.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from textmtl.cli import main
from textmtl.data.datasets import DATASETS
from textmtl.errors import DataError
from textmtl.meta.store import RunStore

from cli.test_bad_input import isolate


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """The cwd is a tmp folder; no real data dir, a tmp cache, downloads aimed at a closed port."""
    return isolate(tmp_path, monkeypatch)


def one_error_line(code: int, err: str, *fragments: str) -> str:
    lines = err.splitlines()
    assert code == 2, f"exit status {code}, stderr: {err!r}"
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith("textmtl: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def topic_rows(n: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """Two labels with their own words, ``n // 2`` rows each."""
    rng = random.Random(seed)
    words = {"sport": ["goal", "team", "match", "coach"], "food": ["oven", "flour", "bake", "salt"]}
    return [(" ".join(rng.choices(words[label], k=8)), label)
            for i in range(n) for label in [("sport", "food")[i % 2]]]


# ---------------------------------------------------------------- 3: pool workers and a kill -9

def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie may wait for a pid 1 that never reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")
def test_killed_study_parent_takes_its_pool_workers_and_resource_tracker_with_it(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from textmtl.sweep import LocalExecutor

        def job(payload, folder):
            open(os.path.join(folder, f"{os.getpid()}.pid"), "w").close()
            time.sleep(120)  # far longer than the test: only the parent's death can end it
            return payload

        if __name__ == "__main__":
            for _ in LocalExecutor(2).map(job, [0, 1], sys.argv[1]):
                pass
    """))
    pids = tmp_path / "pids"
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], cwd=tmp_path)
    children: set[int] = set()
    try:
        deadline = time.time() + 60
        while len(list(pids.iterdir())) < 2:
            assert parent.poll() is None, f"the parent exited with {parent.returncode}"
            assert time.time() < deadline, "the two workers never started their jobs"
            time.sleep(0.1)
        workers = {int(p.stem) for p in pids.iterdir()}
        children = _children(parent.pid)
        assert workers <= children
        # the pool's helpers: with the spawn context, the resource tracker is one more child
        assert len(children) >= 3, f"expected 2 workers and the resource tracker, found {children}"
        parent.send_signal(signal.SIGKILL)  # no chance to shut the pool down
        parent.wait(timeout=10)
        deadline = time.time() + 10
        while any(_alive(pid) for pid in children) and time.time() < deadline:
            time.sleep(0.1)
        survivors = sorted(pid for pid in children if _alive(pid))
        assert not survivors, f"still running after the parent's kill -9: {survivors}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- 4: a damaged results store

def _store_with_rows(path: Path, count: int) -> None:
    with RunStore(path) as store:
        for i in range(count):
            task = f"topic.a{i}|topic.b{i}"
            store.add(f"single|{task}|seed=0|abc", "single", [task], 0, {"train": {"epochs": 3}},
                      {task: {1: 0.5, 2: 0.6, 3: 0.7}}, {task: [0.9, 0.5, 0.3] * 40}, 1.0)


def test_a_store_with_damaged_pages_but_an_intact_header_names_the_file(isolated):
    db = isolated / "study.sqlite"
    _store_with_rows(db, 60)  # several pages
    with sqlite3.connect(db) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    assert db.stat().st_size > 4 * page_size
    data = bytearray(db.read_bytes())
    data[page_size + 8:len(data) - page_size] = b"\xa5" * (len(data) - 2 * page_size - 8)  # page 2 on
    db.write_bytes(bytes(data))
    with sqlite3.connect(db) as connection:  # the header still reads: this is what fooled the study
        assert connection.execute("PRAGMA page_size").fetchone()[0] == page_size
    with pytest.raises(DataError, match="damaged SQLite database") as error:
        RunStore(db)
    assert str(db) in str(error.value) and "\n" not in str(error.value)


def _add_raw_row(db: Path, key: str, metrics: str, curves: str = '{"a|b": [0.5, 0.4]}') -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO runs VALUES (?, 'single', '[\"a|b\"]', 0, '{}', ?, ?, 1.0, 0.0)",
                           (key, metrics, curves))


def test_a_store_row_with_malformed_json_names_the_file_and_the_row(isolated):
    db = isolated / "study.sqlite"
    _store_with_rows(db, 2)
    _add_raw_row(db, "single|a|b|seed=0|broken", '{"a|b": {"1": 0.5')
    with RunStore(db) as store:
        assert len(store) == 3
        with pytest.raises(DataError) as error:
            list(store.rows())
    message = str(error.value)
    assert str(db) in message and "'single|a|b|seed=0|broken'" in message
    assert "column 'metrics' is not valid JSON" in message


@pytest.mark.parametrize("metrics, expected", [
    ('{"other|task": {"1": 0.5}}', "should map each of the tasks ['a|b']"),  # was a KeyError
    ('{"a|b": [0.5, 0.6]}', "'a|b' should map epochs to F1 scores"),       # was AttributeError
    ('[0.5]', "should map each of the tasks ['a|b'] to its F1 by epoch, found list"),
])
def test_a_store_row_with_a_wrong_shape_names_the_file_and_the_row(isolated, metrics, expected):
    db = isolated / "study.sqlite"
    _store_with_rows(db, 1)
    _add_raw_row(db, "single|a|b|seed=0|shape", metrics)
    with RunStore(db) as store:
        with pytest.raises(DataError) as error:
            list(store.rows())
    message = str(error.value)
    assert str(db) in message and "'single|a|b|seed=0|shape'" in message and expected in message


# ---------------------------------------------------------------- 11: --db / --out not writable

@pytest.mark.parametrize("option", ["--db", "--out"])
def test_study_db_or_out_below_a_regular_file_is_one_line(isolated, capsys, option):
    blocker = isolated / "a-file"
    blocker.write_text("not a folder")  # fails for root too, unlike a read-only folder
    target = blocker / "below" / ("study.sqlite" if option == "--db" else "out")
    argv = ["study", "20ng", "--quick", "--workers", "0", "--no-progress", "--out", str(isolated / "out"),
            option, str(target)]
    if option == "--out":
        argv.remove(str(isolated / "out"))
        argv.remove("--out")
    code = main(argv)
    one_error_line(code, capsys.readouterr().err, option, str(target), f"{blocker} is a file")
    assert not (isolated / "out").exists() and not (isolated / "cache").exists()  # failed before any work


# ---------------------------------------------------------------- 12: advise

@pytest.mark.parametrize("rows, labels, fragments", [
    # a class with one example (a third label, so the two are named)
    ([("one lonely text", "a")] + topic_rows(20), ":a,sport", ["label 'a' has 1 example(s)",
                                                               "at least 5 of each label"]),
    ([("first text", "a"), ("second text", "b")], "", ["label 'a' has 1 example(s)", "at least 5"]),
    ([("", "sport"), ("", "food")] * 10, "", ["text(s) of label 'food' hold no words",
                                              "at least one text with a word"]),
], ids=["one-example-class", "two-row-file", "empty-texts"])
def test_advise_with_too_little_data_is_one_line(isolated, capsys, rows, labels, fragments):
    # each was a scikit-learn ValueError (or IndexError) traceback
    write_csv(isolated / "small.csv", rows)
    good = write_csv(isolated / "good.csv", topic_rows())
    code = main(["advise", "--main", f"file:small.csv{labels}", "--aux", f"file:{good}"])
    one_error_line(code, capsys.readouterr().err, "small.csv", *fragments)


def test_advise_with_a_missing_file_says_it_does_not_exist(isolated, capsys):
    write_csv(isolated / "good.csv", topic_rows())  # the cwd holds files: it must not be read as a dataset
    missing = "/absolute/path/that/does/not/exist.csv"
    for spec in (f"file:{missing}", f"file:{missing}:sport,food"):
        code = main(["advise", "--main", spec, "--aux", "file:good.csv"])
        one_error_line(code, capsys.readouterr().err, f"{missing}: file does not exist", repr(spec))


def test_advise_rejects_one_20ng_topic_twice_like_one_label_twice(isolated, capsys):
    write_csv(isolated / "good.csv", topic_rows())
    code = main(["advise", "--main", "20ng:hockey,hockey", "--aux", "file:good.csv"])
    one_error_line(code, capsys.readouterr().err, "'20ng:hockey,hockey'", "expected two different topics",
                   "'rec.sport.hockey' twice")
    # its full name and its suffix are the same topic too; checked before any data is looked for
    code = main(["advise", "--main", "20ng:rec.sport.hockey,hockey", "--aux", "file:good.csv"])
    one_error_line(code, capsys.readouterr().err, "expected two different topics")
    code = main(["advise", "--main", "file:good.csv:sport,sport", "--aux", "file:good.csv"])
    one_error_line(code, capsys.readouterr().err, "expected two different labels")


def test_advise_warns_when_main_and_aux_are_the_same_task(isolated, capsys):
    write_csv(isolated / "good.csv", topic_rows())
    # the same file and labels, spelt differently (relative / absolute, labels reversed)
    code = main(["advise", "--main", "file:good.csv", "--aux", f"file:{isolated / 'good.csv'}:sport,food",
                 "--top", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.splitlines() == [
        "textmtl: warning: the main task and the auxiliary task are the same (good:food,sport); "
        "the advice is about training a task with a copy of itself"]
    assert "P(multi-task learning helps the main task) = " in captured.out


# ---------------------------------------------------------------- 15: datasets lists, never downloads

def test_datasets_lists_without_downloading_and_download_fetches(isolated, capsys, monkeypatch):
    import textmtl.data.store as store

    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        raise DataError(f"download from {url} failed: refused in tests")

    monkeypatch.setattr(store, "_fetch", fetch)
    names = [n for n in DATASETS.names() if n != "user_files"]
    (isolated / "data").mkdir()
    assert main(["datasets", "--data-dir", str(isolated / "data")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{n}: not found (run textmtl datasets --download, or set --data-dir)" for n in names]
    assert fetched == [] and not (isolated / "cache").exists()
    # --download asks for every missing dataset (from the mirror set above)
    assert main(["datasets", "--data-dir", str(isolated / "data"), "--download"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == names
    assert all(": not available (" in line and "refused in tests" in line for line in out)
    assert len(fetched) == len(names) and all(u.startswith("http://127.0.0.1:9/") for u in fetched)
    assert not list((isolated / "cache").rglob("*.*")), "a failed download left files in the cache"
