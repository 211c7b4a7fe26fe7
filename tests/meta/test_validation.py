"""The out-of-corpus validation of the meta-model (synthetic pair tables)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textmtl.errors import DataError
from textmtl.meta import validation as v
from textmtl.meta.metamodel import MetaModel, MetaSettings, fit_with_diagnostics
from textmtl.meta.study import PairOutcome

META = MetaSettings(scaling="standard", splits="kfold", score="accuracy", solver="liblinear")
NAMES = ("f0", "f1", "f2")


def table(n_tasks: int = 5, seed: int = 0, signal: float = 1.0) -> v.PairTable:
    """Every ordered pair of ``n_tasks`` tasks; the gain follows feature f0 (times ``signal``)."""
    rng = np.random.default_rng(seed)
    main, aux, rows, gains = [], [], [], []
    for m in range(n_tasks):
        for a in range(n_tasks):
            if m != a:
                x = rng.normal(size=3)
                main.append(f"t{m}")
                aux.append(f"t{a}")
                rows.append(x)
                gains.append(signal * x[0] + 0.1 * rng.normal())
    return v.PairTable(main, aux, np.asarray(gains), np.asarray(rows), NAMES)


def test_judge_a_perfect_ranking_a_reversed_one_and_a_constant():
    gains = np.array([-0.2, -0.1, 0.1, 0.3])
    perfect = v.judge("p", gains * 10, gains)
    assert perfect.spearman == pytest.approx(1.0) and perfect.auc == pytest.approx(1.0)
    reverse = v.judge("r", -gains, gains)
    assert reverse.spearman == pytest.approx(-1.0) and reverse.auc == pytest.approx(0.0)
    constant = v.judge("c", np.full(4, 0.5), gains)
    assert math.isnan(constant.spearman) and constant.auc == 0.5
    assert constant.row()[1] == "n/a"


def test_the_main_task_average_leaves_the_pair_itself_out():
    main = ["a", "a", "a", "b", "b"]
    gains = np.array([1.0, 2.0, 6.0, -1.0, 3.0])
    assert v.main_task_average(main, gains).tolist() == [4.0, 3.5, 1.5, 3.0, -1.0]
    # a main task with a single pair falls back to the other pairs' mean
    assert v.main_task_average(["a", "b"], np.array([1.0, 3.0])).tolist() == [3.0, 1.0]


def test_leave_one_task_out_never_fits_on_a_pair_of_the_held_out_task(monkeypatch):
    target = table()
    seen = []
    real_fit = v.fit_meta_model

    def spy(X, y, names, **kwargs):
        seen.append(X.copy())
        return real_fit(X, y, names, **kwargs)

    monkeypatch.setattr(v, "fit_meta_model", spy)
    predictions = v.leave_one_task_out(target, [], META)
    assert np.isfinite(predictions).all() and len(seen) == 5
    for task, X in zip(sorted(set(target.main)), seen):
        involved = [i for i, (m, a) in enumerate(zip(target.main, target.aux)) if task in (m, a)]
        fitted = {tuple(row) for row in X}
        assert not any(tuple(target.features[i]) in fitted for i in involved)
        assert len(X) == len(target.gain) - len(involved)


def test_a_model_that_learned_the_signal_ranks_new_pairs_and_the_baselines_do_not():
    reference, target = table(8, seed=1), table(6, seed=2)
    found = v.validate(target, {"ref": reference}, META)
    by_name = {j.name: j for j in found.judged}
    model = by_name["meta-model fitted on ref"]
    assert model.spearman > 0.8 and model.auc > 0.9
    assert math.isnan(by_name[v.CONSTANT].spearman) and by_name[v.CONSTANT].auc == 0.5
    # gains here do not depend on the main task: leaving the pair out makes its task's average
    # move against the pair's own gain, so this baseline ranks them backwards
    assert by_name[v.MAIN_AVERAGE].spearman < 0 < model.spearman
    assert found.best_model().name.startswith("meta-model")
    assert "meta-model fitted on ref + target pairs (leave one task out)" in by_name


def test_the_shipped_model_records_its_cross_validation_ranges_and_out_of_corpus_numbers():
    reference, target = table(8, seed=1), table(6, seed=2)
    found = v.validate(target, {"ref": reference}, META, {"other": target.gain[::-1].copy()})
    name = "meta-model fitted on ref"
    model = v.ship(found, name, META, runs=3, trained_on={"command": "test"})
    info = model.trained_on
    assert info["fitted_on"] == "ref" and info["pairs"] == len(reference.gain) and info["command"] == "test"
    assert set(info["cv"]) >= {"accuracy", "f1", "majority_accuracy", "always_helps_f1", "runs", "folds"}
    assert info["feature_min"] == pytest.approx(reference.features.min(axis=0).tolist())
    assert info["out_of_corpus"]["model"]["spearman"] == pytest.approx(found.judgement(name).spearman)
    assert "other" in info["out_of_corpus"]["independent"]


def test_fit_with_diagnostics_compares_with_answers_that_need_no_features():
    t = table(6)
    model = fit_with_diagnostics(t.features, (t.gain > 0).astype(int), list(NAMES), meta=META, runs=5)
    cv = model.trained_on["cv"]
    helps = float((t.gain > 0).mean())
    assert cv["majority_accuracy"] == pytest.approx(max(helps, 1 - helps))
    assert cv["always_helps_f1"] == pytest.approx(2 * helps / (1 + helps))
    assert cv["accuracy"][0] > cv["majority_accuracy"]  # the signal is learnable


def test_pairs_files_round_trip_and_bad_ones_are_one_line(tmp_path):
    outcomes = [PairOutcome(("a", "b"), ("c", "d"), [0.8, 0.82], [0.85, 0.83], {}, {}),
                PairOutcome(("c", "d"), ("a", "b"), [0.7], [0.69], {}, {})]
    path = tmp_path / "pairs.csv"
    v.write_pairs(path, outcomes, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), NAMES)
    back = v.read_pairs(path, ("f2", "f0"))
    assert back.main == ["a|b", "c|d"] and back.features.tolist() == [[3.0, 1.0], [6.0, 4.0]]
    assert back.gain == pytest.approx([0.03, -0.01])
    with pytest.raises(DataError, match="feature column 'nope' is missing"):
        v.read_pairs(path, ("nope",))
    path.write_text("main,aux,single,mtl,gain,f0\na|b,c|d,0.8,0.8,x,1\n")
    with pytest.raises(DataError, match="line 2: expected numbers"):
        v.read_pairs(path)
    path.write_text("something else\n")
    with pytest.raises(DataError, match="expected a header"):
        v.read_pairs(path)
    with pytest.raises(DataError, match="cannot read"):
        v.read_pairs(tmp_path / "missing.csv")


def test_the_model_file_keeps_the_diagnostics(tmp_path):
    t = table(5)
    model = fit_with_diagnostics(t.features, (t.gain > 0).astype(int), list(NAMES), meta=META, runs=2)
    model.to_json(tmp_path / "m.json")
    assert MetaModel.from_json(tmp_path / "m.json").trained_on["cv"] == model.trained_on["cv"]
