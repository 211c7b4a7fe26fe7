"""``textmtl run --scheduler``: the (method, seed) trainings of a config on a Dask cluster give
the run folder and table of a local run; the workers need not share this machine's disk (each
model folder comes back as bytes and is written here)."""

from __future__ import annotations

import json

import pytest

from textmtl.cli import main
from textmtl.experiment import run_experiment

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True,
                                  dashboard_address=None) as running:
        yield running


def test_a_run_on_a_local_cluster_equals_the_local_run_and_resumes(workdir, cluster):  # noqa: F811
    from textmtl.sweep import DaskExecutor

    config = config_for("mlp", ["single_task", "hard"], seeds=(1, 2))
    local = run_experiment(config, log=lambda line: None)
    lines = []
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        remote = run_experiment(config, log=lines.append, executor=executor)
        assert remote.table.rows == local.table.rows
        assert any("on Dask cluster" in line and "2 worker" in line for line in lines)
        assert sum(line.startswith("  finished ") for line in lines) == 6  # 2 tasks x 2 seeds + 2 seeds
        for name in ("model.json", "featurizer.json", "checkpoint.pt", "curves.json"):
            assert (remote.run_dir / "hard" / "seed-2" / name).is_file()
        ours = json.loads((remote.run_dir / "hard" / "seed-2" / "metrics.json").read_text())
        theirs = json.loads((local.run_dir / "hard" / "seed-2" / "metrics.json").read_text())
        for task in ("alpha", "beta"):
            assert ours["test"][task] == pytest.approx(theirs["test"][task])
        assert not list(remote.run_dir.rglob("*.tmp"))
        # a missing model is trained again on the cluster, and only it
        (remote.run_dir / "hard" / "seed-1" / "metrics.json").unlink()
        lines.clear()
        again = run_experiment(config, log=lines.append, resume=remote.run_dir, executor=executor)
        assert again.table.rows == local.table.rows
        assert [line.split(" (")[0] for line in lines if line.startswith("  finished ")] == ["  finished hard seed 1"]
    finally:
        executor.close()


def test_the_command_line_takes_a_scheduler(workdir, cluster, capsys):  # noqa: F811
    import yaml

    config = {"name": "tiny", "output_dir": "runs",
              "data": {"user_files": [{"path": "a.csv", "name": "alpha", "dev_fraction": 0.25, "test_fraction": 0.25}]},
              "features": {"min_df": 1, "max_features": 100}, "encoder": {"name": "mlp", "hidden_dims": [4]},
              "methods": ["single_task"], "seeds": [1], "training": {"max_epochs": 1, "batch_size": 8}}
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "tiny.yaml", "--no-progress", "--scheduler", cluster.scheduler_address]) == 0
    assert "on Dask cluster" in capsys.readouterr().out
    assert main(["run", "tiny.yaml", "--scheduler", cluster.scheduler_address, "--workers", "2"]) == 2
    assert "--workers and --scheduler exclude each other" in capsys.readouterr().err
    assert main(["run", "tiny.yaml", "--scheduler", "nowhere"]) == 2
    assert "--scheduler expects a Dask scheduler address" in capsys.readouterr().err


def test_a_sweep_on_the_cluster_gives_the_local_summary(workdir, cluster):  # noqa: F811
    import yaml

    from textmtl.override_grid import run_sweep
    from textmtl.sweep import DaskExecutor

    config = config_for("mlp", ["hard"], seeds=(1, 2)).to_dict()
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    grid = ["training.lr=0.01,0.05", "methods=[hard],[single_task]"]
    local = run_sweep(workdir / "tiny.yaml", grid, output_dir="local", log=lambda line: None)
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        remote = run_sweep(workdir / "tiny.yaml", grid, output_dir="remote", log=lambda line: None,
                           executor=executor)
    finally:
        executor.close()
    assert len(remote.rows) == len(local.rows) == 4
    for ours, theirs in zip(remote.rows, local.rows):
        assert {k: v for k, v in ours.items() if k != "run"} == pytest.approx(
            {k: v for k, v in theirs.items() if k != "run"})
