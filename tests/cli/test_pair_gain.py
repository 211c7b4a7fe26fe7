"""``textmtl pair-gain``: every pair of tasks trained jointly, each task alone, and the PPG matrix
(Zhang et al. 2017): values from the trained models' metrics, resume, the oriented protocol,
the built-in alone entry, and bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml

from textmtl import experiment
from textmtl.cli import main
from textmtl.config import parse_config
from textmtl.errors import ConfigError
from textmtl.pairwise import pairwise_config, ppg, run_pairwise

from cli.test_bad_input import write_csv
from cli.test_models import rows

TASKS = ("alpha", "beta", "gamma")


@pytest.fixture
def three_tasks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "a.csv", rows(48, ("neg", "pos"), 1))
    write_csv(tmp_path / "b.csv", rows(48, ("neg", "pos", "meh"), 2))
    write_csv(tmp_path / "c.csv", rows(48, ("neg", "pos"), 3))
    return tmp_path


def raw_config(methods, seeds=(1, 2), epochs=2) -> dict:
    return {
        "name": "tiny", "output_dir": "runs",
        "data": {"user_files": [{"path": f"{file}.csv", "name": name, "dev_fraction": 0.25, "test_fraction": 0.25}
                                for file, name in zip("abc", TASKS)]},
        "features": {"min_df": 1, "max_features": 100}, "encoder": {"name": "mlp", "hidden_dims": [8]},
        "methods": methods, "seeds": list(seeds),
        "training": {"max_epochs": epochs, "patience": 0, "batch_size": 8, "progress": False}}


def quiet(line):
    pass


def test_ppg_is_the_papers_formula():
    assert ppg((0.8, 0.5), (0.9, 0.6)) == pytest.approx(math.sqrt(0.9 * 0.6 / (0.8 * 0.5)))
    assert ppg((0.7, 0.7), (0.7, 0.7)) == 1.0
    assert math.isnan(ppg((0.0, 0.5), (0.9, 0.6)))


def test_every_pair_and_every_task_alone_give_the_matrix_from_their_metrics(three_tasks):
    config = parse_config(raw_config(["single_task", "hard"]))
    result = run_pairwise(config, "hard", log=quiet)
    folder = result.run_dir
    assert folder.name.startswith("tiny-pairs-hard-") and not folder.name.endswith(".partial")
    assert result.tasks == list(TASKS)

    def test_score(path, task):
        return json.loads((path / "metrics.json").read_text())["test"][task]["accuracy"]

    matrix = result.matrix()
    for i, a in enumerate(TASKS):
        assert math.isnan(matrix[i, i])
        for j, b in enumerate(TASKS[i + 1:], start=i + 1):
            alone = [sum(test_score(folder / "single_task" / f"seed-{s}" / t, t) for s in (1, 2)) / 2 for t in (a, b)]
            pair = folder / "hard" / f"{a}+{b}"
            joint = [sum(test_score(pair / f"seed-{s}", t) for s in (1, 2)) / 2 for t in (a, b)]
            expected = math.sqrt(joint[0] * joint[1] / (alone[0] * alone[1]))
            assert matrix[i, j] == matrix[j, i] == pytest.approx(expected)
            # the pair's model was trained on the pair only
            model = json.loads((pair / "seed-1" / "model.json").read_text())
            assert [t["name"] for t in model["tasks"]] == [a, b]
    with open(folder / "pairs.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["task_i"], r["task_j"]) for r in table] == [("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")]
    with open(folder / "ppg.csv") as handle:
        square = list(csv.reader(handle))
    assert square[0] == ["task", *TASKS] and square[1][1] == ""
    assert float(square[1][2]) == pytest.approx(matrix[0, 1], abs=1e-6)
    text = (folder / "ppg.md").read_text()
    assert "strongest pair" in text and "PPG_ij = sqrt" in text
    assert (folder / "ppg.png").stat().st_size > 0
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["method"] == "hard" and meta["alone"] == "single_task" and meta["timings"]["total_s"] > 0
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert [m["name"] for m in saved["methods"]] == ["single_task", "hard"]


def test_an_interrupted_run_resumes_and_trains_only_what_is_missing(three_tasks, monkeypatch):
    config = parse_config(raw_config(["hard"], seeds=(1,)))  # the built-in single_task is added
    done = run_pairwise(config, "hard", tasks=["gamma", "alpha"], log=quiet)
    assert done.tasks == ["gamma", "alpha"] and len(done.pairs) == 1
    assert (done.run_dir / "single_task" / "seed-1" / "gamma" / "metrics.json").is_file()
    (done.run_dir / "hard" / "gamma+alpha" / "seed-1" / "metrics.json").unlink()
    calls = []
    real = experiment.train_one
    monkeypatch.setattr(experiment, "train_one", lambda *a: calls.append((a[1].name, a[2].task_names)) or real(*a))
    again = run_pairwise(config, "hard", tasks=["gamma", "alpha"], log=quiet, resume=done.run_dir)
    assert calls == [("hard", ["gamma", "alpha"])], "resuming repeated a finished training"
    np.testing.assert_allclose(again.matrix(), done.matrix())  # NaN diagonals compare equal
    with pytest.raises(ConfigError, match="made for the tasks"):
        run_pairwise(config, "hard", tasks=["alpha", "gamma"], log=quiet, resume=again.run_dir)


def test_an_oriented_joint_method_reports_each_task_from_its_own_model(three_tasks):
    oriented = {"name": "hard", "label": "oriented", "train_tasks": "oriented", "sampler": "uniform"}
    config = parse_config(raw_config(["single_task", oriented], seeds=(1,)))
    result = run_pairwise(config, "oriented", tasks=["alpha", "beta"], log=quiet)
    pair = result.run_dir / "oriented" / "alpha+beta" / "seed-1"
    joint = [json.loads((pair / t / "metrics.json").read_text())["test"][t]["accuracy"] for t in ("alpha", "beta")]
    assert result.pairs[0].joint == pytest.approx(tuple(joint))


def test_bad_choices_are_one_line_errors(three_tasks):
    config = parse_config(raw_config(["single_task", "hard", {"name": "single_task", "label": "other"}]))
    with pytest.raises(ConfigError, match="--method 'cross': no such method entry"):
        pairwise_config(config, "cross", "single_task")
    with pytest.raises(ConfigError, match="trains every task separately"):
        pairwise_config(config, "other")
    with pytest.raises(ConfigError, match="several separately trained entries .*--alone"):
        pairwise_config(config, "hard")
    with pytest.raises(ConfigError, match="--alone 'hard' trains tasks together"):
        pairwise_config(config, "hard", "hard")
    assert [m.title for m in pairwise_config(config, "hard", "other").methods] == ["other", "hard"]
    grid = parse_config(raw_config([{"name": "cross_stitch", "grid": {"self_weight": [0.8, 0.9]}}]))
    with pytest.raises(ConfigError, match="a grid group: name one of its members"):
        pairwise_config(grid, "cross_stitch")
    plain = parse_config(raw_config(["hard"]))
    with pytest.raises(ConfigError, match="--tasks: unknown task 'delta'"):
        run_pairwise(plain, "hard", tasks=["alpha", "delta"], log=quiet)
    with pytest.raises(ConfigError, match="at least 2 tasks"):
        run_pairwise(plain, "hard", tasks=["alpha"], log=quiet)
    with pytest.raises(ConfigError, match="--metric 'span_f1': task 'alpha' has only"):
        run_pairwise(plain, "hard", metric="span_f1", log=quiet)
    assert not list(three_tasks.glob("runs/*")), "a refused run left a folder behind"


def test_the_command_writes_the_folder_and_prints_the_matrix(three_tasks, capsys):
    (three_tasks / "tiny.yaml").write_text(yaml.safe_dump(raw_config(["single_task", "hard"], seeds=(1,))))
    assert main(["pair-gain", "tiny.yaml", "--method", "hard", "--tasks", "alpha", "beta",
                 "--output-dir", "out", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "pair-wise performance gain: hard against single_task" in printed
    (folder,) = three_tasks.glob("out/tiny-pairs-hard-*")
    assert (folder / "ppg.md").is_file()
    assert main(["pair-gain", "tiny.yaml", "--method", "nope"]) == 2
    assert "--method 'nope': no such method entry" in capsys.readouterr().err


def test_an_interrupted_command_keeps_its_folder_and_resume_finds_it(three_tasks, monkeypatch, capsys):
    (three_tasks / "tiny.yaml").write_text(yaml.safe_dump(raw_config(["single_task", "hard"], seeds=(1,))))
    real = experiment.train_one

    def dies_on_the_last_pair(config, method, data, *rest):
        if data.task_names == ["beta", "gamma"]:
            raise KeyboardInterrupt
        return real(config, method, data, *rest)

    monkeypatch.setattr(experiment, "train_one", dies_on_the_last_pair)
    with pytest.raises(KeyboardInterrupt):
        run_pairwise(parse_config(raw_config(["single_task", "hard"], seeds=(1,))), "hard", log=quiet)
    (partial,) = three_tasks.glob("runs/tiny-pairs-hard-*.partial")
    assert (partial / "hard" / "alpha+beta" / "seed-1" / "metrics.json").is_file()
    monkeypatch.setattr(experiment, "train_one", real)
    assert main(["pair-gain", "tiny.yaml", "--method", "hard", "--resume", "--no-progress"]) == 0
    assert f"resuming runs/{partial.name}" in capsys.readouterr().err
    assert not partial.exists() and (partial.with_name(partial.name[: -len(".partial")]) / "ppg.csv").is_file()
