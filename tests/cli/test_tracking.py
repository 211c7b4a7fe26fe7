"""Tracking: every training's per-epoch curves (losses, dev metrics, learning rates, mixing
weights) in curves.json and, with ``--tensorboard``, in TensorBoard event files;
``textmtl plot`` draws them."""

from __future__ import annotations

import builtins
import json

import pytest
import yaml

from textmtl.cli import main
from textmtl.errors import ConfigError
from textmtl.experiment import run_experiment
from textmtl.report.curves import plot_run

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_event_files_hold_the_curves_of_every_training(workdir, tmp_path):  # noqa: F811
    pytest.importorskip("tensorboard")
    config = config_for("mlp", ["hard", {"name": "cross_stitch", "self_weight": 0.9}], epochs=3)
    config.training.tensorboard = str(tmp_path / "tb")
    result = run_experiment(config, log=lambda line: None)
    for method in ("hard", "cross_stitch"):
        curves = json.loads((result.run_dir / method / "seed-1" / "curves.json").read_text())
        logged = scalars(tmp_path / "tb" / "tiny" / f"{method} seed 1")
        assert [step for step, _ in logged["train_loss/alpha"]] == [1, 2, 3]
        for row in curves:  # the event file and curves.json hold the same numbers
            epoch = row["epoch"]
            assert dict(logged["train_loss/beta"])[epoch] == pytest.approx(row["train_loss"]["beta"])
            assert dict(logged["dev/alpha/accuracy"])[epoch] == pytest.approx(row["dev"]["alpha"]["accuracy"])
            assert dict(logged["dev/score"])[epoch] == pytest.approx(row["dev_score"])
            for group, lr in row["lr"].items():
                assert lr == pytest.approx(config.training.lr)  # no decay in this config
                assert dict(logged[f"lr/{group}"])[epoch] == pytest.approx(lr)
    mixing = json.loads((result.run_dir / "cross_stitch" / "seed-1" / "curves.json").read_text())[-1]["mixing"]
    saved = json.loads((result.run_dir / "cross_stitch" / "seed-1" / "mixing.json").read_text())
    first = saved["alpha"][0]
    key = f"alpha/{first['after']}/alpha>beta"
    assert key in mixing and f"mixing/{key}" in scalars(tmp_path / "tb" / "tiny" / "cross_stitch seed 1")
    assert "mixing" not in json.loads((result.run_dir / "hard" / "seed-1" / "curves.json").read_text())[0]


def test_a_missing_tensorboard_is_one_line_before_training(workdir, monkeypatch):  # noqa: F811
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    config = config_for("mlp", ["hard"])
    config.training.tensorboard = "tb"
    with pytest.raises(ConfigError, match=r"needs TensorBoard: pip install 'textmtl\[tracking\]'"):
        run_experiment(config, log=lambda line: None)
    assert not (workdir / "runs").exists() or not list((workdir / "runs").iterdir())


def test_plot_draws_a_figure_per_method(workdir, capsys):  # noqa: F811
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config_for("mlp", ["single_task", "hard"], epochs=2).to_dict()))
    assert main(["run", "tiny.yaml", "--no-progress", "--tensorboard", "tb"]) == 0
    (run,) = (workdir / "runs").glob("tiny-*")
    assert (workdir / "tb" / "tiny" / "single_task alpha seed 1").is_dir()  # --tensorboard reached training
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(run / "plots" / f"{m}.png") for m in ("single_task", "hard"))
    assert all((run / "plots" / f"{m}.png").stat().st_size > 0 for m in ("single_task", "hard"))
    with pytest.raises(ConfigError, match="a model folder, not a run folder"):
        plot_run(run / "hard" / "seed-1")
    (workdir / "empty").mkdir()
    with pytest.raises(ConfigError, match="no finished model with curves.json inside"):
        plot_run(workdir / "empty")
    assert main(["plot", str(workdir / "nowhere")]) == 2
    assert "run folder not found" in capsys.readouterr().err
