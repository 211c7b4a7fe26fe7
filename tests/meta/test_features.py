"""Meta-features: every primitive on a case computed by hand, and the pair vector's layout."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from textmtl.meta.features import (
    CURVE_C_MAX,
    FEATURE_LABELS,
    FEATURE_NAMES,
    PAIR_FEATURES,
    TASK_FEATURES,
    TaskSample,
    curve_gradient,
    feature_groups,
    fit_log_curve,
    jensen_shannon,
    oov_rate,
    pair_features,
    ratio,
    task_features,
    type_token_ratio,
    unigram_counts,
    word_count,
)

# ---------------------------------------------------------------------------------- primitives


def test_unigram_counts():
    assert unigram_counts([["a", "b", "a"], [], ["b", "c"]]) == Counter(a=2, b=2, c=1)
    assert unigram_counts([]) == Counter()


def test_jensen_shannon_hand_computed():
    # P = (a: 1/2, b: 1/2), Q = (a: 1, b: 0), M = (3/4, 1/4).
    # KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2) = 1 - 1/2 log2 3
    # KL(Q||M) = log2(4/3)                    = 2 - log2 3
    # JSD = 1/2 (KL(P||M) + KL(Q||M))         = 3/2 - 3/4 log2 3 ≈ 0.311278
    p, q = Counter(a=1, b=1), Counter(a=3)  # counts are normalised: Q's scale does not matter
    expected = 1.5 - 0.75 * math.log2(3)
    assert jensen_shannon(p, q) == pytest.approx(expected, abs=1e-12)
    assert jensen_shannon(q, p) == pytest.approx(expected, abs=1e-12)  # symmetric


def test_jensen_shannon_bounds():
    assert jensen_shannon(Counter(a=2, b=5), Counter(a=4, b=10)) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon(Counter(a=1), Counter(b=7)) == pytest.approx(1.0)  # disjoint: 1 bit


def test_jensen_shannon_empty_names_the_side():
    with pytest.raises(ValueError, match=r"first distribution \(p\) is empty"):
        jensen_shannon(Counter(), Counter(a=1))
    with pytest.raises(ValueError, match=r"second distribution \(q\) is empty"):
        jensen_shannon(Counter(a=1), Counter(b=0))  # zero counts are no tokens


def test_type_token_ratio_and_word_count():
    documents = [["a", "b", "a"], ["c", "a"]]  # 5 tokens, 3 types
    assert word_count(documents) == 5
    assert type_token_ratio(documents) == pytest.approx(3 / 5)
    assert word_count([]) == 0
    with pytest.raises(ValueError, match="no tokens"):
        type_token_ratio([[]])


def test_oov_rate():
    # tokens: a, x, a, y, y -> x, y, y unseen: 3 of 5
    assert oov_rate([["a", "x", "a"], ["y", "y"]], {"a", "b"}) == pytest.approx(3 / 5)
    assert oov_rate([["a"]], {"a"}) == 0.0
    with pytest.raises(ValueError, match="no tokens"):
        oov_rate([], {"a"})


def test_curve_gradient_hand_computed():
    losses = [4.0, 3.0, 1.0, 0.0, 0.0]
    # np.gradient: ends one-sided, inside central: [-1, (1-4)/2, (0-3)/2, (0-1)/2, 0]
    #            = [-1, -1.5, -1.5, -0.5, 0]; index = round(fraction * 4)
    assert curve_gradient(losses, 0.10) == pytest.approx(-1.0)   # round(0.4) = 0
    assert curve_gradient(losses, 0.25) == pytest.approx(-1.5)   # 1
    assert curve_gradient(losses, 0.50) == pytest.approx(-1.5)   # 2
    assert curve_gradient(losses, 0.75) == pytest.approx(-0.5)   # 3
    assert curve_gradient(losses, 1.00) == pytest.approx(0.0)    # 4


def test_curve_gradient_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        curve_gradient([1.0], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        curve_gradient([1.0, 0.5], 1.5)
    with pytest.raises(ValueError, match="finite"):
        curve_gradient([1.0, float("nan")], 0.5)


@pytest.mark.parametrize("a, b, c", [(-0.3, 1.2, 0.5), (-0.1, 0.7, 2.0), (-1.0, 3.0, 0.05)])
def test_fit_log_curve_recovers_known_parameters(a, b, c):
    epochs = np.arange(1, 101)
    losses = a * np.log(c * epochs + 1.0) + b
    fitted = fit_log_curve(losses)
    assert fitted == pytest.approx((a, b, c, 1.0), abs=1e-3)


def test_fit_log_curve_returns_the_canonical_form_with_d_1():
    # a·ln(c·i + d) + b == a·ln((c/d)·i + 1) + (b + a·ln d): only this form is identifiable.
    a, b, c, d = -0.3, 1.2, 0.5, 2.0
    epochs = np.arange(1, 101)
    fitted = fit_log_curve(a * np.log(c * epochs + d) + b)
    assert fitted == pytest.approx((a, b + a * math.log(d), c / d, 1.0), abs=1e-3)


def test_fit_log_curve_degenerate_cases_do_not_raise():
    # Two points: fewer than the 3 free parameters -> the documented start values.
    assert fit_log_curve([1.0, 0.5]) == pytest.approx(((0.5 - 1.0) / math.log(2), 1.0, 1.0, 1.0))
    # Flat curve: a = 0 fits exactly.
    a, b, _, d = fit_log_curve(np.full(20, 0.7))
    assert (a, b, d) == pytest.approx((0.0, 0.7, 1.0), abs=1e-9)
    # A curve steepest at epoch 1 drives c to its bound rather than to infinity.
    a, _, c, _ = fit_log_curve(np.exp(-np.arange(50) / 5.0))
    assert a < 0 and 0 < c <= CURVE_C_MAX


def test_fit_log_curve_returns_start_values_when_the_optimiser_fails(monkeypatch):
    import textmtl.meta.features as features

    def failing(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(features, "curve_fit", failing)
    features._fit_log_curve_cached.cache_clear()  # the memo would hide the patched optimiser
    try:
        losses = [2.0, 1.5, 1.2, 1.0]
        assert fit_log_curve(losses) == pytest.approx(((1.0 - 2.0) / math.log(4), 2.0, 1.0, 1.0))
    finally:
        features._fit_log_curve_cached.cache_clear()


def test_ratio_division_by_zero():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(0.0, 0.0) == 0.0
    assert ratio(2.0, 0.0) == 1e6
    assert ratio(-2.0, 0.0) == -1e6


# ------------------------------------------------------------------------------- pair features

CURVE = np.array([1.0, 0.6, 0.4, 0.3, 0.25])


def _main() -> TaskSample:
    return TaskSample(
        name="main",
        train=([["a", "b"], ["a"]], [["c", "d"]]),   # class 0: a a b; class 1: c d
        test=([["a", "x"]], [["c"]]),                  # class 0: a x;   class 1: c
        loss_curve=CURVE,
    )


def _aux() -> TaskSample:
    return TaskSample(
        name="aux",
        train=([["a", "e"]], [["c", "c", "f", "x"]]),  # class 0: a e; class 1: c c f x
        test=([["e"]], [["f", "g"]]),
        loss_curve=CURVE * 2,
    )


def test_feature_names_layout():
    assert len(FEATURE_NAMES) == 46 == 3 * len(TASK_FEATURES) + len(PAIR_FEATURES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    n = len(TASK_FEATURES)
    assert all(name.endswith(".main") for name in FEATURE_NAMES[:n])
    assert all(name.endswith(".aux") for name in FEATURE_NAMES[n:2 * n])
    assert all(name.endswith(".ratio") for name in FEATURE_NAMES[2 * n:3 * n])
    assert FEATURE_NAMES[3 * n:] == ("jsd_main_aux.all", "jsd_pos_class.all",
                                     "jsd_neg_class.all", "jsd_classes.all", "oov.all",
                                     "words.train", "words.test")


def test_feature_labels_use_the_papers_wording():
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES)
    assert FEATURE_LABELS["jsd_pos_class.main"] == "JSD pos. class / main"
    assert FEATURE_LABELS["curve_grad_10.ratio"] == "Curve gradient 10% / ratio"
    assert FEATURE_LABELS["curve_a.aux"] == "Curve param a / aux"
    assert FEATURE_LABELS["words.test"] == "# words / test"
    assert FEATURE_LABELS["oov.all"] == "OOV rate / all"
    assert FEATURE_LABELS["ttr.main"] == "Type-token ratio / main"
    assert FEATURE_LABELS["jsd_main_aux.all"] == "JSD main vs aux / all"
    assert FEATURE_LABELS["jsd_train_test.main"] == "JSD train vs test / main"
    assert FEATURE_LABELS["jsd_classes.main"] == "JSD between classes / main"


def test_pair_features_keys_order_and_hand_checked_values():
    features = pair_features(_main(), _aux())
    assert tuple(features) == FEATURE_NAMES
    assert all(isinstance(value, float) for value in features.values())

    # Per-task counts: main train = a a b c d (5 tokens, 4 types); aux train = a e c c f x (6, 5)
    assert features["words.main"] == 5.0 and features["words.aux"] == 6.0
    assert features["ttr.main"] == pytest.approx(4 / 5)
    assert features["ttr.aux"] == pytest.approx(5 / 6)
    # main test a x c: x unseen -> 1/3; aux test e f g: g unseen -> 1/3
    assert features["oov.main"] == pytest.approx(1 / 3)
    assert features["oov.aux"] == pytest.approx(1 / 3)
    # main classes: {a:2/3, b:1/3} vs {c, d} disjoint -> 1 bit
    assert features["jsd_classes.main"] == pytest.approx(1.0)
    # main class 1: train {c:1/2, d:1/2} vs test {c:1}: same shape as the hand case above
    assert features["jsd_neg_class.main"] == pytest.approx(1.5 - 0.75 * math.log2(3))

    # Ratios are main / aux of the values above.
    assert features["words.ratio"] == pytest.approx(5 / 6)
    assert features["ttr.ratio"] == pytest.approx((4 / 5) / (5 / 6))
    assert features["oov.ratio"] == pytest.approx(1.0)
    assert features["curve_grad_50.ratio"] == pytest.approx(0.5)  # aux curve is twice main's
    assert features["curve_a.ratio"] == pytest.approx(0.5, abs=1e-6)
    for name in TASK_FEATURES:
        assert features[f"{name}.ratio"] == pytest.approx(
            ratio(features[f"{name}.main"], features[f"{name}.aux"]))

    # Pair-level.
    assert features["words.train"] == 11.0           # 5 + 6
    assert features["words.test"] == 3.0             # a x c
    # main test a x c against train types {a b c d} ∪ {a e c f x}: nothing unseen
    assert features["oov.all"] == 0.0
    # class 0 of main {a:2/3, b:1/3} vs class 0 of aux {a:1/2, e:1/2}; M = {a:7/12, b:1/6, e:1/4}
    kl_p = 2 / 3 * math.log2((2 / 3) / (7 / 12)) + 1 / 3 * math.log2((1 / 3) / (1 / 6))
    kl_q = 1 / 2 * math.log2((1 / 2) / (7 / 12)) + 1 / 2 * math.log2((1 / 2) / (1 / 4))
    assert features["jsd_pos_class.all"] == pytest.approx(0.5 * (kl_p + kl_q))
    # pooled class 0 {a a b a e} vs pooled class 1 {c d c c f x}: disjoint -> 1 bit
    assert features["jsd_classes.all"] == pytest.approx(1.0)
    assert features["jsd_main_aux.all"] == pytest.approx(
        jensen_shannon(Counter("aabcd"), Counter("aeccfx")))


def test_task_features_match_the_main_columns():
    features = pair_features(_main(), _aux())
    assert task_features(_main()) == {name: features[f"{name}.main"] for name in TASK_FEATURES}


def test_missing_loss_curve_names_the_task():
    aux = TaskSample(name="guns", train=_aux().train, test=_aux().test)
    with pytest.raises(ValueError, match="'guns' has no loss curve"):
        pair_features(_main(), aux)


def test_empty_document_set_is_named():
    main = TaskSample(name="mideast", train=([["a"]], [[]]), test=_main().test, loss_curve=CURVE)
    with pytest.raises(ValueError, match="class-1 training documents of task 'mideast'"):
        pair_features(main, _aux())


def test_feature_groups():
    names = ("jsd_classes.main", "curve_a.main", "curve_c.ratio", "words.ratio", "oov.all")
    groups = feature_groups(names)
    assert groups == {
        "all": [True, True, True, True, True],
        "no_curve": [True, False, False, True, True],
        "only_curve": [False, True, True, False, False],
        "only_ratio": [False, False, True, True, False],
    }
    full = feature_groups(FEATURE_NAMES)
    assert sum(full["only_curve"]) == 18 and sum(full["only_ratio"]) == 13
    assert [a != b for a, b in zip(full["no_curve"], full["only_curve"])] == full["all"]
