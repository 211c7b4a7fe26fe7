"""scripts/reuse_runs.py: finished runs of one table seed another table's run folder, only when
the two trainings are the same; the resumed table trains the rest and keeps the copies."""

from __future__ import annotations

import json

import pytest

from textmtl.cli import main

from core.helpers import load_script
from .test_end_to_end import only_run_folder, write_task_csv

COMMON = ("data:\n  user_files: [{path: a.csv}, {path: b.csv}]\n"
          "features: {min_df: 1, max_features: 50}\nencoder: {name: mlp, hidden_dims: [4]}\n"
          "seeds: [1, 2]\ntraining: {max_epochs: 2, lr: 0.01}\n")


@pytest.fixture(scope="module")
def script():
    return load_script("reuse_runs")


def test_reused_runs_are_kept_and_the_rest_trained(tmp_path, monkeypatch, script):
    monkeypatch.chdir(tmp_path)
    write_task_csv(tmp_path / "a.csv", {"x": ["xx"], "y": ["yy"]}, 40, 1)
    write_task_csv(tmp_path / "b.csv", {"x": ["xx"], "y": ["yy"]}, 40, 2)
    (tmp_path / "first.yaml").write_text("name: first\n" + COMMON +
                                         "methods:\n  - single_task\n  - {name: hard, head_hidden: 3}\n")
    assert main(["run", "first.yaml", "--output-dir", "first", "--no-progress"]) == 0
    source = only_run_folder(tmp_path / "first")
    (tmp_path / "second.yaml").write_text(
        "name: second\n" + COMMON + "methods:\n  - {name: hard, label: again, head_hidden: 3}\n"
        "  - {name: hard, label: wider, head_hidden: 5}\n  - {name: single_task, label: alone}\n")

    # a different training (another learning rate) is refused, nothing is made
    with pytest.raises(SystemExit, match="training.lr"):
        script.main([str(source), "hard", "second.yaml", "again", "--set", "training.lr=0.1",
                     "--output-dir", "second"])
    # a different method entry (head width) is refused
    with pytest.raises(SystemExit, match="methods.head_hidden"):
        script.main([str(source), "hard", "second.yaml", "wider", "--output-dir", "second"])
    assert not (tmp_path / "second").exists()

    assert script.main([str(source), "hard", "second.yaml", "again", "--output-dir", "second"]) == 0
    assert script.main([str(source), "single_task", "second.yaml", "alone", "--output-dir", "second"]) == 0
    [target] = list((tmp_path / "second").iterdir())
    assert target.name.endswith(".partial")
    copied = {p.parent.relative_to(target).as_posix() for p in target.glob("**/reused.json")}
    assert copied == {"again/seed-1", "again/seed-2", "alone/seed-1/a", "alone/seed-1/b",
                      "alone/seed-2/a", "alone/seed-2/b"}
    before = (target / "again" / "seed-1" / "metrics.json").read_text()
    assert before == (source / "hard" / "seed-1" / "metrics.json").read_text()

    assert main(["run", "second.yaml", "--output-dir", "second", "--no-progress", "--resume", str(target)]) == 0
    finished = only_run_folder(tmp_path / "second")
    assert (finished / "again" / "seed-1" / "metrics.json").read_text() == before  # not retrained
    assert (finished / "again" / "seed-1" / "reused.json").is_file()
    assert (finished / "wider" / "seed-2" / "metrics.json").is_file()  # the rest trained
    records = json.loads((finished / "records.json").read_text())
    assert {r["method"] for r in records} == {"again", "wider", "alone"}
    # copying again changes nothing
    assert script.main([str(source), "hard", "second.yaml", "again", "--into", str(finished)]) == 0
    assert (finished / "again" / "seed-1" / "metrics.json").read_text() == before


def test_a_corrected_config_of_the_same_name_gets_a_new_folder_never_the_source(tmp_path, monkeypatch, script):
    """A table's fix keeps the table's name; its unfinished source folder is then the newest
    .partial of that name, and copying into it would copy the runs onto themselves."""
    monkeypatch.chdir(tmp_path)
    write_task_csv(tmp_path / "a.csv", {"x": ["xx"], "y": ["yy"]}, 40, 1)
    write_task_csv(tmp_path / "b.csv", {"x": ["xx"], "y": ["yy"]}, 40, 2)
    (tmp_path / "t.yaml").write_text("name: t\n" + COMMON + "methods:\n  - single_task\n")
    assert main(["run", "t.yaml", "--output-dir", "runs", "--no-progress"]) == 0
    source = only_run_folder(tmp_path / "runs")
    unfinished = source.with_name(source.name + ".partial")
    source.rename(unfinished)  # the table a fix interrupts
    (tmp_path / "t.yaml").write_text("name: t\n" + COMMON + "methods:\n  - single_task\n"
                                     "  - {name: hard, head_hidden: 3}\n")
    assert script.main([str(unfinished), "single_task", "t.yaml", "single_task", "--output-dir", "runs"]) == 0
    [target] = [p for p in (tmp_path / "runs").iterdir() if p != unfinished]
    assert (target / "config.yaml").is_file()
    assert len(list(target.glob("single_task/seed-*/*/reused.json"))) == 4
    with pytest.raises(SystemExit, match="source folder"):
        script.main([str(unfinished), "single_task", "t.yaml", "single_task", "--into", str(unfinished)])
    # a third version of the config: the folder of the second is not its folder either
    (tmp_path / "t.yaml").write_text("name: t\n" + COMMON + "methods:\n  - single_task\n"
                                     "  - {name: hard, head_hidden: 4}\n")
    assert script.main([str(unfinished), "single_task", "t.yaml", "single_task", "--output-dir", "runs"]) == 0
    assert len([p for p in (tmp_path / "runs").iterdir()]) == 3
    assert not (target / "hard").exists()
