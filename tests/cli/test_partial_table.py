"""scripts/partial_table.py: a partial table from the finished models of a run folder, methods
trained together or per task, never padded."""

from __future__ import annotations

import json

import pytest

from core.helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("partial_table")


def finished(folder, scores):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"test": {t: {"accuracy": a} for t, a in scores.items()},
                                                     "dev": {t: {"accuracy": a} for t, a in scores.items()}}))


def test_rows_from_joint_and_per_task_models(script, tmp_path, capsys):
    finished(tmp_path / "hard" / "seed-1", {"a": 0.80, "b": 0.60})
    finished(tmp_path / "hard" / "seed-2", {"a": 0.82, "b": 0.62})
    finished(tmp_path / "single" / "seed-1" / "a", {"a": 0.70})
    finished(tmp_path / "single" / "seed-1" / "b", {"b": 0.50})
    finished(tmp_path / "single" / "seed-2" / "a", {"a": 0.72})  # seed 2 of b not finished
    finished(tmp_path / "oriented" / "seed-1" / "a", {"a": 0.90, "b": 0.10})  # only a's counts here
    (tmp_path / "empty" / "seed-1").mkdir(parents=True)
    assert script.main([str(tmp_path), "a:accuracy", "--average", "accuracy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| method | seeds | a accuracy | average accuracy (2 tasks) |"
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert set(rows) == {"hard", "single", "oriented"}
    assert rows["hard"] == "| hard | 1,2 | 81.00 ± 1.41 | 71.00 ± 1.41 |"
    assert rows["single"] == "| single | 1,2 (all tasks: 1) | 71.00 ± 1.41 | 60.00 ± 0.00 |"
    assert rows["oriented"] == "| oriented | 1 (all tasks: none) | 90.00 ± 0.00 | - |"


def test_bad_input_is_one_line(script, tmp_path, capsys):
    assert script.main([str(tmp_path / "nowhere"), "a:accuracy"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert script.main([str(tmp_path)]) == 2
    assert "give TASK:METRIC columns or --average METRIC" in capsys.readouterr().err
