"""CoNLL-2000 chunking (WSJ sections 15-18 train, 20 test), with its POS tags.

One token per line, ``word POS chunk`` (IOB2 chunk tags), a blank line between sentences.
Two tagging tasks share the sentences: ``conll2000_chunk`` and ``conll2000_pos``. The data has
no dev split; the last ``dev_sentences`` sentences of ``train.txt`` are dev (a contiguous block
keeps whole articles together, like FDU-MTL's last-200 convention). Tag names are those seen in
the whole ``train.txt`` (train + dev), sorted, with chunk tags completed to both ``B-`` and
``I-`` of every chunk type (test has ``I-LST``, train only ``B-LST``); a test tag outside that
set is a DataError.

References:
    Tjong Kim Sang and Buchholz (2000), Introduction to the CoNLL-2000 Shared Task: Chunking.
    Ruder et al. (2019), Latent Multi-task Architecture Learning (sluice networks).
"""

from __future__ import annotations

import random
from pathlib import Path

from ...errors import ConfigError, DataError
from ..datasets import DATASETS
from ..tasks import Split, Task, encode_labels, split_off_dev
from . import read_bytes, split_lines

TASKS = ("chunk", "pos")
_COLUMN = {"pos": 1, "chunk": 2}


def _read_sentences(path: Path) -> list[list[tuple[str, str, str]]]:
    sentences: list[list[tuple[str, str, str]]] = []
    current: list[tuple[str, str, str]] = []
    for number, line in enumerate(split_lines(read_bytes(path)), start=1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        fields = line.decode("latin-1").split(" ")
        if len(fields) != 3:
            raise DataError(f"{path}: line {number} should be 'word POS chunk', "
                            f"found {len(fields)} fields")
        current.append((fields[0], fields[1], fields[2]))
    if current:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path}: no sentences found")
    return sentences


def _tag_names(task: str, sentences: list[list[tuple[str, str, str]]]) -> tuple[str, ...]:
    """Sorted tag names of ``train.txt``; for chunks, both B- and I- of every chunk type seen.

    Test has ``I-LST``, which train lacks although it has ``B-LST``: the tag space is the
    IOB2 tags of the chunk types, not the tag strings that happen to occur.
    """
    seen = {token[_COLUMN[task]] for sentence in sentences for token in sentence}
    if task == "chunk":
        types = {tag[2:] for tag in seen if tag[:2] in ("B-", "I-")}
        seen = {tag for tag in seen if tag[:2] not in ("B-", "I-")}
        seen |= {f"{prefix}{kind}" for kind in types for prefix in ("B-", "I-")}
    return tuple(sorted(seen))


AUXILIARIES = ("random", "copy")


@DATASETS.register("conll2000")
def load_conll2000(root: Path, *, tasks: tuple[str, ...] = ("chunk", "pos"),
                   dev_sentences: int = 1000, train_sentences: int | None = None, sample_seed: int = 0,
                   auxiliary: str | None = None, relabel_seed: int = 0) -> list[Task]:
    """CoNLL-2000 as tagging tasks ``conll2000_chunk`` and/or ``conll2000_pos``.

    Args:
        root: the ``conll2000`` folder.
        tasks: which tags to predict, any of ``"chunk"``, ``"pos"`` (a YAML list is fine).
        dev_sentences: sentences taken from the END of ``train.txt`` as dev.
        train_sentences: keep this many training sentences (a seeded sample, ``sample_seed``;
            the same ones for every task), None for all.
        auxiliary: add a synthetic auxiliary task made from the first task on the same
            sentences (the sluice paper's Figure 2): "random", every token of every split given
            a tag drawn uniformly from the tag set (``relabel_seed``), or "copy", the same tags.
            It is named ``conll2000_<task>_<auxiliary>``.

    Returns:
        One tagging task per entry of ``tasks`` (and the auxiliary one last); texts are token
        lists, labels per-token ids. With the defaults 7,936 / 1,000 / 2,012 sentences.
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(f"'tasks' of dataset 'conll2000' must name some of: "
                          f"{', '.join(TASKS)}; got {list(tasks)!r}")
    if auxiliary is not None and auxiliary not in AUXILIARIES:
        raise ConfigError(f"'auxiliary' of dataset 'conll2000' must be one of {', '.join(AUXILIARIES)} or "
                          f"null; got {auxiliary!r}")
    if train_sentences is not None and (isinstance(train_sentences, bool) or not isinstance(train_sentences, int)
                                        or train_sentences < 1):
        raise ConfigError(f"'train_sentences' of dataset 'conll2000' must be an integer >= 1 or null; "
                          f"got {train_sentences!r}")
    train_path, test_path = root / "train.txt", root / "test.txt"
    train_file = _read_sentences(train_path)
    test_file = _read_sentences(test_path)
    out = []
    for name in tasks:
        column = _COLUMN[name]
        tags = _tag_names(name, train_file)
        index = {tag: i for i, tag in enumerate(tags)}
        full = Split([[tok[0] for tok in s] for s in train_file],
                     [[index[tok[column]] for tok in s] for s in train_file])
        test = Split([[tok[0] for tok in s] for s in test_file],
                     [encode_labels([tok[column] for tok in s], tags, str(test_path))
                      for s in test_file])
        train, dev = split_off_dev(full, dev_sentences, str(train_path))
        if train_sentences is not None:
            if train_sentences > len(train):
                raise ConfigError(f"'train_sentences' of dataset 'conll2000' is {train_sentences}; {train_path} "
                                  f"has {len(train)} training sentences (after {dev_sentences} for dev)")
            keep = sorted(random.Random(sample_seed).sample(range(len(train)), train_sentences))
            train = Split([train.texts[i] for i in keep], [train.labels[i] for i in keep])
        out.append(Task(f"conll2000_{name}", tags, train, dev, test, kind="tagging",
                        source=str(root)))
    if auxiliary is not None:
        out.append(_synthetic_auxiliary(out[0], auxiliary, relabel_seed))
    return out


def _synthetic_auxiliary(target: Task, how: str, seed: int) -> Task:
    """The target's sentences with its tags ("copy") or uniformly random tags ("random")."""
    rng = random.Random(seed)

    def relabel(split: Split) -> Split:
        if how == "copy":
            return Split(list(split.texts), [list(tags) for tags in split.labels])
        return Split(list(split.texts), [[rng.randrange(len(target.labels)) for _ in tags] for tags in split.labels])

    return Task(f"{target.name}_{how}", target.labels, relabel(target.train), relabel(target.dev),
                relabel(target.test), kind="tagging", source=target.source)
