"""FDU-MTL: 16 review domains of Liu et al. (2017), binary sentiment.

Files ``<domain>.task.{train,test,unlabel}``; train/test lines are ``label<TAB>text`` with
0 = negative, 1 = positive; unlabel lines are text only. The ``.task.train`` file holds train
and dev together: dev is its last ``dev_size`` lines (200 in the papers), as DESIGN.md fixes.

References:
    Liu, Qiu and Huang (2017), Adversarial Multi-task Learning for Text Classification.
    Chen and Cardie (2018), Multinomial Adversarial Networks (source of the files).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ConfigError, DataError
from ..datasets import DATASETS
from ..tasks import Split, Task, split_off_dev
from . import decode_utf8_or_latin1, read_bytes, split_lines

DOMAINS = (
    "apparel", "baby", "books", "camera_photo", "dvd", "electronics", "health_personal_care",
    "imdb", "kitchen_housewares", "magazines", "MR", "music", "software", "sports_outdoors",
    "toys_games", "video",
)
#: The "14 Amazon domains" of the cluster-layer paper: all but the two movie-review domains.
AMAZON_DOMAINS = tuple(d for d in DOMAINS if d not in ("imdb", "MR"))
LABELS = ("negative", "positive")


def _read_labelled(path: Path) -> Split:
    """Parse ``label<TAB>text`` lines; bytes split on b"\\n" only (see ``split_lines``)."""
    texts, labels = [], []
    for number, line in enumerate(split_lines(read_bytes(path)), start=1):
        label, tab, text = line.partition(b"\t")
        if not tab or label not in (b"0", b"1"):
            raise DataError(
                f"{path}: line {number} should be '0<TAB>text' or '1<TAB>text', "
                f"found {line[:40]!r}"
            )
        # MR's files are latin-1 and one dvd line is broken UTF-8: per-line fallback keeps
        # the UTF-8 of every other line intact
        texts.append(decode_utf8_or_latin1(text))
        labels.append(int(label))
    return Split(texts, labels)


@DATASETS.register("fdu_mtl")
def load_fdu_mtl(root: Path, *, domains: list[str] | None = None, dev_size: int = 200,
                 unlabeled: bool = True) -> list[Task]:
    """FDU-MTL, one binary sentiment task per review domain.

    Args:
        root: the ``fdu-mtl`` folder.
        domains: domains to load (task names, e.g. ``["books", "MR"]``); None = all 16.
        dev_size: dev examples taken from the END of each ``.task.train`` file.
        unlabeled: attach the ``.task.unlabel`` texts as ``Task.unlabeled``.

    Returns:
        One task per domain, labels ``("negative", "positive")``; e.g. apparel 1400/200/400.
    """
    chosen = list(DOMAINS) if domains is None else list(domains)
    unknown = [d for d in chosen if d not in DOMAINS]
    if unknown:
        raise ConfigError(
            f"'domains' of dataset 'fdu_mtl' has unknown domain {unknown[0]!r}; "
            f"expected any of: {', '.join(DOMAINS)}"
        )
    if not chosen:
        raise ConfigError("'domains' of dataset 'fdu_mtl' is empty; expected at least one domain")
    tasks = []
    for domain in chosen:
        train_path = root / f"{domain}.task.train"
        train, dev = split_off_dev(_read_labelled(train_path), dev_size, str(train_path))
        test = _read_labelled(root / f"{domain}.task.test")
        extra = None
        if unlabeled:
            lines = split_lines(read_bytes(root / f"{domain}.task.unlabel"))
            extra = [decode_utf8_or_latin1(line) for line in lines]
        tasks.append(Task(domain, LABELS, train, dev, test, unlabeled=extra,
                          source=str(root / f"{domain}.task.*")))
    return tasks
