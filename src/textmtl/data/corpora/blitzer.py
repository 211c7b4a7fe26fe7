"""Blitzer et al. (2007) Multi-Domain Sentiment Dataset: 4 Amazon domains, binary sentiment.

``sorted_data_acl/<domain>/{positive,negative}.review`` are pseudo-XML (no root, bare ``&``),
so reviews are cut out with a regex on ``<review>...</review>`` and ``<review_text>``. The data
has no official split; each domain's 2,000 reviews are split 1,400 / 200 / 400 (as in FDU-MTL
and Zhang et al. 2017), stratified by label with a fixed seed.

References:
    Blitzer, Dredze and Pereira (2007), Biographies, Bollywood, Boom-boxes and Blenders.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import ConfigError, DataError
from ..datasets import DATASETS
from ..tasks import Split, Task
from . import read_bytes, stratified_holdout

#: task name -> folder name
DOMAINS = {"books": "books", "dvd": "dvd", "electronics": "electronics",
           "kitchen": "kitchen_&_housewares"}
LABELS = ("negative", "positive")

_REVIEW = re.compile(r"<review>(.*?)</review>", re.S)
_TEXT = re.compile(r"<review_text>\s*(.*?)\s*</review_text>", re.S)
_TITLE = re.compile(r"<title>\s*(.*?)\s*</title>", re.S)


def _read_reviews(path: Path, include_title: bool) -> list[str]:
    data = read_bytes(path)
    # dvd/positive.review has 4 stray Ctrl-Z bytes where a non-ASCII letter was lost
    # ("fianc\x1a"): mark the lost character instead of inventing one
    data = data.replace(b"\x1a", "\ufffd".encode("utf-8"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8 "
                        f"(byte 0x{data[error.start]:02x})") from error
    reviews = []
    for number, block in enumerate(_REVIEW.findall(text), start=1):
        body = _TEXT.search(block)
        if body is None:
            raise DataError(f"{path}: review {number} has no <review_text> element")
        title = _TITLE.search(block) if include_title else None
        reviews.append(f"{title.group(1)}. {body.group(1)}" if title else body.group(1))
    if not reviews:
        raise DataError(f"{path}: no <review> blocks found")
    return reviews


@DATASETS.register("blitzer")
def load_blitzer(root: Path, *, domains: list[str] | None = None, include_title: bool = False,
                 dev_size: int = 200, test_size: int = 400, seed: int = 0) -> list[Task]:
    """Blitzer MDSD, one binary sentiment task per domain (``books dvd electronics kitchen``).

    Args:
        root: the ``blitzer-mdsd`` folder.
        domains: task names to load; None = all four.
        include_title: prefix each review with its title (``"<title>. <text>"``).
        dev_size: dev reviews per domain, stratified by label.
        test_size: test reviews per domain, stratified by label.
        seed: seed of the split (the same seed in every domain).

    Returns:
        One task per domain; with the defaults 1,400 / 200 / 400 reviews (half positive each).
    """
    chosen = list(DOMAINS) if domains is None else list(domains)
    unknown = [d for d in chosen if d not in DOMAINS]
    if unknown or not chosen:
        raise ConfigError(
            f"'domains' of dataset 'blitzer' must name some of: {', '.join(DOMAINS)}; "
            f"got {domains!r}"
        )
    tasks = []
    for name in chosen:
        folder = root / "sorted_data_acl" / DOMAINS[name]
        negative = _read_reviews(folder / "negative.review", include_title)
        positive = _read_reviews(folder / "positive.review", include_title)
        texts, labels = negative + positive, [0] * len(negative) + [1] * len(positive)
        if dev_size <= 0 or test_size <= 0 or dev_size + test_size >= len(texts):
            raise ConfigError(
                f"'dev_size' and 'test_size' of dataset 'blitzer' must be > 0 and sum to less "
                f"than the {len(texts)} reviews of {name!r}; got {dev_size} and {test_size}"
            )
        rest, test_ix = stratified_holdout(labels, test_size, seed)
        kept, dev_ix = stratified_holdout([labels[i] for i in rest], dev_size, seed + 1)
        train_ix, dev_ix = [rest[i] for i in kept], [rest[i] for i in dev_ix]
        split = {key: Split([texts[i] for i in ix], [labels[i] for i in ix])
                 for key, ix in (("train", train_ix), ("dev", dev_ix), ("test", test_ix))}
        tasks.append(Task(name, LABELS, split["train"], split["dev"], split["test"],
                          source=str(folder)))
    return tasks
