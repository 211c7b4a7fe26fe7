"""The IMDB loader on tiny synthetic archives: member selection, order, cleaning, bad input."""

from __future__ import annotations

import io
import tarfile

import pytest

from textmtl.data.corpora.imdb import ARCHIVE, clean_review, load_imdb
from textmtl.errors import DataError


def _archive(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def _reviews(split: str, n: int) -> dict[str, bytes]:
    members = {}
    for label, rating in (("neg", 2), ("pos", 9)):
        for i in reversed(range(n)):  # packed out of order: the loader sorts
            members[f"aclImdb/{split}/{label}/{i}_{rating}.txt"] = f"{label} {split} {i}<br /><br />end".encode()
    return members


def test_reads_only_labelled_reviews_in_class_then_id_order(tmp_path):
    members = {**_reviews("train", 10), **_reviews("test", 3),
               "aclImdb/train/unsup/0_0.txt": b"unlabelled", "aclImdb/README": b"readme",
               "aclImdb/train/urls_pos.txt": b"http://"}
    _archive(tmp_path / ARCHIVE, members)
    (task,) = load_imdb(tmp_path, dev_fraction=0.2)
    assert task.sizes() == {"train": 16, "dev": 4, "test": 6}
    assert task.test.texts == [f"{c} test {i}  end" for c in ("neg", "pos") for i in range(3)]
    assert task.test.labels == [0, 0, 0, 1, 1, 1]
    assert task.label_counts("dev") == {"negative": 2, "positive": 2}


def test_cleaning():
    assert clean_review("a<br />b<BR>c<br/>d") == "a b c d"
    assert clean_review("x\x96y\x85") == "x\u2013y\u2026"
    assert clean_review("undefined \x8d stays") == "undefined \x8d stays"
    assert clean_review("x\x96y", repair_cp1252=False) == "x\x96y"


def test_bad_archives_are_one_line_data_errors(tmp_path):
    with pytest.raises(DataError, match=f"{ARCHIVE}: file not found"):
        load_imdb(tmp_path)
    (tmp_path / ARCHIVE).write_bytes(b"not a gzip file")
    with pytest.raises(DataError, match="expected a gzip tar archive of aclImdb/"):
        load_imdb(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _archive(other / ARCHIVE, _reviews("train", 4))
    with pytest.raises(DataError, match=r"expected members aclImdb/test/\{pos,neg\}"):
        load_imdb(other)
    bad = tmp_path / "bad"
    bad.mkdir()
    _archive(bad / ARCHIVE, {**_reviews("train", 4), **_reviews("test", 1),
                             "aclImdb/test/pos/7_8.txt": b"\xff\xfe broken"})
    with pytest.raises(DataError, match="aclImdb/test/pos/7_8.txt is not valid UTF-8"):
        load_imdb(bad)
