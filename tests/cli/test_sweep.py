"""``textmtl sweep``: a grid of config overrides, one run folder per cell, one summary table
(mean ± std over seeds per cell and method, the best by dev), resumable; bad grids refused
before anything trains."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml

from textmtl import experiment
from textmtl.cli import main
from textmtl.errors import ConfigError
from textmtl.override_grid import grid_cells, parse_grid, run_sweep

from cli.test_models import workdir  # noqa: F401  (fixture)


def quiet(line):
    pass


@pytest.fixture
def config_file(workdir):  # noqa: F811
    config = {"name": "tiny", "output_dir": "runs",
              "data": {"user_files": [{"path": f, "name": n, "dev_fraction": 0.25, "test_fraction": 0.25}
                                      for f, n in (("a.csv", "alpha"), ("b.csv", "beta"))]},
              "features": {"min_df": 1, "max_features": 100}, "encoder": {"name": "mlp", "hidden_dims": [8]},
              "methods": ["hard"], "seeds": [1, 2],
              "training": {"max_epochs": 2, "patience": 0, "batch_size": 8, "progress": False}}
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_grid_values_are_yaml_and_every_combination_is_a_cell():
    grid = parse_grid(["training.lr=0.01,0.05", "methods=[hard],[single_task, hard]"])
    assert grid == [("training.lr", [0.01, 0.05]), ("methods", [["hard"], ["single_task", "hard"]])]
    cells = grid_cells(grid)
    assert [c.title for c in cells] == [
        'training.lr=0.01, methods=["hard"]', 'training.lr=0.01, methods=["single_task", "hard"]',
        'training.lr=0.05, methods=["hard"]', 'training.lr=0.05, methods=["single_task", "hard"]']
    for bad, message in (("lr", "expects KEY=V1,V2"), ("training.lr=", "one or more comma-separated"),
                         ("a=[1", "cannot read the values")):
        with pytest.raises(ConfigError, match=message):
            parse_grid([bad])
    with pytest.raises(ConfigError, match="names 'a' twice"):
        parse_grid(["a=1", "a=2"])
    with pytest.raises(ConfigError, match="at least one --grid"):
        parse_grid([])


def test_a_sweep_runs_every_cell_and_summarises_it_from_the_runs(config_file):
    result = run_sweep(config_file, ["training.lr=0.01,0.05", "methods=[hard],[single_task]"], log=quiet)
    assert result.folder.name.startswith("tiny-sweep-") and not result.folder.name.endswith(".partial")
    runs = sorted(p.name.split("-")[1] for p in result.folder.glob("cell-*"))
    assert runs == ["01", "02", "03", "04"]
    assert [(r["cell"], r["method"]) for r in result.rows] == [(1, "hard"), (2, "single_task"),
                                                               (3, "hard"), (4, "single_task")]
    for row in result.rows:  # each row from its own run's records: mean over tasks, then seeds
        (run,) = result.folder.glob(f"cell-{row['cell']:02d}-*")
        records = [r for r in json.loads((run / "records.json").read_text()) if r["method"] == row["method"]]
        per_seed = [statistics.mean(r["test"]["accuracy"] for r in records if r["seed"] == s) * 100 for s in (1, 2)]
        assert row["test_mean"] == pytest.approx(statistics.mean(per_seed))
        assert row["test_std"] == pytest.approx(statistics.stdev(per_seed))
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["training"]["lr"] == (0.01 if row["cell"] <= 2 else 0.05)
    best = [r for r in result.rows if r["best"]]
    assert len(best) == 1 and best[0]["dev_mean"] == max(r["dev_mean"] for r in result.rows)
    with open(result.folder / "summary.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert "best (dev)" in (result.folder / "summary.md").read_text()


def test_an_interrupted_sweep_resumes_without_repeating_a_finished_cell(config_file, monkeypatch, capsys):
    real = experiment.train_one
    calls = []

    def dies_in_the_second_cell(config, method, data, seed, *rest):
        if config.training.lr == 0.05 and seed == 2:
            raise KeyboardInterrupt
        calls.append((config.training.lr, seed))
        return real(config, method, data, seed, *rest)

    monkeypatch.setattr(experiment, "train_one", dies_in_the_second_cell)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config_file, ["training.lr=0.01,0.05"], log=quiet)
    (partial,) = config_file.parent.glob("runs/tiny-sweep-*.partial")
    assert calls == [(0.01, 1), (0.01, 2), (0.05, 1)]
    calls.clear()
    monkeypatch.setattr(experiment, "train_one", lambda *a: calls.append((a[0].training.lr, a[3])) or real(*a))
    assert main(["sweep", str(config_file), "--grid", "training.lr=0.01,0.05", "--resume", "--no-progress"]) == 0
    assert calls == [(0.05, 2)], "resuming repeated finished trainings"
    out = capsys.readouterr()
    assert f"resuming runs/{partial.name}" in out.err and "done in an earlier run" in out.out
    with pytest.raises(ConfigError, match="made with other overrides or another grid"):
        run_sweep(config_file, ["training.lr=0.01,0.1"], log=quiet,
                  resume=partial.with_name(partial.name[: -len(".partial")]))


def test_a_bad_cell_is_refused_before_anything_trains(config_file, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "train_one", lambda *a: pytest.fail("trained before checking every cell"))
    with pytest.raises(ConfigError, match=r"sweep cell 2 \(training.lr=-1\): .*training.lr"):
        run_sweep(config_file, ["training.lr=0.01,-1"], log=quiet)
    assert main(["sweep", str(config_file), "--grid", "training.nope=1,2"]) == 2
    assert "sweep cell 1 (training.nope=1)" in capsys.readouterr().err
    assert not list(config_file.parent.glob("runs/*")), "a refused sweep left a folder behind"
