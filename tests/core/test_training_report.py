"""The training summary (training.md): which trainings the epoch limit cut."""

import json

from textmtl.report.training import TrainingRun, read_runs, training_summary


def write_model(folder, best_epoch, epochs, seconds=10.0):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"best_epoch": best_epoch, "seconds_per_epoch": seconds, "dev": {}, "test": {}}))
    (folder / "curves.json").write_text(json.dumps([{"epoch": e} for e in range(1, epochs + 1)]))


def test_cut_by_limit_only_when_early_stopping_had_not_fired():
    # max_epochs 8, patience 2
    assert not TrainingRun(best_epoch=4, epochs=6, seconds_per_epoch=1).cut_by_limit(8, 2)  # stopped early
    assert not TrainingRun(best_epoch=6, epochs=8, seconds_per_epoch=1).cut_by_limit(8, 2)  # would stop now
    assert TrainingRun(best_epoch=7, epochs=8, seconds_per_epoch=1).cut_by_limit(8, 2)
    assert TrainingRun(best_epoch=8, epochs=8, seconds_per_epoch=1).cut_by_limit(8, 2)
    # patience 0 never stops early: cut when the last epoch was still the best
    assert TrainingRun(best_epoch=8, epochs=8, seconds_per_epoch=1).cut_by_limit(8, 0)
    assert not TrainingRun(best_epoch=5, epochs=8, seconds_per_epoch=1).cut_by_limit(8, 0)


def test_summary_reads_every_model_folder(tmp_path):
    write_model(tmp_path / "hard" / "seed-1", 3, 5, 20.0)
    write_model(tmp_path / "hard" / "seed-2", 8, 8, 30.0)
    for seed in (1, 2):  # single-task: one model per task
        for task, best in (("a", 2), ("b", 4)):
            write_model(tmp_path / "single_task" / f"seed-{seed}" / task, best, best + 2)
    assert [r.best_epoch for r in read_runs(tmp_path / "hard")] == [3, 8]
    text = training_summary(tmp_path, ["single_task", "hard", "missing"], max_epochs=8, patience=2)
    assert "| hard | 2 | 3, 8 | 5, 8 | 1 of 2 | 25.0 |" in text
    assert "| single_task | 4 | median 3 (2-4) | median 5 (4-6) | 0 of 4 | 10.0 |" in text
    assert "missing" not in text  # a method with no finished model has no row
