"""20 Newsgroups, "bydate" split: raw Usenet posts, 20 topics, and their topic hierarchy.

The archive ``20news-bydate.tar.gz`` is read member by member with :mod:`tarfile`, never
unpacked; each post is decoded as latin-1 (as scikit-learn does), so no byte is lost.
The bydate test set is the test split; dev is a seeded, stratified ``dev_fraction`` of the
bydate train set (the papers do not publish one).

References:
    Lang (1995), NewsWeeder. Augenstein et al., When does MTL work? (Figure 1: the hierarchy).
"""

from __future__ import annotations

import tarfile
import threading
from pathlib import Path

from ...errors import DataError
from ..datasets import DATASETS
from ..tasks import Split, Task
from . import check_fraction, seeded_split

ARCHIVE = "20news-bydate.tar.gz"
TOPICS = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
    "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med",
    "sci.space", "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast",
    "talk.politics.misc", "talk.religion.misc",
)

#: Figure 1 of "When does MTL work" (20 Newsgroups): 5 classes, 8 subclasses, 20 topics
#: (leaves are the full newsgroup names). The figure groups alt.atheism and
#: soc.religion.christian with talk.religion.misc under talk/religion, so the tree is not the
#: dot-separated names alone. The text names the subclasses "sys", "others", "sport", "vehicles";
#: the single subclasses of sci and misc are named "sci" and "forsale" here. This tree gives
#: exactly the paper's 52 RELATED and 516 UNRELATED task pairs (see ``task_pairs``).
TOPIC_HIERARCHY: dict[str, dict[str, tuple[str, ...]]] = {
    "comp": {
        "sys": ("comp.sys.ibm.pc.hardware", "comp.sys.mac.hardware"),
        "others": ("comp.graphics", "comp.os.ms-windows.misc", "comp.windows.x"),
    },
    "rec": {
        "sport": ("rec.sport.baseball", "rec.sport.hockey"),
        "vehicles": ("rec.autos", "rec.motorcycles"),
    },
    "sci": {
        "sci": ("sci.crypt", "sci.electronics", "sci.med", "sci.space"),
    },
    "talk": {
        "politics": ("talk.politics.misc", "talk.politics.guns", "talk.politics.mideast"),
        "religion": ("talk.religion.misc", "alt.atheism", "soc.religion.christian"),
    },
    "misc": {
        "forsale": ("misc.forsale",),
    },
}

#: The 6-way grouping of the dataset's home page (data README).
SIX_GROUPS: dict[str, tuple[str, ...]] = {
    "computers": ("comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
                  "comp.sys.mac.hardware", "comp.windows.x"),
    "recreation": ("rec.autos", "rec.motorcycles", "rec.sport.baseball", "rec.sport.hockey"),
    "science": ("sci.crypt", "sci.electronics", "sci.med", "sci.space"),
    "forsale": ("misc.forsale",),
    "politics": ("talk.politics.misc", "talk.politics.guns", "talk.politics.mideast"),
    "religion": ("talk.religion.misc", "alt.atheism", "soc.religion.christian"),
}

_PATHS = {topic: (top, sub, topic)
          for top, subs in TOPIC_HIERARCHY.items()
          for sub, topics in subs.items() for topic in topics}


def topic_path(name: str) -> tuple[str, str, str]:
    """The path of a newsgroup in :data:`TOPIC_HIERARCHY`.

    Args:
        name: a full newsgroup name, e.g. ``"rec.sport.baseball"``.

    Returns:
        (class, subclass, newsgroup), e.g. ``("rec", "sport", "rec.sport.baseball")``.
    """
    if name not in _PATHS:
        raise KeyError(f"unknown newsgroup {name!r}; expected one of: {', '.join(TOPICS)}")
    return _PATHS[name]


def six_group(name: str) -> str:
    """The home page's 6-way group of a newsgroup (``"computers"``, ..., ``"religion"``)."""
    for group, topics in SIX_GROUPS.items():
        if name in topics:
            return group
    raise KeyError(f"unknown newsgroup {name!r}; expected one of: {', '.join(TOPICS)}")


def task_pairs(related: bool) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The main/auxiliary task pairs of the paper's Problem 1 (related) or 2 (unrelated).

    Main task: topic A vs. B from different subclasses (for Problem 1 also the same class);
    auxiliary task: C vs. D with C a sibling of A and D a sibling of B. A pair and its mirror
    (B, A; D, C) count once.

    Args:
        related: True for RELATED TOPICS (52 pairs), False for UNRELATED TOPICS (516).

    Returns:
        ((A, B), (C, D)) tuples in a fixed order.
    """
    pairs = set()
    for a in TOPICS:
        for b in TOPICS:
            pa, pb = topic_path(a), topic_path(b)
            if pa[:2] == pb[:2] or (related and pa[0] != pb[0]):
                continue
            for c in TOPIC_HIERARCHY[pa[0]][pa[1]]:
                for d in TOPIC_HIERARCHY[pb[0]][pb[1]]:
                    if c != a and d != b:
                        pairs.add(min(((a, b), (c, d)), ((b, a), (d, c))))
    return sorted(pairs)


_cache: dict[tuple[str, int, int], dict[str, dict[str, list[str]]]] = {}
_cache_lock = threading.Lock()


def _parse_archive(path: Path) -> dict[str, dict[str, list[str]]]:
    documents: dict[str, dict[str, list[tuple[str, str]]]] = {"train": {}, "test": {}}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                parts = member.name.split("/")
                if len(parts) != 3 or parts[0] not in ("20news-bydate-train", "20news-bydate-test"):
                    continue  # e.g. a stray .DS_Store: not a post
                split = "train" if parts[0].endswith("train") else "test"
                stream = archive.extractfile(member)
                assert stream is not None
                text = stream.read().decode("latin-1")
                documents[split].setdefault(parts[1], []).append((parts[2], text))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{path}: not a readable tar.gz archive ({error})") from error
    result: dict[str, dict[str, list[str]]] = {}
    for split, topics in documents.items():
        unknown = sorted(set(topics) - set(TOPICS))
        if unknown or len(topics) != len(TOPICS):
            raise DataError(
                f"{path}: 20news-bydate-{split} should hold the 20 newsgroup folders; "
                f"found {len(topics)}{f', unknown {unknown[0]!r}' if unknown else ''}"
            )
        # order posts by message number so every reader sees the same order
        result[split] = {
            topic: [text for _, text in sorted(posts, key=lambda p: (len(p[0]), p[0]))]
            for topic, posts in sorted(topics.items())
        }
    return result


def load_newsgroup_documents(root: Path) -> dict[str, dict[str, list[str]]]:
    """All posts of the archive by split and newsgroup, parsed once per archive per process.

    Args:
        root: the ``20newsgroups`` folder.

    Returns:
        ``{"train": {topic: [post, ...]}, "test": {...}}``, posts as raw latin-1 text with
        headers, in message-number order. The lists are fresh copies; the strings are shared.
    """
    path = Path(root) / ARCHIVE
    try:
        stat = path.stat()
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:  # parsing takes seconds: two threads should not both do it
        if key not in _cache:
            _cache[key] = _parse_archive(path)
        parsed = _cache[key]
    return {split: {topic: list(posts) for topic, posts in topics.items()}
            for split, topics in parsed.items()}


def strip_headers(post: str) -> str:
    """The body of a post: everything after the first blank line (the header block)."""
    _, blank, body = post.partition("\n\n")
    return body if blank else post


@DATASETS.register("newsgroups")
def load_newsgroups(root: Path, *, dev_fraction: float = 0.1, seed: int = 0,
                    remove_headers: bool = False) -> list[Task]:
    """20 Newsgroups as one 20-way topic task ``newsgroups``.

    Args:
        root: the ``20newsgroups`` folder.
        dev_fraction: share of the bydate train set held out as dev (stratified by topic).
        seed: seed of the dev selection.
        remove_headers: drop each post's header block (From:, Subject:, ...); the headers name
            the newsgroup, so keeping them makes the task easier than it looks.

    Returns:
        ``[Task("newsgroups")]`` with the sorted topic names as labels; with the defaults
        10,183 / 1,131 / 7,532 examples.
    """
    check_fraction(dev_fraction, "dev_fraction", "newsgroups")
    documents = load_newsgroup_documents(root)
    splits = {}
    for split, topics in documents.items():
        texts, labels = [], []
        for label, topic in enumerate(TOPICS):
            posts = topics[topic]
            texts.extend([strip_headers(p) for p in posts] if remove_headers else posts)
            labels.extend([label] * len(posts))
        splits[split] = Split(texts, labels)
    source = str(Path(root) / ARCHIVE)
    train, dev = seeded_split(splits["train"], dev_fraction, seed, source)
    return [Task("newsgroups", TOPICS, train, dev, splits["test"], source=source)]
