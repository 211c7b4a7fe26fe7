"""``methods[i].train_tasks``: together, separately, oriented (one model per task, trained on
every task, selected on and reported for its own task: Zhang et al. 2017's protocol)."""

from __future__ import annotations

import json

import pytest

from textmtl import experiment
from textmtl.config import parse_config
from textmtl.errors import ConfigError
from textmtl.experiment import run_experiment

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)


def _best_epoch_on(curves: list[dict], task: str) -> int:
    """The trainer's rule on one task: best dev accuracy, ties to the lower dev loss, then the
    earlier epoch."""
    for row in curves:  # the score the trainer selected with is this task's alone
        assert row["dev_score"] == row["dev"][task]["accuracy"]
        assert row["dev_loss"] == pytest.approx(row["dev"][task]["loss"])
    best = max(curves, key=lambda row: (row["dev"][task]["accuracy"], -row["dev"][task]["loss"], -row["epoch"]))
    return best["epoch"]


def test_oriented_trains_one_model_per_task_selected_on_it(workdir):  # noqa: F811
    methods = [{"name": "hard", "label": "oriented", "train_tasks": "oriented", "sampler": "uniform"},
               {"name": "hard", "label": "alone", "train_tasks": "separately"}, "hard"]
    config = config_for("mlp", methods, epochs=4)
    result = run_experiment(config, log=lambda line: None)
    for task in ("alpha", "beta"):
        folder = result.run_dir / "oriented" / "seed-1" / task
        metrics = json.loads((folder / "metrics.json").read_text())
        model = json.loads((folder / "model.json").read_text())
        assert [t["name"] for t in model["tasks"]] == ["alpha", "beta"]  # trained on every task
        curves = json.loads((folder / "curves.json").read_text())
        assert metrics["best_epoch"] == _best_epoch_on(curves, task)  # selected on its own task
        alone = json.loads((result.run_dir / "alone" / "seed-1" / task / "model.json").read_text())
        assert [t["name"] for t in alone["tasks"]] == [task]
    assert (result.run_dir / "hard" / "seed-1" / "metrics.json").is_file()
    # the table holds one record per (method, task): the oriented model of each task
    records = json.loads((result.run_dir / "records.json").read_text())
    oriented = sorted(r["task"] for r in records if r["method"] == "oriented")
    assert oriented == ["alpha", "beta"]
    for record in (r for r in records if r["method"] == "oriented"):
        metrics = json.loads((result.run_dir / "oriented" / "seed-1" / record["task"] / "metrics.json").read_text())
        assert record["test"] == metrics["test"][record["task"]]
    # a method trained separately is the table's baseline (the delta column)
    assert "Δ = method minus alone" in (result.run_dir / "results.md").read_text()


def test_a_sampler_that_takes_the_oriented_task_is_told_it(workdir, monkeypatch):  # noqa: F811
    built = []
    original = experiment.SAMPLERS.build

    def spy(name, task_names, params=None, where=""):
        built.append((name, dict(params or {})))
        return original(name, task_names, params=params, where=where)

    monkeypatch.setattr(experiment.SAMPLERS, "build", spy)
    method = {"name": "generalized_recurrent", "embedding_dim": 8, "hidden_dim": 4,
              "train_tasks": "oriented", "sampler": {"name": "task_oriented", "upsampling_coefficient": 1}}
    run_experiment(config_for("bilstm", [method], epochs=1), log=lambda line: None)
    assert [params.get("oriented_task") for name, params in built if name == "task_oriented"] == ["alpha", "beta"]


def test_bad_train_tasks_is_a_one_line_error():
    base = {"name": "x", "data": {"trec": {}}, "encoder": "mlp"}
    with pytest.raises(ConfigError, match="'methods.0.train_tasks' must be one of together, separately, "
                                          "oriented, got 'each'"):
        parse_config({**base, "methods": [{"name": "hard", "train_tasks": "each"}]})
    with pytest.raises(ConfigError, match="'methods.0.train_tasks' must be 'separately' for 'single_task'"):
        parse_config({**base, "methods": [{"name": "single_task", "train_tasks": "oriented"}]})

