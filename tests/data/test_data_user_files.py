"""user_files: every format, every error message (one line, naming file, line, expectation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textmtl.data.datasets import load_tasks
from textmtl.errors import ConfigError, DataError


def _csv(rows: int = 20) -> str:
    lines = ["text,label,stars"]
    lines += [f'"review {i}, with a comma",{"pos" if i % 2 else "neg"},{i % 5}'
              for i in range(rows)]
    return "\n".join(lines) + "\n"


def _load(**params):
    return load_tasks("user_files", params)[0]


def _error(exception=DataError, **params) -> str:
    with pytest.raises(exception) as error:
        _load(**params)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # user paths are relative to the working directory


def test_csv_with_carved_dev_and_test():
    Path("reviews.csv").write_text(_csv(40), encoding="utf-8")
    task = _load(path="reviews.csv")
    assert task.name == "reviews" and task.labels == ("neg", "pos")
    assert task.sizes() == {"train": 32, "dev": 4, "test": 4}
    assert task.label_counts("test") == {"neg": 2, "pos": 2}
    all_texts = task.train.texts + task.dev.texts + task.test.texts
    assert sorted(all_texts) == sorted(f"review {i}, with a comma" for i in range(40))
    assert _load(path="reviews.csv").dev.texts == task.dev.texts
    assert _load(path="reviews.csv", seed=3).dev.texts != task.dev.texts


def test_tsv_jsonl_and_folders_read_the_same_examples(tmp_path):
    rows = [("good \"quoted\" one", "pos"), ("bad one", "neg")] * 10
    Path("d.tsv").write_text("label\ttext\n" + "".join(f"{y}\t{x}\n" for x, y in rows))
    Path("d.jsonl").write_text("".join(json.dumps({"text": x, "label": y}) + "\n"
                                       for x, y in rows))
    for i, (x, y) in enumerate(rows):
        (tmp_path / "d" / y).mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / y / f"{i:02d}.txt").write_text(x, encoding="utf-8")
    tasks = [_load(path=p, name="t") for p in ("d.tsv", "d.jsonl", "d")]
    for task in tasks:
        assert task.labels == ("neg", "pos")
        assert sorted(task.train.texts + task.dev.texts + task.test.texts) == sorted(
            x for x, _ in rows)


def test_separate_dev_and_test_files_and_custom_columns():
    Path("train.jsonl").write_text("".join(
        json.dumps({"body": f"t{i}", "y": i % 3}) + "\n" for i in range(9)))
    Path("dev.jsonl").write_text(json.dumps({"body": "d", "y": 2}) + "\n")
    Path("test.jsonl").write_text(json.dumps({"body": "x", "y": 10 % 3}) + "\n")
    task = _load(path="train.jsonl", dev_path="dev.jsonl", test_path="test.jsonl",
                 text_column="body", label_column="y", name="mine")
    assert task.name == "mine" and task.labels == ("0", "1", "2")
    assert task.sizes() == {"train": 9, "dev": 1, "test": 1}
    assert task.test.labels == [1]


def test_numeric_labels_sort_as_numbers():
    Path("n.csv").write_text("text,label\n" + "".join(f"x{i},{i % 11}\n" for i in range(44)))
    assert _load(path="n.csv").labels[:3] == ("0", "1", "2")
    assert _load(path="n.csv").labels[-1] == "10"


def test_missing_column():
    Path("reviews.csv").write_text("text,stars\nnice,5\n")
    assert _error(path="reviews.csv") == (
        "reviews.csv: missing column 'label'; found columns: text, stars")


def test_empty_file():
    Path("empty.csv").write_bytes(b"")
    assert "empty.csv: empty file" in _error(path="empty.csv")
    Path("header.csv").write_text("text,label\n")
    assert "header.csv: no examples" in _error(path="header.csv")
    Path("empty.jsonl").write_text("\n\n")
    assert "empty.jsonl: no examples" in _error(path="empty.jsonl")


def test_too_few_examples_for_a_split():
    Path("tiny.csv").write_text("text,label\na,x\nb,y\n")
    assert "tiny.csv: cannot hold out" in _error(path="tiny.csv")


def test_empty_dev_file():
    Path("train.csv").write_text(_csv())
    Path("dev.csv").write_text("text,label,stars\n")
    assert _error(path="train.csv", dev_path="dev.csv").startswith("dev.csv: no examples")


def test_label_unseen_in_training():
    Path("train.csv").write_text(_csv())
    Path("test.csv").write_text("text,label,stars\nmeh,neutral,3\n")
    message = _error(path="train.csv", test_path="test.csv")
    assert message.startswith("test.csv: label 'neutral' (example 1) was not seen in training")
    assert "['neg', 'pos']" in message


def test_undecodable_bytes():
    data = _csv().encode("utf-8").split(b"\n")
    data[11] = b'"' + b"x" * 38 + b'\xff",pos,1'  # 0xff is the 40th byte of line 12
    Path("reviews.csv").write_bytes(b"\n".join(data))
    assert _error(path="reviews.csv") == (
        "reviews.csv: line 12 is not valid UTF-8 (byte 0xff at position 40)")


def test_bad_json_lines():
    Path("a.jsonl").write_text('{"text": "x", "label": "p"}\n{"text": "y" "label": 1}\n')
    assert _error(path="a.jsonl").startswith("a.jsonl: line 2 is not valid JSON (Expecting")
    Path("b.jsonl").write_text('{"text": "x", "label": "p"}\n["y", 1]\n')
    assert _error(path="b.jsonl") == "b.jsonl: line 2 should be a JSON object, found list"
    Path("c.jsonl").write_text('{"text": "x", "stars": 1}\n')
    assert _error(path="c.jsonl") == "c.jsonl: line 1 has no key 'label'; found keys: text, stars"
    Path("d.jsonl").write_text('{"text": "x", "label": null}\n')
    assert "d.jsonl: line 1: 'label' should be a non-empty string or an integer" in _error(
        path="d.jsonl")


def test_ragged_and_empty_label_rows():
    Path("r.csv").write_text("text,label\nok,a\nno label here\n")
    assert _error(path="r.csv") == "r.csv: line 3 has 1 fields; expected 2 (text, label)"
    Path("e.csv").write_text("text,label\nok,a\nmissing, \n")
    assert _error(path="e.csv") == "e.csv: line 3 has an empty 'label'"


def test_folder_errors(tmp_path):
    (tmp_path / "docs").mkdir()
    assert "docs: no label subfolders" in _error(path="docs")
    (tmp_path / "docs" / "pos").mkdir()
    assert _error(path="docs").startswith("docs/pos: no .txt files")
    (tmp_path / "docs" / "pos" / "1.txt").write_bytes(b"fine\n\xc3(")
    assert _error(path="docs") == (
        "docs/pos/1.txt: line 2 is not valid UTF-8 (byte 0xc3 at position 1)")


def test_format_and_path_errors():
    assert _error(path="nowhere.csv") == "nowhere.csv: file not found"
    Path("data.xml").write_text("<x/>")
    assert "data.xml: cannot tell the format from the suffix '.xml'" in _error(path="data.xml")
    Path("data.txt").write_text("text\tlabel\n" + "".join(f"t{i}\t{i % 2}\n" for i in range(20)))
    assert _load(path="data.txt", format="tsv").num_classes == 2


def test_config_errors_name_the_key():
    assert "needs 'data.user_files.path'" in _error(ConfigError)
    assert "unknown key 'data.user_files.colum'" in _error(ConfigError, path="x.csv", colum="t")
    assert "'data.user_files.format'" in _error(ConfigError, path="x.csv", format="xlsx")
    Path("reviews.csv").write_text(_csv())
    assert "'dev_fraction' + 'test_fraction'" in _error(
        ConfigError, path="reviews.csv", dev_fraction=0.5, test_fraction=0.5)
