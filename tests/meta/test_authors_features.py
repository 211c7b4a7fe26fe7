"""The authors' 30 meta-features: every function on a case computed by hand."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from textmtl.meta import authors_features as af
from textmtl.meta.authors_features import (
    AUTHORS_CODE_GROUPS,
    FEATURE_LABELS,
    FEATURE_NAMES,
    AuthorsTask,
    curve_gradients,
    curve_parameters,
    distinct_words,
    feature_groups,
    jensen_shannon_nats,
    jsd_texts,
    oov_type_rate,
    pair_features,
    ratio,
    split_words,
    whitespace_counts,
)

LN2 = math.log(2)


def test_split_words_is_python2s_ascii_split():
    # the empty piece after the final "!" is kept, as re.split leaves it
    assert split_words("Hello, world!") == ["Hello", "world", ""]
    # Python 2's \W without re.UNICODE: "é" is not a word character
    assert split_words("café au lait") == ["caf", "au", "lait"]


def test_distinct_words_counts_the_empty_piece():
    # pieces: a, b | b, c, "" -> {a, b, c, ""}
    assert distinct_words(["a b", "b, c."]) == 4
    assert distinct_words(["Dog dog"]) == 2  # case is kept


def test_whitespace_counts_fuse_posts_without_a_separator():
    assert whitespace_counts(["a b", "c"]) == Counter({"a": 1, "bc": 1})
    assert whitespace_counts(["a b\n", "c"]) == Counter({"a": 1, "b": 1, "c": 1})


def test_jensen_shannon_in_nats_hand_computed():
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4): JSD = 3/2 ln 2 - 3/4 ln 3 (the bits value times ln 2)
    expected = 1.5 * LN2 - 0.75 * math.log(3)
    assert jensen_shannon_nats(Counter(a=1, b=1), Counter(a=5)) == pytest.approx(expected, abs=1e-12)
    assert jensen_shannon_nats(Counter(a=1), Counter(b=2)) == pytest.approx(LN2)  # disjoint
    assert jensen_shannon_nats(Counter(a=2, b=3), Counter(a=4, b=6)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="first side has no words"):
        jensen_shannon_nats(Counter(), Counter(a=1))


def test_jensen_shannon_is_the_authors_scipy_formula():
    from scipy.stats import entropy

    rng = np.random.default_rng(0)
    p = Counter({f"w{i}": int(c) for i, c in enumerate(rng.integers(0, 5, 40)) if c})
    q = Counter({f"w{i}": int(c) for i, c in enumerate(rng.integers(0, 5, 40)) if c})
    types = sorted(p.keys() | q.keys())
    pv = np.array([p[t] for t in types], float) / sum(p.values())
    qv = np.array([q[t] for t in types], float) / sum(q.values())
    m = 0.5 * (pv + qv)
    assert jensen_shannon_nats(p, q) == pytest.approx(0.5 * (entropy(pv, m) + entropy(qv, m)), abs=1e-12)


def test_oov_rate_is_over_types():
    # test types {a, c, d}; c and d unseen in training: 2 of 3 (c occurs twice, counted once)
    assert oov_type_rate(["a b"], ["a c c", "d"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        oov_type_rate(["a"], [])


def test_curve_gradients_hand_computed():
    y = [10, 8, 5, 4, 2, 1, 0.5, 0.4, 0.2, 0.1]
    # n = 10: i = 1, 2, 5, 7; (y[i+1] - y[i-1]) / 2
    assert curve_gradients(y) == pytest.approx((-2.5, -2.0, -0.75, -0.15))
    # only the first 5 epochs: i = int(5p) = 0 -> 1 (kept inside), 1, 2, 3
    assert curve_gradients(y, epochs=5) == pytest.approx((-2.5, -2.5, -2.0, -1.5))
    with pytest.raises(ValueError):
        curve_gradients([1.0, 0.5])


def test_curve_parameters_fit_the_authors_form_from_ones():
    x = np.arange(150, dtype=float)
    y = 0.5 - 0.2 * np.log(0.3 * x + 2.0)
    b, c = curve_parameters(y)
    # b (their "a") is identifiable; c only with d: a + b ln(c x + d) = a + b ln d + b ln(c/d x + 1)
    assert b == pytest.approx(-0.2, rel=1e-4)
    assert c > 0
    assert curve_parameters(y) == (b, c)  # deterministic


def test_curve_parameters_fall_back_when_the_fit_fails(monkeypatch):
    from textmtl.meta.features import fit_log_curve

    def fail(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(af, "curve_fit", fail)
    af._fit_cached.cache_clear()  # fits are memoised on the curve's values
    y = np.exp(-np.arange(20) / 5.0)
    a, _, c, _ = fit_log_curve(y)
    assert curve_parameters(y) == (a, c)
    assert af.fit_curve_parameters(y)[2] is False
    af._fit_cached.cache_clear()


def test_ratio_is_zero_for_a_zero_auxiliary_value():
    assert ratio(3.0, 2.0) == 1.5 and ratio(3.0, 0.0) == 0.0


def _curve(scale: float) -> np.ndarray:
    return scale * np.exp(-np.arange(20) / 6.0) + 0.05


def test_pair_features_hand_computed():
    main = AuthorsTask("main", (["a b"], ["c d"]), ["a c", "e"], _curve(0.7))
    aux = AuthorsTask("aux", (["a x"], ["d y"]), ["zzz"], _curve(0.6))
    features = pair_features(main, aux)
    assert tuple(features) == FEATURE_NAMES and len(FEATURE_NAMES) == 30
    assert features["jsd_classes.main"] == pytest.approx(LN2)            # {a, b} vs {c, d}: disjoint
    assert features["words.main"] == 4 and features["words.aux"] == 4
    assert features["words.ratio"] == 1.0
    assert features["words.test"] == 3                                   # {a, c, e}
    assert features["oov.main"] == pytest.approx(1 / 3)                  # e unseen
    # the test posts fuse: "a c" + "e" -> {a, ce}; against {a, b}: M = (1/2, 1/4, 1/4)
    assert features["jsd_test_class0.main"] == pytest.approx(0.5 * LN2)
    assert features["jsd_test_class1.main"] == pytest.approx(LN2)       # {a, ce} vs {c, d}
    assert features["jsd_class0.main_aux"] == pytest.approx(0.5 * LN2)  # {a, b} vs {a, x}
    assert features["jsd_class1.main_aux"] == pytest.approx(0.5 * LN2)  # {d, y} vs {c, d}
    grads = curve_gradients(_curve(0.7))
    assert [features[f"curve_grad_{p}.main"] for p in (10, 25, 50, 75)] == pytest.approx(grads)
    assert features["curve_grad_10.ratio"] == pytest.approx(grads[0] / curve_gradients(_curve(0.6))[0])
    # the gradients read only the first `gradient_epochs` epochs
    short = pair_features(main, aux, gradient_epochs=8)
    assert short["curve_grad_75.main"] == pytest.approx(curve_gradients(_curve(0.7), 8)[3])
    assert short["curve_a.main"] == features["curve_a.main"]  # the fit reads the whole curve


def test_missing_curve_and_empty_class_are_named():
    with pytest.raises(ValueError, match="'main' has no loss curve"):
        pair_features(AuthorsTask("main", (["a"], ["b"]), ["a"]), AuthorsTask("aux", (["a"], ["b"]), ["a"], _curve(1)))
    with pytest.raises(ValueError, match="task 'main'"):
        pair_features(AuthorsTask("main", ([""], ["b"]), ["a"], _curve(1)),
                      AuthorsTask("aux", (["a"], ["b"]), ["a"], _curve(1)))


def test_labels_are_the_authors_wording():
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES)
    assert FEATURE_LABELS["jsd_classes.main"] == "JSD training set cat. 0 vs cat. 1 main"
    assert FEATURE_LABELS["jsd_test_class1.main"] == "JSD test vs training set cat. 1"
    assert FEATURE_LABELS["oov.main"] == "OOV rate"


def test_groups_named_and_as_the_authors_code_selects_them():
    named = feature_groups(FEATURE_NAMES)
    assert sum(named["only_curve"]) == 18 and sum(named["no_curve"]) == 12 and sum(named["only_ratio"]) == 8
    code = feature_groups(FEATURE_NAMES, "authors_code")
    # their "Without curve data" keeps the curve features and the OOV rate; "Only curve data"
    # keeps the 12 others; "Without ratio data" (the paper's "only ratio" row) drops the ratios
    assert sum(code["no_curve"]) == 19 and code["no_curve"][FEATURE_NAMES.index("oov.main")]
    assert sum(code["only_curve"]) == 12 and not any(code["only_curve"][2:8])
    assert sum(code["only_ratio"]) == 22 and not any(code["only_ratio"][16:24])
    assert set(AUTHORS_CODE_GROUPS) == set(named)


def test_the_papers_table_3b_rows_are_the_authors_30_columns():
    from textmtl.meta.report import AUTHORS_PAPER_3A, AUTHORS_PAPER_3B, PAPER_TABLE3A, PAPER_TABLE3B

    mapped = [AUTHORS_PAPER_3B[(feature, data)] for feature, data, _ in PAPER_TABLE3B]
    assert sorted(mapped) == sorted(FEATURE_NAMES)  # one to one
    rows_3a = [AUTHORS_PAPER_3A[(feature, data)] for feature, data, _ in PAPER_TABLE3A]
    assert rows_3a.count(None) == 2 and len(set(r for r in rows_3a if r)) == 28


def test_count_vector_of_texts_equals_the_counter_of_their_join():
    # the fast path forms the pieces that fuse across texts itself; any join must agree
    import random

    from textmtl.meta.authors_features import CountVector, _PieceIds, whitespace_count_vector

    alphabet = ["a", "b", "ab", " ", "\n", "", "c d", " x", "y ", "\t\t", "zz"]
    rng = random.Random(0)
    names = {i: w for w, i in _PieceIds.ids.items()}
    for _ in range(500):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(0, 6))]
        fast = whitespace_count_vector(texts)
        names.update({i: w for w, i in _PieceIds.ids.items()})
        assert Counter({names[int(i)]: int(c) for i, c in zip(fast.ids, fast.counts)}) == whitespace_counts(texts), texts
        if fast.ids.size:
            assert jensen_shannon_nats(fast, CountVector.of(whitespace_counts(texts))) == pytest.approx(0.0, abs=1e-12)
