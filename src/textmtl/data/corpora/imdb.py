"""IMDB Large Movie Review Dataset v1.0 (Maas et al. 2011): 25,000 / 25,000 labelled reviews.

The archive holds ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``, one review per file
(pos = 7-10 stars, neg = 1-4). Only those members are read, so the official
``aclImdb_v1.tar.gz`` (with ``unsup/`` and the BoW files) works as well as the labelled repack
of the shared data dir. Reviews are ordered by (split, class, id) so that the same archive
always gives the same order, whatever order its members are packed in.

Text cleaning, each documented in ``docs/datasets.md`` and on by default:

- ``<br />`` (the paragraph break of 29,200 reviews) becomes a space: left in, it would be
  tokenised into ``br`` and dominate the vocabulary;
- C1 control characters U+0080-U+009F are Windows-1252 characters that were decoded as
  latin-1 upstream (en dash, ellipsis, quotes); they are mapped back (``repair_cp1252``).
  Five code points are undefined in cp1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D) and stay as they are.
  U+0085 is also a line break for ``str.splitlines``: a review is never split into lines here.

Dev is a seeded, stratified ``dev_fraction`` of train (the dataset has no dev split).

References:
    Maas, Daly, Pham, Huang, Ng & Potts (2011), Learning Word Vectors for Sentiment Analysis
    (ACL-HLT).
"""

from __future__ import annotations

import re
import tarfile
from functools import lru_cache
from pathlib import Path

from ...errors import DataError
from ..datasets import DATASETS
from ..tasks import Split, Task
from . import check_fraction, seeded_split

LABELS = ("negative", "positive")
ARCHIVE = "aclImdb_v1-labelled.tar.gz"

_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# C1 code point -> its Windows-1252 character, for the 27 code points cp1252 defines
_CP1252 = {}
for _code in range(0x80, 0xA0):
    try:
        _CP1252[_code] = bytes([_code]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined, kept as found
        pass


def clean_review(text: str, *, repair_cp1252: bool = True) -> str:
    """One review as the loader returns it: ``<br />`` as spaces, C1 mojibake repaired.

    Args:
        text: the file's text, decoded as UTF-8.
        repair_cp1252: map U+0080-U+009F to their Windows-1252 characters.
    Returns:
        The cleaned text (no other change: no lower-casing, no tokenisation).
    """
    text = _BREAK.sub(" ", text)
    return text.translate(_CP1252) if repair_cp1252 else text


@lru_cache(maxsize=2)
def _read_archive(path: Path, mtime_ns: int) -> dict[str, list[tuple[int, int, int, str]]]:
    """split -> [(label id, review id, star rating, raw text)], sorted by (label, id); parsed once per process
    (``mtime_ns`` is part of the key so that a replaced archive is read again)."""
    reviews: dict[str, list[tuple[int, int, int, str]]] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                match = _MEMBER.search(member.name)
                if match is None or not member.isfile():
                    continue
                split, label, review_id, rating = match.groups()
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(f"{path}: member {member.name} is not valid UTF-8 "
                                    f"({error.reason})") from error
                reviews[split].append((LABELS.index("positive" if label == "pos" else "negative"),
                                       int(review_id), int(rating), text))
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{path}: expected a gzip tar archive of aclImdb/ ({error})") from error
    for split, rows in reviews.items():
        if not rows:
            raise DataError(f"{path}: expected members aclImdb/{split}/{{pos,neg}}/<id>_<rating>.txt, "
                            "found none")
        rows.sort(key=lambda row: (row[0], row[1]))
    return reviews


@DATASETS.register("imdb")
def load_imdb(root: Path, *, dev_fraction: float = 0.1, seed: int = 0,
              repair_cp1252: bool = True) -> list[Task]:
    """IMDB as one binary task ``imdb`` (``negative``, ``positive``).

    Args:
        root: the ``imdb`` folder (holding ``aclImdb_v1-labelled.tar.gz``).
        dev_fraction: share of the 25,000 training reviews held out as dev (stratified, seeded).
        seed: seed of the dev selection.
        repair_cp1252: map the C1 mojibake back to Windows-1252 characters.
    Returns:
        One task; with the defaults 22,500 / 2,500 / 25,000 reviews.
    """
    check_fraction(dev_fraction, "dev_fraction", "imdb")
    path = root / ARCHIVE
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    reviews = _read_archive(path, mtime)

    def split_of(rows) -> Split:
        return Split([clean_review(text, repair_cp1252=repair_cp1252) for _, _, _, text in rows],
                     [label for label, _, _, _ in rows])

    full, test = split_of(reviews["train"]), split_of(reviews["test"])
    train, dev = seeded_split(full, dev_fraction, seed, str(path))
    return [Task("imdb", LABELS, train, dev, test, source=str(root))]
