"""The task clusters of cluster-layer models are saved with the model and shown by
``textmtl clusters RUN_DIR``."""

from __future__ import annotations

import json

from textmtl.cli import main
from textmtl.experiment import run_experiment
from textmtl.report.clusters import format_clusters, groups

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)

NCMTL = {"name": "cluster_layers", "widths": [4, 3], "clusters": [1, 2], "freeze_after_epochs": 1}


def test_clusters_are_saved_drawn_and_printed(workdir, capsys):  # noqa: F811
    run = run_experiment(config_for("mlp", ["hard", NCMTL], epochs=2), log=lambda line: None).run_dir
    assert not (run / "hard" / "seed-1" / "clusters.json").exists()  # hard sharing clusters nothing
    folder = run / "cluster_layers" / "seed-1"
    assert (folder / "clusters.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((folder / "clusters.json").read_text())
    assert report["tasks"] == ["alpha", "beta"] and report["frozen"]
    first, second = report["layers"]
    assert groups(first["assignments"]) == [["alpha", "beta"]]  # one cluster: both tasks
    assert sorted(map(len, groups(second["assignments"]))) == [1, 1]  # two clusters, two tasks
    counts = report["parameter_counts"]
    assert counts[0]["centres"] * 2 == counts[0]["task_layers"]  # 1 centre for 2 task layers
    assert counts[1]["centres"] == counts[1]["task_layers"]
    assert len(report["epochs"]) >= 1 and report["epochs"][0]["clusterings"] > 0

    assert main(["clusters", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "== cluster_layers/seed-1" in printed and "== hard" not in printed
    assert "cluster layer 1 (width 4, 1 of 1 clusters used)" in printed and "  1: alpha, beta" in printed
    assert "frozen after epoch 1" in printed
    assert format_clusters(report) in printed
    assert main(["clusters", str(run / "hard")]) == 2  # a one-line error
    assert "no model folder of a cluster-layer method" in capsys.readouterr().err
