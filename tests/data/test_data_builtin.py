"""Every built-in loader reproduces the counts of shared/data/README.md exactly.

Needs ``TEXTMTL_DATA_DIR`` (skipped otherwise, see conftest).
"""

from __future__ import annotations

from collections import Counter

import pytest

from textmtl.data.datasets import DATASETS, dataset_summary, load_tasks
from textmtl.errors import ConfigError

# domain: (train file lines, test, unlabel, train pos, train neg, test pos, test neg)
FDU_COUNTS = {
    "apparel": (1600, 400, 2000, 785, 815, 215, 185),
    "baby": (1500, 400, 2000, 800, 700, 200, 200),
    "books": (1600, 400, 2000, 798, 802, 202, 198),
    "camera_photo": (1597, 400, 2000, 805, 792, 194, 206),
    "dvd": (1600, 400, 2000, 802, 798, 198, 202),
    "electronics": (1598, 400, 2000, 802, 796, 198, 202),
    "health_personal_care": (1600, 400, 2000, 812, 788, 188, 212),
    "imdb": (1600, 400, 2000, 795, 805, 199, 201),
    "kitchen_housewares": (1600, 400, 2000, 808, 792, 192, 208),
    "magazines": (1570, 400, 2000, 783, 787, 217, 183),
    "MR": (1600, 400, 2000, 778, 822, 208, 192),
    "music": (1600, 400, 2000, 801, 799, 199, 201),
    "software": (1515, 400, 475, 788, 727, 212, 188),
    "sports_outdoors": (1600, 400, 2000, 810, 790, 190, 210),
    "toys_games": (1600, 400, 2000, 794, 806, 206, 194),
    "video": (1600, 400, 2000, 787, 813, 213, 187),
}

NEWSGROUPS_COUNTS = {
    "alt.atheism": (480, 319), "comp.graphics": (584, 389),
    "comp.os.ms-windows.misc": (591, 394), "comp.sys.ibm.pc.hardware": (590, 392),
    "comp.sys.mac.hardware": (578, 385), "comp.windows.x": (593, 395),
    "misc.forsale": (585, 390), "rec.autos": (594, 396), "rec.motorcycles": (598, 398),
    "rec.sport.baseball": (597, 397), "rec.sport.hockey": (600, 399), "sci.crypt": (595, 396),
    "sci.electronics": (591, 393), "sci.med": (594, 396), "sci.space": (593, 394),
    "soc.religion.christian": (599, 398), "talk.politics.guns": (546, 364),
    "talk.politics.mideast": (564, 376), "talk.politics.misc": (465, 310),
    "talk.religion.misc": (377, 251),
}

REUTERS_CLASS_SIZES = {
    3: 3972, 4: 2423, 19: 682, 16: 543, 1: 537, 11: 473, 20: 339, 13: 209, 8: 177, 10: 154,
    9: 126, 21: 127, 25: 123, 2: 94, 18: 86, 24: 81, 0: 67, 6: 62, 12: 62, 36: 60, 28: 58,
    30: 57, 34: 57, 23: 53, 31: 52, 17: 51, 40: 46, 32: 42, 41: 38, 26: 32, 15: 29, 39: 29,
    14: 28, 43: 27, 29: 23, 5: 22, 22: 22, 38: 22, 37: 21, 7: 19, 27: 19, 45: 19, 44: 17,
    33: 16, 35: 16, 42: 16,
}


def _merged_counts(task, splits=("train", "dev")) -> Counter:
    total: Counter = Counter()
    for split in splits:
        total.update(task.label_counts(split))
    return total


def test_every_dataset_is_registered():
    assert DATASETS.names() == sorted(
        ["fdu_mtl", "newsgroups", "trec", "sst", "reuters", "blitzer", "conll2000", "imdb",
         "user_files"])


def test_fdu_mtl_counts_match_readme(real_data_dir):
    tasks = {t.name: t for t in load_tasks("fdu_mtl", data_dir=str(real_data_dir))}
    assert sorted(tasks) == sorted(FDU_COUNTS)
    for domain, (train, test, unlabel, tr_pos, tr_neg, te_pos, te_neg) in FDU_COUNTS.items():
        task = tasks[domain]
        assert task.sizes() == {"train": train - 200, "dev": 200, "test": test}, domain
        assert len(task.unlabeled) == unlabel, domain
        assert _merged_counts(task) == {"positive": tr_pos, "negative": tr_neg}, domain
        assert task.label_counts("test") == {"positive": te_pos, "negative": te_neg}, domain


def test_fdu_mtl_dev_is_the_end_of_the_train_file(real_data_dir):
    (task,) = load_tasks("fdu_mtl", {"domains": ["MR"], "unlabeled": False},
                         data_dir=str(real_data_dir))
    last = (real_data_dir / "fdu-mtl" / "MR.task.train").read_bytes().split(b"\n")[-2]
    assert task.dev.texts[-1] == last.split(b"\t", 1)[1].decode("latin-1")
    assert task.unlabeled is None
    # byte 0x85 survives inside a record instead of splitting it (the README's pitfall)
    assert any("\x85" in text for text in task.train.texts + task.dev.texts)


def test_newsgroups_documents_match_readme(newsgroups_documents):
    for topic, (train, test) in NEWSGROUPS_COUNTS.items():
        assert len(newsgroups_documents["train"][topic]) == train, topic
        assert len(newsgroups_documents["test"][topic]) == test, topic


def test_newsgroups_task_splits(real_data_dir, newsgroups_documents):
    (task,) = load_tasks("newsgroups", data_dir=str(real_data_dir))
    assert task.labels == tuple(sorted(NEWSGROUPS_COUNTS))
    assert task.sizes() == {"train": 10183, "dev": 1131, "test": 7532}
    assert _merged_counts(task) == {t: n for t, (n, _) in NEWSGROUPS_COUNTS.items()}
    assert task.label_counts("test") == {t: n for t, (_, n) in NEWSGROUPS_COUNTS.items()}
    # stratified: every topic gets about 10% of its posts in dev
    for topic, count in task.label_counts("dev").items():
        assert abs(count - NEWSGROUPS_COUNTS[topic][0] / 10) <= 1, topic
    (again,) = load_tasks("newsgroups", {"seed": 0}, data_dir=str(real_data_dir))
    assert again.dev.texts == task.dev.texts
    (other,) = load_tasks("newsgroups", {"seed": 1}, data_dir=str(real_data_dir))
    assert other.dev.texts != task.dev.texts
    (bodies,) = load_tasks("newsgroups", {"remove_headers": True}, data_dir=str(real_data_dir))
    assert all(not b.startswith("From:") for b in bodies.test.texts[:50])
    assert sum(t.startswith("From:") for t in task.test.texts[:50]) > 40


def test_trec_counts_match_readme(real_data_dir):
    (task,) = load_tasks("trec", data_dir=str(real_data_dir))
    assert task.name == "trec_coarse"
    assert task.sizes() == {"train": 4907, "dev": 545, "test": 500}
    assert _merged_counts(task) == {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223,
                                    "LOC": 835, "NUM": 896}
    assert task.label_counts("test") == {"ABBR": 9, "DESC": 138, "ENTY": 94, "HUM": 65,
                                         "LOC": 81, "NUM": 113}
    (fine,) = load_tasks("trec", {"labels": "fine"}, data_dir=str(real_data_dir))
    assert fine.name == "trec_fine" and fine.num_classes == 50
    assert sum(1 for n in fine.label_counts("test").values() if n) == 42
    assert any("sister\xf0city" in t for t in task.train.texts + task.dev.texts)


def test_sst_counts_match_readme(real_data_dir):
    (sst1,) = load_tasks("sst", {"variant": "sst1"}, data_dir=str(real_data_dir))
    assert sst1.sizes() == {"train": 8544, "dev": 1101, "test": 2210}
    expected = {"train": (1092, 2218, 1624, 2322, 1288), "dev": (139, 289, 229, 279, 165),
                "test": (279, 633, 389, 510, 399)}
    for split, counts in expected.items():
        assert tuple(sst1.label_counts(split).values()) == counts, split
    (sst2,) = load_tasks("sst", {"variant": "sst2"}, data_dir=str(real_data_dir))
    assert sst2.sizes() == {"train": 6920, "dev": 872, "test": 1821}
    # the binary sentence file of Kim (2014) has the same label counts
    assert tuple(sst2.label_counts("train").values()) == (3310, 3610)
    assert tuple(sst2.label_counts("dev").values()) == (428, 444)
    assert tuple(sst2.label_counts("test").values()) == (912, 909)
    assert sst1.dev.texts[0].startswith("It 's a lovely film with lovely performances by Buy")


def test_reuters_matches_keras(real_data_dir):
    (task,) = load_tasks("reuters", data_dir=str(real_data_dir))
    assert task.num_classes == 46 and task.labels[3] == "earn"
    assert len(task.train) + len(task.dev) == 8982 and len(task.test) == 2246
    assert task.sizes() == {"train": 8084, "dev": 898, "test": 2246}
    total = _merged_counts(task, ("train", "dev", "test"))
    assert {task.labels.index(name): n for name, n in total.items()} == REUTERS_CLASS_SIZES
    # Keras' x_train[0] (label 3, earn) after the seed-113 shuffle
    assert task.train.texts[0].startswith("mcgrath rentcorp said as a result of its december")
    assert task.labels[task.train.labels[0]] == "earn"


def test_blitzer_splits(real_data_dir):
    tasks = load_tasks("blitzer", data_dir=str(real_data_dir))
    assert [t.name for t in tasks] == ["books", "dvd", "electronics", "kitchen"]
    for task in tasks:
        assert task.sizes() == {"train": 1400, "dev": 200, "test": 400}, task.name
        for split, size in task.sizes().items():
            assert task.label_counts(split) == {"negative": size // 2, "positive": size // 2}
        texts = task.train.texts + task.dev.texts + task.test.texts
        assert len(texts) == 2000
        assert not any("<review_text>" in t or "\x1a" in t for t in texts)
    dvd = tasks[1]
    # the 4 Ctrl-Z bytes stand for lost letters: they become U+FFFD, not a control character
    dvd_texts = dvd.train.texts + dvd.dev.texts + dvd.test.texts
    assert any("fianc\ufffd and career" in t for t in dvd_texts)
    titled = load_tasks("blitzer", {"domains": ["books"], "include_title": True},
                        data_dir=str(real_data_dir))[0]
    assert titled.train.texts[0].endswith(tasks[0].train.texts[0])


def test_imdb_counts_and_cleaning_match_readme(real_data_dir):
    (task,) = load_tasks("imdb", data_dir=str(real_data_dir))
    assert task.name == "imdb" and task.labels == ("negative", "positive")
    assert task.sizes() == {"train": 22500, "dev": 2500, "test": 25000}
    assert _merged_counts(task) == {"negative": 12500, "positive": 12500}
    assert task.label_counts("dev") == {"negative": 1250, "positive": 1250}
    assert task.label_counts("test") == {"negative": 12500, "positive": 12500}
    # test is ordered by (class, id): test/neg/0_2.txt first, test/pos/0_10.txt first positive
    assert task.test.texts[0].startswith("Once again Mr. Costner has dragged out a movie")
    assert task.test.texts[12500].startswith("I went and saw this movie last night after being")
    texts = task.train.texts + task.dev.texts + task.test.texts
    assert not any("<br" in t for t in texts)
    # the C1 mojibake is repaired; only 0x8D (undefined in cp1252, 3 times) stays
    assert sum(any("\x80" <= c <= "\x9f" for c in t) for t in texts) == 3
    (raw,) = load_tasks("imdb", {"repair_cp1252": False}, data_dir=str(real_data_dir))
    raw_texts = raw.train.texts + raw.dev.texts + raw.test.texts
    # README: U+0096 x2529, U+0085 x1479; repaired they are en dashes and ellipses
    assert sum(t.count("\x96") for t in raw_texts) == 2529
    assert sum(t.count("\x85") for t in raw_texts) == 1479
    assert (sum(t.count("\u2013") for t in texts) - sum(t.count("\u2013") for t in raw_texts)
            == 2529)


def test_conll2000_counts_match_readme(real_data_dir):
    chunk, pos = load_tasks("conll2000", data_dir=str(real_data_dir))
    assert (chunk.name, pos.name, chunk.kind) == ("conll2000_chunk", "conll2000_pos", "tagging")
    assert chunk.sizes() == {"train": 7936, "dev": 1000, "test": 2012}
    train_tokens = sum(len(s) for s in chunk.train.texts + chunk.dev.texts)
    assert train_tokens == 211727 and sum(len(s) for s in chunk.test.texts) == 47377
    assert pos.num_classes == 44
    by_type: Counter = Counter()
    for tag, count in _merged_counts(chunk).items():
        by_type[tag.split("-")[-1]] += count
    assert by_type == {"NP": 118388, "VP": 33470, "O": 27902, "PP": 21572, "ADVP": 4670,
                       "ADJP": 2703, "SBAR": 2277, "PRT": 558, "CONJP": 129, "INTJ": 40,
                       "LST": 10, "UCP": 8}
    assert [len(s) for s in chunk.train.texts] == [len(s) for s in chunk.train.labels]
    (only_pos,) = load_tasks("conll2000", {"tasks": ["pos"]}, data_dir=str(real_data_dir))
    assert only_pos.name == "conll2000_pos"


def test_conll2000_synthetic_auxiliary_tasks_of_the_sluice_paper(real_data_dir):
    pos, copy = load_tasks("conll2000", {"tasks": ["pos"], "train_sentences": 50, "auxiliary": "copy"},
                           data_dir=str(real_data_dir))
    assert copy.name == "conll2000_pos_copy" and len(pos.train) == len(copy.train) == 50
    assert copy.train.texts == pos.train.texts and copy.train.labels == pos.train.labels
    assert copy.labels == pos.labels and len(pos.dev) == 1000  # dev and test are kept whole
    # the sample is seeded and a subset of the full training part
    (full,) = load_tasks("conll2000", {"tasks": ["pos"]}, data_dir=str(real_data_dir))
    assert all(s in full.train.texts for s in pos.train.texts)
    again, _ = load_tasks("conll2000", {"tasks": ["pos"], "train_sentences": 50, "auxiliary": "copy"},
                          data_dir=str(real_data_dir))
    assert again.train.texts == pos.train.texts
    _, rand = load_tasks("conll2000", {"tasks": ["pos"], "train_sentences": 50, "auxiliary": "random"},
                         data_dir=str(real_data_dir))
    assert rand.name == "conll2000_pos_random" and rand.train.texts == pos.train.texts
    tokens = [(a, b) for x, y in zip(pos.train.labels, rand.train.labels) for a, b in zip(x, y)]
    agreement = sum(a == b for a, b in tokens) / len(tokens)
    assert agreement < 0.1  # uniform over 44 tags: about 1 in 44 agree
    assert len({b for _, b in tokens}) > 30
    with pytest.raises(ConfigError, match="'auxiliary' of dataset 'conll2000' must be one of random, copy"):
        load_tasks("conll2000", {"auxiliary": "shuffle"}, data_dir=str(real_data_dir))
    with pytest.raises(ConfigError, match="'train_sentences' .* is 9000"):
        load_tasks("conll2000", {"train_sentences": 9000}, data_dir=str(real_data_dir))


def test_summary_reports_origin_and_sizes(real_data_dir):
    summary = dataset_summary("trec", data_dir=str(real_data_dir))
    assert summary["origin"] == "data_dir"
    (task,) = summary["tasks"]
    assert task["sizes"] == {"train": 4907, "dev": 545, "test": 500}
    assert task["label_counts"]["test"]["NUM"] == 113


@pytest.mark.parametrize("name", ["fdu_mtl", "trec", "sst", "reuters", "blitzer", "conll2000"])
def test_loading_twice_gives_identical_tasks(real_data_dir, name):
    first, second = (load_tasks(name, data_dir=str(real_data_dir)) for _ in range(2))
    for a, b in zip(first, second):
        for split in ("train", "dev", "test"):
            assert a.split(split).texts == b.split(split).texts
            assert a.split(split).labels == b.split(split).labels
