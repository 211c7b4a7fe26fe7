"""The user's own labelled texts: CSV, TSV, JSON lines, or one folder per label.

Paths are absolute or relative to the working directory (the ``root`` argument is ignored).
Files must be UTF-8 (a leading byte-order mark is allowed). Every problem is a one-line
DataError naming the file, the line and what was expected, e.g.
``reviews.csv: missing column 'label'; found columns: text, stars``.

Formats:
    csv: a header line, then one example per row (RFC 4180 quoting, so a text may span lines).
    tsv: a header line, then one example per line, fields split on TAB, no quoting.
    jsonl: one JSON object per line, with the text and label keys (labels strings or integers).
    folders: one subfolder per label, one UTF-8 ``.txt`` file per example.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Literal

from ...errors import ConfigError, DataError
from ..datasets import DATASETS
from ..tasks import Split, Task, encode_labels
from . import check_fraction, read_bytes, seeded_split

Format = Literal["auto", "csv", "tsv", "jsonl", "folders"]
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def decode_utf8(data: bytes, where: str) -> str:
    """Decode a user file as UTF-8, naming the line and byte of the first invalid sequence.

    Args:
        data: the file's bytes.
        where: the file name for the message.

    Returns:
        The text, without a leading byte-order mark.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1  # 1-based, in bytes
        raise DataError(
            f"{where}: line {line} is not valid UTF-8 "
            f"(byte 0x{data[start]:02x} at position {column})"
        ) from error


def _detect(path: Path, where: str, format: str) -> str:
    if format != "auto":
        if (format == "folders") != path.is_dir() and path.exists():
            expected = "a folder" if format == "folders" else "a file"
            found = "a folder" if path.is_dir() else "a file"
            raise DataError(f"{where}: format {format!r} expects {expected}, found {found}")
        return format
    if path.is_dir():
        return "folders"
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    if not path.exists():
        raise DataError(f"{where}: file not found")
    raise DataError(
        f"{where}: cannot tell the format from the suffix {path.suffix!r}; expected .csv, "
        ".tsv, .jsonl or a folder, or set 'format'"
    )


#: the longest CSV/TSV field accepted, in characters. The csv module's default (128 KiB)
#: rejects legitimate long documents; this cap still stops a file whose quoting is broken
#: (an unclosed quote swallows the rest of the file into one field) with a clear message.
MAX_FIELD_CHARS = 64 * 1024 * 1024


def _read_table(path: Path, where: str, delimiter: str, text_column: str,
                label_column: str) -> tuple[list[str], list[str]]:
    text = decode_utf8(read_bytes(path), where)
    # TSV has no quoting convention: a quote character is part of the text
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)  # process-wide; only ever raised
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    texts, labels = [], []
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{where}: empty file; expected a header line naming the columns "
                            f"{text_column!r} and {label_column!r}")
        header = [h.strip() for h in header]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            # which of the two columns would be read is a guess: refuse it
            raise DataError(f"{where}: the header names column {repeated[0]!r} twice; "
                            "expected unique column names")
        for column in (text_column, label_column):
            if column not in header:
                raise DataError(f"{where}: missing column {column!r}; "
                                f"found columns: {', '.join(header)}")
        text_at, label_at = header.index(text_column), header.index(label_column)
        for row in reader:
            if not any(field.strip() for field in row):
                continue  # blank line
            if len(row) != len(header):
                raise DataError(f"{where}: line {reader.line_num} has {len(row)} fields; "
                                f"expected {len(header)} ({', '.join(header)})")
            label = row[label_at].strip()
            if not label:
                raise DataError(f"{where}: line {reader.line_num} has an empty {label_column!r}")
            texts.append(row[text_at])
            labels.append(label)
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise DataError(f"{where}: line {reader.line_num} has a field longer than "
                            f"{MAX_FIELD_CHARS:,} characters; expected shorter texts (an unclosed quote makes the rest of the file one field)") from error
        raise DataError(f"{where}: line {reader.line_num} is not valid "
                        f"{'TSV' if delimiter == chr(9) else 'CSV'} ({error})") from error
    if not texts:
        raise DataError(f"{where}: no examples; expected at least one row after the header")
    return texts, labels


def _read_jsonl(path: Path, where: str, text_column: str,
                label_column: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    content = decode_utf8(read_bytes(path), where)
    for number, line in enumerate(content.split("\n"), start=1):  # "\n" only, never splitlines
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: line {number} is not valid JSON "
                            f"({error.msg} at column {error.colno})") from error
        if not isinstance(record, dict):
            raise DataError(f"{where}: line {number} should be a JSON object, "
                            f"found {type(record).__name__}")
        for key in (text_column, label_column):
            if key not in record:
                raise DataError(f"{where}: line {number} has no key {key!r}; "
                                f"found keys: {', '.join(record) or '(none)'}")
        text, label = record[text_column], record[label_column]
        if not isinstance(text, str):
            raise DataError(f"{where}: line {number}: {text_column!r} should be a string, "
                            f"found {type(text).__name__}")
        if isinstance(label, bool) or not isinstance(label, (str, int)) or str(label) == "":
            raise DataError(f"{where}: line {number}: {label_column!r} should be a non-empty "
                            f"string or an integer, found {label!r}")
        texts.append(text)
        labels.append(str(label))
    if not texts:
        raise DataError(f"{where}: no examples; expected one JSON object per line")
    return texts, labels


def _read_folders(path: Path, where: str) -> tuple[list[str], list[str]]:
    if not path.is_dir():
        raise DataError(f"{where}: folder not found")
    subfolders = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subfolders:
        raise DataError(f"{where}: no label subfolders; expected one subfolder per label "
                        "holding one .txt file per example")
    texts, labels = [], []
    for folder in subfolders:
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(f"{where}/{folder.name}: no .txt files; "
                            "expected one .txt file per example")
        for file in files:
            texts.append(decode_utf8(read_bytes(file), f"{where}/{folder.name}/{file.name}"))
            labels.append(folder.name)
    return texts, labels


def read_examples(path: str, format: str = "auto", text_column: str = "text",
                  label_column: str = "label") -> tuple[list[str], list[str]]:
    """Read one file (or folder) of labelled texts.

    Args:
        path: the file or folder, absolute or relative to the working directory.
        format: ``"auto"`` (from the suffix, or a folder), ``"csv"``, ``"tsv"``, ``"jsonl"``
            or ``"folders"``.
        text_column: column (key) holding the text.
        label_column: column (key) holding the label.

    Returns:
        (texts, label names), in file order.
    """
    if text_column == label_column:
        # the label would be the input: every score would be a leak, not a result
        raise ConfigError(f"{path}: 'text_column' and 'label_column' are both {text_column!r}; "
                          "expected two different columns")
    file = Path(path).expanduser()
    kind = _detect(file, path, format)
    if kind == "folders":
        return _read_folders(file, path)
    if kind == "jsonl":
        return _read_jsonl(file, path, text_column, label_column)
    return _read_table(file, path, "," if kind == "csv" else "\t", text_column, label_column)


def _label_order(name: str) -> tuple:
    # numeric labels sort as numbers ("2" before "10"), others alphabetically after them
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


@DATASETS.register("user_files")
def load_user_files(root: Path, *, path: str, format: Format = "auto",
                    text_column: str = "text", label_column: str = "label",
                    dev_path: str | None = None, test_path: str | None = None,
                    dev_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                    name: str | None = None) -> list[Task]:
    """A classification task from the user's files.

    Without ``test_path`` a stratified, seeded ``test_fraction`` of ``path`` is the test set;
    without ``dev_path`` a ``dev_fraction`` of ``path`` (of the whole file) is the dev set.
    Label names are those of ``path``; a dev or test label not among them is a DataError.

    Args:
        root: ignored (user paths are absolute or relative to the working directory).
        path: the training file or folder.
        format: ``"auto"`` (by suffix: .csv, .tsv, .jsonl; a folder), or the format by name;
            applies to ``dev_path`` and ``test_path`` too.
        text_column: column (JSON key) of the text.
        label_column: column (JSON key) of the label.
        dev_path: a dev file in the same layout; None = hold out ``dev_fraction``.
        test_path: a test file in the same layout; None = hold out ``test_fraction``.
        dev_fraction: share of ``path`` held out as dev when there is no ``dev_path``.
        test_fraction: share of ``path`` held out as test when there is no ``test_path``.
        seed: seed of the held-out selections.
        name: task name; default the file's stem (``reviews`` for ``reviews.csv``).

    Returns:
        One task.
    """
    del root  # user paths do not live under a data dir
    carve_dev, carve_test = dev_path is None, test_path is None
    if carve_dev:
        check_fraction(dev_fraction, "dev_fraction", "user_files")
    if carve_test:
        check_fraction(test_fraction, "test_fraction", "user_files")
    if carve_dev and carve_test and dev_fraction + test_fraction >= 1:
        raise ConfigError(f"'dev_fraction' + 'test_fraction' of dataset 'user_files' must be "
                          f"< 1, got {dev_fraction} + {test_fraction}")
    task_name = name if name is not None else Path(path).stem
    if not task_name:
        raise ConfigError(f"'name' of dataset 'user_files' must be non-empty, got {name!r}")
    texts, names = read_examples(path, format, text_column, label_column)
    label_names = tuple(sorted(set(names), key=_label_order))
    full = Split(texts, encode_labels(names, label_names, path))

    def read_other(other: str) -> Split:
        other_texts, other_names = read_examples(other, format, text_column, label_column)
        return Split(other_texts, encode_labels(other_names, label_names, other))

    rest = full
    if carve_test:
        rest, test = seeded_split(full, test_fraction, seed, path)
    else:
        test = read_other(test_path)  # type: ignore[arg-type]
    if carve_dev:
        # dev_fraction is a share of the whole file, not of what the test split left
        train, dev = seeded_split(rest, dev_fraction * len(full) / len(rest), seed + 1, path)
    else:
        train, dev = rest, read_other(dev_path)  # type: ignore[arg-type]
    return [Task(task_name, label_names, train, dev, test, source=path)]
