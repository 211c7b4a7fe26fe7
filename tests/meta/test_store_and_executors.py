"""The results store survives a kill; the Dask executor gives the local results."""

from __future__ import annotations

import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest

from textmtl.errors import DataError
from textmtl.meta.store import RunStore
from textmtl.meta.study import StudySettings, plan_study, run_study
from textmtl.sweep import LocalExecutor

# small but not instant: the kill must land while runs are still going
SETTINGS = replace(StudySettings.quick(), pairs=3, mtl_epochs=40, curve_epochs=60, f1_epoch=40, eval_every=20)


def stored(store: RunStore) -> dict[str, tuple]:
    return {row.key: (row.metrics, row.curves) for row in store.rows()}


def test_a_killed_study_resumes_without_losing_or_repeating_runs(tmp_path, study_arrays):
    plan = plan_study(SETTINGS)
    arrays_file, db = tmp_path / "arrays.pkl", tmp_path / "study.sqlite"
    arrays_file.write_bytes(pickle.dumps(study_arrays))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import pickle, sys
        from dataclasses import replace
        from textmtl.meta.store import RunStore
        from textmtl.meta.study import StudySettings, plan_study, run_study
        from textmtl.sweep import LocalExecutor
        settings = replace(StudySettings.quick(), pairs=3, mtl_epochs=40, curve_epochs=60, f1_epoch=40, eval_every=20)
        arrays = pickle.loads(open(sys.argv[1], "rb").read())
        with RunStore(sys.argv[2]) as store:
            run_study(plan_study(settings), arrays, store, LocalExecutor(0))
    """))
    process = subprocess.Popen([sys.executable, str(script), str(arrays_file), str(db)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(0.05)
            if db.exists():
                try:
                    count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    continue
                if count >= 3:
                    break
        process.send_signal(signal.SIGKILL)  # no chance to clean up
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    with RunStore(db) as store:
        before = stored(store)
        assert 3 <= len(before) < len(plan.units), "the kill should land mid-study"
        run = run_study(plan, study_arrays, store, LocalExecutor(0))
        after = stored(store)
    assert run.already_done == len(before)
    assert run.executed == len(plan.units) - len(before)  # nothing repeated
    assert set(after) == {u.key for u in plan.units}       # nothing lost
    assert all(after[k] == v for k, v in before.items())
    # and the resumed results are those of an uninterrupted study
    with RunStore(tmp_path / "clean.sqlite") as clean:
        run_study(plan, study_arrays, clean, LocalExecutor(0))
        assert stored(clean) == after


def test_a_finished_study_runs_nothing(tmp_path, study_arrays):
    settings = replace(SETTINGS, mtl_epochs=2, curve_epochs=2, f1_epoch=2, eval_every=1)
    plan = plan_study(settings)
    with RunStore(tmp_path / "s.sqlite") as store:
        first = run_study(plan, study_arrays, store, LocalExecutor(0))
        second = run_study(plan, study_arrays, store, LocalExecutor(0))
    assert first.executed == len(plan.units) and second.executed == 0


def test_a_file_that_is_not_a_study_database_is_a_data_error(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database" * 100)
    with pytest.raises(DataError, match="notes.sqlite"):
        RunStore(path)


def test_process_pool_matches_in_process_results(tmp_path, study_arrays):
    settings = replace(SETTINGS, mtl_epochs=2, curve_epochs=3, f1_epoch=2, eval_every=1, pairs=2)
    plan = plan_study(settings)
    with RunStore(tmp_path / "a.sqlite") as a, RunStore(tmp_path / "b.sqlite") as b:
        run_study(plan, study_arrays, a, LocalExecutor(0))
        run_study(plan, study_arrays, b, LocalExecutor(2))
        assert stored(a) == stored(b)


def test_models_trained_side_by_side_store_what_models_trained_alone_store(tmp_path, study_arrays):
    # the GPU path (several units per engine call) on the CPU: same keys, same numbers to rounding
    settings = replace(SETTINGS, mtl_epochs=3, curve_epochs=4, f1_epoch=3, eval_every=1, pairs=2)
    plan = plan_study(settings)
    with RunStore(tmp_path / "alone.sqlite") as a, RunStore(tmp_path / "grouped.sqlite") as b:
        run_study(plan, study_arrays, a, LocalExecutor(0))
        run = run_study(plan, study_arrays, b, LocalExecutor(0), models_per_call=3)
        alone, grouped = stored(a), stored(b)
    assert run.executed == len(plan.units) and alone.keys() == grouped.keys()
    for key, (metrics, curves) in alone.items():
        for task, losses in curves.items():
            np.testing.assert_allclose(grouped[key][1][task], losses, rtol=1e-5)
        for task, by_epoch in metrics.items():
            assert grouped[key][0][task] == pytest.approx(by_epoch, abs=0.01)


def test_dask_cluster_matches_local_results(tmp_path, study_arrays):
    distributed = pytest.importorskip("distributed")
    from textmtl.sweep import DaskExecutor

    settings = replace(SETTINGS, mtl_epochs=2, curve_epochs=3, f1_epoch=2, eval_every=1, pairs=2)
    plan = plan_study(settings)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True,
                                  dashboard_address=None) as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        try:
            assert "2 worker" in executor.describe()
            with RunStore(tmp_path / "dask.sqlite") as remote:
                run_study(plan, study_arrays, remote, executor)
                remote_rows = stored(remote)
        finally:
            executor.close()
    with RunStore(tmp_path / "local.sqlite") as local:
        run_study(plan, study_arrays, local, LocalExecutor(0))
        assert stored(local) == remote_rows


def _compute_threads(_payload, _shared):
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({pool["num_threads"] for pool in threadpool_info()})


def test_pool_workers_use_one_compute_thread_each():
    # two workers with a BLAS thread per core each would fight over the cores (docs/meta-study.md)
    results = [result for _, result in LocalExecutor(1).map(_compute_threads, [0], None)]
    assert results == [(1, [1])]


def _pid_then_sleep(payload, folder):
    import os
    from pathlib import Path

    Path(folder, f"{payload}.pid").write_text(str(os.getpid()))
    time.sleep(0 if payload == "quick" else 120)
    return payload


def test_a_caller_that_stops_reading_ends_the_running_jobs(tmp_path):
    # Ctrl-C in `textmtl run --workers 2` must not wait for a 30-minute training to finish
    import os

    jobs = LocalExecutor(2).map(_pid_then_sleep, ["quick", "slow"], str(tmp_path))
    assert next(jobs) == ("quick", "quick")
    while not (tmp_path / "slow.pid").exists():  # the slow job is running in the other worker
        time.sleep(0.1)
    pid = int((tmp_path / "slow.pid").read_text())
    import threading

    closing = threading.Thread(target=jobs.close)  # what an exception in the caller does to the generator
    closing.start()
    closing.join(timeout=20)
    assert not closing.is_alive(), "stopping waited for the running job (120 s) instead of ending it"
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker running the slow job is still alive 10 s after the caller stopped")
