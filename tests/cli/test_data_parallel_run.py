"""``textmtl run CONFIG --ddp 2``: torchrun starts two gloo processes that train every model of
the config data-parallel; rank 0 writes the run folder, whose table and weights equal those of
the one-process run."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
import yaml

from textmtl.cli import main

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)


def test_two_processes_write_the_run_of_one(workdir, capsys):  # noqa: F811
    config = config_for("mlp", ["single_task", "hard"], seeds=(1,), epochs=2).to_dict()
    config["encoder"]["dropout"] = 0.0  # dropout masks are drawn per process: no exact equality
    config["training"]["threads"] = 1
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "tiny.yaml", "--no-progress", "--output-dir", "one"]) == 0
    (one,) = (workdir / "one").glob("tiny-*")
    done = subprocess.run([sys.executable, "-m", "textmtl", "run", "tiny.yaml", "--no-progress",
                           "--output-dir", "two", "--ddp", "2"], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "data-parallel over 2 processes" in done.stderr
    assert done.stdout.count("run folder:") == 1  # rank 0 alone reports
    (two,) = (workdir / "two").glob("tiny-*")
    assert (two / "results.md").read_text().split("\n- ")[0] == (one / "results.md").read_text().split("\n- ")[0]
    for folder in ("hard/seed-1", "single_task/seed-1/alpha"):
        ours = torch.load(two / folder / "checkpoint.pt", weights_only=False)
        theirs = torch.load(one / folder / "checkpoint.pt", weights_only=False)
        flat = lambda state: {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}  # noqa: E731
        for name, value in flat(theirs.get("state", theirs)).items():
            torch.testing.assert_close(flat(ours.get("state", ours))[name], value, rtol=1e-4, atol=1e-5)
        assert json.loads((two / folder / "metrics.json").read_text())["best_epoch"] == \
            json.loads((one / folder / "metrics.json").read_text())["best_epoch"]


def test_a_data_parallel_run_needs_two_processes(capsys):
    # what a group refuses (weightings, methods) is tested in tests/core/test_data_parallel.py
    assert main(["run", "x.yaml", "--ddp", "1"]) == 2
    assert "--ddp expects 2 or more processes" in capsys.readouterr().err
