"""The meta-model: labels, normalisation, cross-validation, inverse ranks, saving and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textmtl.errors import DataError
from textmtl.meta.metamodel import (
    CrossValidation,
    MetaModel,
    MetaSettings,
    cross_validate,
    fit_meta_model,
    gain_labels,
    inverse_ranks,
    min_max_bounds,
    min_max_normalise,
    standard_bounds,
)

NAMES = ["signal", "noise1", "noise2", "noise3", "noise4"]


def _separable(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 decides the label (class 1 in [6, 10], class 0 in [0, 4]); the rest is noise."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    X = rng.uniform(0, 10, size=(n, len(NAMES)))
    X[:, 0] = np.where(y == 1, rng.uniform(6, 10, n), rng.uniform(0, 4, n))
    return X, y


def test_gain_labels():
    assert gain_labels([0.02, 0.0, -0.01, 1e-9]).tolist() == [1, 0, 0, 1]
    assert gain_labels(np.array([0.5])).dtype.kind == "i"


def test_min_max_normalise_hand_computed_and_constant_column():
    X = np.array([[0.0, 5.0, 2.0],
                  [10.0, 5.0, 4.0],
                  [5.0, 5.0, 3.0]])
    lo, hi = min_max_bounds(X)
    assert lo.tolist() == [0.0, 5.0, 2.0] and hi.tolist() == [10.0, 5.0, 4.0]
    with np.errstate(all="raise"):  # the constant column must not divide by zero
        normalised = min_max_normalise(X, lo, hi)
    assert normalised.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.5, 0.0, 0.5]]
    # New data: not clipped; the constant column still maps to 0.
    assert min_max_normalise(np.array([20.0, 7.0, 1.0]), lo, hi).tolist() == [2.0, 0.0, -0.5]


def test_min_max_rejects_non_finite_and_mismatched_bounds():
    with pytest.raises(ValueError, match="non-finite"):
        min_max_bounds([[1.0, np.nan]])
    with pytest.raises(ValueError, match="features"):
        min_max_normalise(np.zeros((2, 3)), np.zeros(2), np.ones(2))


def test_inverse_ranks_hand_made_coefficients():
    # |coef| = 0.5, 2, 0, 0.5 -> ranks 2, 1, 4, 3 (the tie 0.5/0.5 keeps feature order)
    # inverse rank = 4 - rank + 1 -> 3, 4, 1, 2
    assert inverse_ranks([0.5, -2.0, 0.0, 0.5]).tolist() == [3, 4, 1, 2]
    assert inverse_ranks([-1.0]).tolist() == [1]


def test_cross_validate_separable_problem():
    X, y = _separable()
    result = cross_validate(X, y, runs=5, folds=5, seed=0)
    assert isinstance(result, CrossValidation)
    assert result.mean_f1 > 0.9
    assert result.folds == 5
    assert result.coefficients.shape == (25, len(NAMES))  # runs x folds models
    assert result.inverse_ranks.shape == (25, len(NAMES))
    mean_ranks = result.inverse_ranks.mean(axis=0)
    assert int(np.argmax(mean_ranks)) == 0 and mean_ranks[0] == len(NAMES)
    assert (result.coefficients[:, 0] > 0).all()  # more signal, more "MTL helps"
    assert result.std_f1 >= 0.0


def test_cross_validate_is_reproducible():
    X, y = _separable()
    first, second = cross_validate(X, y, runs=2), cross_validate(X, y, runs=2)
    assert first.mean_f1 == second.mean_f1
    np.testing.assert_array_equal(first.coefficients, second.coefficients)


def test_cross_validate_random_labels_score_much_lower():
    X, _ = _separable()
    y = np.random.default_rng(1).permutation(np.array([0, 1] * 30))
    assert cross_validate(X, y, runs=5).mean_f1 < 0.75


def test_cross_validate_reduces_folds_for_a_small_class():
    X, y = _separable(n=20)
    y = np.zeros(20, dtype=int)
    y[[1, 5, 9]] = 1  # 3 pairs where MTL helps: 5 stratified folds are impossible
    assert cross_validate(X, y, runs=2, folds=5).folds == 3


def test_cross_validate_rejects_a_single_member_class():
    X, _ = _separable(n=20)
    y = np.zeros(20, dtype=int)
    y[0] = 1
    with pytest.raises(ValueError, match="at least 2 pairs where MTL helps and 2 where it does "
                                         "not; found 1 where it helps and 19"):
        cross_validate(X, y, runs=1)


def test_fit_predict_and_contributions():
    X, y = _separable()
    model = fit_meta_model(X, y, NAMES, trained_on={"problem": "synthetic", "n_pairs": 60})
    high = dict(zip(NAMES, [9.5, 5.0, 5.0, 5.0, 5.0]))
    low = dict(zip(NAMES, [0.5, 5.0, 5.0, 5.0, 5.0]))
    assert model.predict_proba(high) > 0.5 > model.predict_proba(low)
    contributions = model.contributions(high)
    assert [name for name, _ in contributions][0] == "signal"
    assert sorted(name for name, _ in contributions) == sorted(NAMES)
    magnitudes = [abs(value) for _, value in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    # predict_proba is the logistic of the contributions plus the intercept
    logit = sum(value for _, value in contributions) + model.intercept
    assert model.predict_proba(high) == pytest.approx(1 / (1 + np.exp(-logit)))


def test_predict_proba_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y = _separable()
    model = fit_meta_model(X, y, NAMES)
    lo, hi = min_max_bounds(X)
    reference = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000).fit(
        min_max_normalise(X, lo, hi), y)
    row = X[3]
    expected = reference.predict_proba(min_max_normalise(row[None, :], lo, hi))[0, 1]
    assert model.predict_proba(dict(zip(NAMES, row))) == pytest.approx(expected, abs=1e-9)


def test_missing_feature_is_named():
    X, y = _separable()
    model = fit_meta_model(X, y, NAMES)
    with pytest.raises(KeyError, match="noise3"):
        model.predict_proba({name: 1.0 for name in NAMES if name != "noise3"})


def test_fit_meta_model_needs_both_classes():
    X, _ = _separable(n=10)
    with pytest.raises(ValueError, match="found 0 where it helps and 10"):
        fit_meta_model(X, np.zeros(10, dtype=int), NAMES)


def test_json_round_trip(tmp_path):
    X, y = _separable()
    model = fit_meta_model(X, y, NAMES, trained_on={"problem": "synthetic", "command": "x"})
    path = tmp_path / "meta.json"
    model.to_json(path)
    assert not (tmp_path / "meta.json.tmp").exists()
    loaded = MetaModel.from_json(path)
    assert loaded.feature_names == NAMES
    assert loaded.trained_on == {"problem": "synthetic", "command": "x"}
    for row in X[:10]:
        features = dict(zip(NAMES, row))
        assert loaded.predict_proba(features) == model.predict_proba(features)


def _saved(tmp_path) -> tuple[dict, object]:
    X, y = _separable()
    path = tmp_path / "meta.json"
    fit_meta_model(X, y, NAMES).to_json(path)
    return json.loads(path.read_text()), path


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d.pop("coef"), "key 'coef' is missing"),
    (lambda d: d.__setitem__("lo", [0.0]), "key 'lo' must be a list of 5"),
    (lambda d: d.__setitem__("intercept", "high"), "key 'intercept'"),
    (lambda d: d.__setitem__("feature_names", [1, 2, 3, 4, 5]), "key 'feature_names'"),
    (lambda d: d.__setitem__("hi", [-1.0] * 5), "lo > hi"),
])
def test_malformed_json_raises_data_error(tmp_path, corrupt, message):
    payload, path = _saved(tmp_path)
    corrupt(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=message) as error:
        MetaModel.from_json(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_unreadable_json_raises_data_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="broken.json: not valid JSON"):
        MetaModel.from_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        MetaModel.from_json(path)
    with pytest.raises(DataError, match="not found"):
        MetaModel.from_json(tmp_path / "absent.json")


# ------------------------------------------------------------------- the authors' evaluation

AUTHORS_META = MetaSettings(scaling="standard", splits="kfold", score="accuracy", solver="liblinear")


def test_authors_cross_validation_is_scikit_learns_pipeline():
    # efficiency_prediction.py: StandardScaler on all pairs, then KFold accuracy of LogisticRegression()
    # (liblinear); our run r uses random_state r
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.preprocessing import StandardScaler

    X, y = _separable()
    X[:, 3] = 2.0  # a constant column: StandardScaler maps it to 0, so must we
    result = cross_validate(X, y, runs=3, settings=AUTHORS_META)
    scaled = StandardScaler().fit_transform(X)
    expected = [cross_val_score(LogisticRegression(solver="liblinear", max_iter=1000), scaled, y,
                                cv=KFold(5, shuffle=True, random_state=r), scoring="accuracy").mean()
                for r in range(3)]
    assert result.mean_f1 == pytest.approx(np.mean(expected), abs=1e-12)
    assert result.std_f1 == pytest.approx(np.std(expected, ddof=1), abs=1e-12)


def test_standard_bounds_make_min_max_normalise_a_standard_scaler():
    from sklearn.preprocessing import StandardScaler

    X, y = _separable()
    lo, hi = standard_bounds(X)
    np.testing.assert_allclose(min_max_normalise(X, lo, hi), StandardScaler().fit_transform(X), atol=1e-12)
    model = fit_meta_model(X, y, NAMES, scaling="standard", solver="liblinear")
    from sklearn.linear_model import LogisticRegression

    reference = LogisticRegression(solver="liblinear", max_iter=1000).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(model.coef, reference.coef_[0], atol=1e-9)


def test_bad_meta_settings_are_config_errors():
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="'meta.score' must be one of f1, accuracy"):
        MetaSettings(score="auc")
