"""What DRN and FAFS learned is saved with the model and printed: ``textmtl covariance RUN_DIR``
(the task covariance, JSON and heatmap) and ``textmtl branches RUN_DIR`` (the branching tree)."""

from __future__ import annotations

import json

from textmtl.cli import main
from textmtl.experiment import run_experiment
from textmtl.report.branching import format_branching
from textmtl.report.task_covariance import format_task_covariance

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)

FAFS = {"name": "fully_adaptive", "widths": [6, 4], "split_epochs": [1, 2], "complexity_weight": 0.0}
DRN = {"name": "soft", "label": "drn", "regularizers": [
    {"name": "task_covariance", "weight": 0.01, "update_every": 2, "parameters": ["encoders.hidden_layers"]}]}


def test_tree_and_covariance_are_saved_drawn_and_printed(workdir, capsys):  # noqa: F811
    run = run_experiment(config_for("mlp", [FAFS, DRN], epochs=3), log=lambda line: None).run_dir
    fafs, drn = run / "fully_adaptive" / "seed-1", run / "drn" / "seed-1"
    assert not (drn / "branching.json").exists() and not (fafs / "task_covariance.json").exists()

    tree = json.loads((fafs / "branching.json").read_text())
    assert tree["tasks"] == ["alpha", "beta"] and tree["widths"] == [6, 4]
    assert 1 <= len(tree["splits"]) <= 2  # the rounds the selected epoch had seen
    assert main(["branches", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "== fully_adaptive/seed-1" in printed and format_branching(tree) in printed
    assert "round after epoch 1, layer 2" in printed

    covariance = json.loads((drn / "task_covariance.json").read_text())
    assert covariance["tasks"] == ["alpha", "beta"] and covariance["updates"] > 0
    (layer,) = covariance["layers"]
    assert layer["name"] == "encoders.hidden_layers.0" and len(layer["covariance"]) == 2
    assert (drn / "task_covariance.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["covariance", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "== drn/seed-1" in printed and format_task_covariance(covariance) in printed
    assert "most related: alpha-beta" in printed

    assert main(["branches", str(drn)]) == 2  # a one-line error
    assert "no model folder of a widening method" in capsys.readouterr().err
    assert main(["covariance", str(run / "nowhere")]) == 2
    assert "run folder not found" in capsys.readouterr().err
