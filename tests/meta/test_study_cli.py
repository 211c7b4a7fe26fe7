"""``textmtl study 20ng`` and ``textmtl advise`` on the real data (skipped without it)."""

from __future__ import annotations

import json
import os

import pytest

from textmtl.cli import main


@pytest.fixture(scope="module")
def data_dir():
    value = os.environ.get("TEXTMTL_DATA_DIR")
    if not value:
        pytest.skip("TEXTMTL_DATA_DIR not set: the study commands need the real 20 Newsgroups data")
    return value


@pytest.mark.parametrize("protocol", ["authors", "cleaned"])
def test_a_small_study_writes_tables_figures_and_an_advisor(tmp_path, data_dir, capsys, protocol):
    out = tmp_path / "study"

    def command(f1_epoch: int) -> list[str]:
        return ["study", "20ng", "--quick", "--protocol", protocol, "--pairs", "6", "--mtl-epochs", "3",
                "--curve-epochs", "4", "--f1-epoch", str(f1_epoch), "--meta-runs", "2", "--workers", "0",
                "--no-progress", "--out", str(out)]

    argv = command(3)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and "Table 2" in printed and "Table 3a" in printed and "Table 3b" in printed
    assert ("accuracy (F1 micro)" in printed) == (protocol == "authors")
    for name in ("tables.md", "table1.csv", "table2.csv", "figure4_f1_over_epochs.png",
                 "figure5_related_gains.png", "summary.json", "study.sqlite"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == protocol and summary["pairs"] == {"related": 6, "unrelated": 6}
    assert summary["run_now"] == summary["trainings"] > 0
    assert set(summary["seconds_per_training"]) == {"single", "mtl"}
    # a second call finds every run in the store; another epoch of an every-epoch study too
    assert main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["run_now"] == 0
    if protocol == "authors":  # every epoch is scored: another --f1-epoch trains nothing
        assert main(command(2)) == 0
        assert json.loads((out / "summary.json").read_text())["run_now"] == 0


def test_advise_answers_for_a_pair_outside_the_study(data_dir, capsys):
    # baseball vs hockey share a father, so no study pair has it as a main task
    assert main(["advise", "--main", "20ng:baseball,hockey", "--aux", "20ng:autos,motorcycles",
                 "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "P(multi-task learning helps the main task) = " in out
    probability = float(out.split("P(multi-task learning helps the main task) = ")[1].split()[0])
    assert 0.0 <= probability <= 1.0
    assert "features that drove it" in out


def test_advise_takes_a_user_file_and_a_builtin_multiclass_task(tmp_path, data_dir, capsys):
    rng = __import__("random").Random(0)
    sports, cooking = ["match", "goal", "team", "coach", "season"], ["oven", "flour", "recipe", "bake", "salt"]
    rows = ["text,label"] + [f"{' '.join(rng.choices(words, k=12))},{label}"
                             for _ in range(60) for words, label in ((sports, "sport"), (cooking, "food"))]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["advise", "--main", f"file:{tmp_path / 'mine.csv'}", "--aux", "trec:trec_coarse:LOC,NUM",
                 "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "main task:      mine:food,sport" in out and "trec:trec_coarse:LOC,NUM" in out
    # the packaged meta-model is the one `textmtl study fdu` ships: both corpora's 808 pairs
    assert "fitted on 808 pairs (20NG UNRELATED + 20NG RELATED + target pairs" in out
    assert "cross-validated on its training pairs" in out and "on 240 FDU-MTL pairs it was not fitted on" in out


def test_the_fdu_study_validates_the_meta_model_on_pairs_it_never_saw(tmp_path, data_dir, capsys):
    from pathlib import Path

    reference = Path(__file__).resolve().parents[2] / "results" / "study-20ng-authors"
    out = tmp_path / "fdu"
    argv = ["study", "fdu", "--quick", "--meta-runs", "2", "--no-progress", "--out", str(out), "--reference",
            str(reference), "--data-dir", data_dir, "--export-advisor", str(tmp_path / "advisor.json")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 domains, 12 ordered pairs" in printed and "Out-of-corpus validation" in printed
    assert "baseline: main task's average gain over its other pairs" in printed
    for name in ("pairs_fdu.csv", "validation.md", "summary.json", "advisor.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 12 and summary["shipped"].startswith("meta-model fitted on")
    # the exported model is one the advisor can use, with its numbers
    from textmtl.meta.metamodel import MetaModel

    model = MetaModel.from_json(tmp_path / "advisor.json")
    assert len(model.feature_names) == 30 and "cv" in model.trained_on and "out_of_corpus" in model.trained_on
    # resumed: every run is in the store
    assert main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["run_now"] == 0


def test_the_fdu_study_needs_a_finished_20ng_study_as_reference(tmp_path, data_dir, capsys):
    assert main(["study", "fdu", "--quick", "--out", str(tmp_path / "o"), "--reference", str(tmp_path),
                 "--data-dir", data_dir]) == 2
    err = capsys.readouterr().err.strip()
    assert "no pairs_unrelated.csv or pairs_related.csv" in err and "\n" not in err


@pytest.mark.parametrize("argv, expected", [
    (["advise", "--main", "20ng:baseball", "--aux", "20ng:autos,motorcycles"], "expected two topics"),
    (["advise", "--main", "20ng:baseball,nosuchtopic", "--aux", "20ng:autos,motorcycles"], "'nosuchtopic'"),
    (["advise", "--main", "nosuchdataset:x", "--aux", "20ng:autos,motorcycles"], "unknown dataset"),
    (["study", "20ng", "--seeds", "0"], "'seeds' must be >= 1"),
    (["study", "20ng", "--scheduler", "nonsense"], "--scheduler expects"),
    (["study", "20ng", "--device", "tpu0"], "'--device' must be auto, cpu or cuda[:N]"),
    (["study", "20ng", "--models-per-call", "0"], "--models-per-call must be >= 1"),
    (["study", "20ng", "--set", "nosuch=1"], "--set nosuch: unknown setting"),
    (["study", "20ng", "--protocol", "cleaned", "--set", "bce_clip=1e-7"], "needs head 'sigmoid'"),
    (["study", "20ng", "--f1-epoch", "120"], "'f1_epoch' must be within 1..100"),
])
def test_bad_input_is_one_line_and_exit_2(argv, expected, data_dir, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[0] == "study" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_a_non_database_store_is_rejected(tmp_path, data_dir, capsys):
    db = tmp_path / "notes.sqlite"
    db.write_text("not sqlite " * 200)
    argv = ["study", "20ng", "--quick", "--pairs", "1", "--workers", "0", "--no-progress",
            "--db", str(db), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "notes.sqlite" in capsys.readouterr().err
    assert db.read_text().startswith("not sqlite")  # nothing lost
