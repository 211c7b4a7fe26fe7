"""Dataset resolution order, and downloads from a local HTTP server (no internet here)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from textmtl.data import store
from textmtl.data.datasets import load_tasks
from textmtl.errors import DataError, DownloadError

ALPHA = b"alpha\n"
BETA = b"beta beta\n"


def _info(files: dict[str, bytes], **extra) -> store.DatasetInfo:
    return store.DatasetInfo(
        "toy", "toy-folder",
        tuple(store.FileInfo(path, len(data), hashlib.sha256(data).hexdigest(),
                             **extra.get(path, {}))
              for path, data in files.items()),
    )


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A registered toy dataset, empty env and an empty cache under tmp_path."""
    files = {"a.txt": ALPHA, "sub/b.txt": BETA}
    monkeypatch.setitem(store.DATASET_INFO, "toy", _info(files))
    for variable in (store.ENV_DATA_DIR, store.ENV_DOWNLOAD_BASE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(store.ENV_CACHE_DIR, str(tmp_path / "cache"))
    return files


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


def test_explicit_data_dir_comes_first(toy, tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    _write(explicit / "toy-folder", toy)
    _write(env / "toy-folder", toy)
    _write(store.cache_dir() / "toy-folder", toy)
    monkeypatch.setenv(store.ENV_DATA_DIR, str(env))
    assert store.locate("toy", explicit) == store.Location(explicit / "toy-folder", "data_dir")
    assert store.locate("toy") == store.Location(env / "toy-folder", "env")
    monkeypatch.delenv(store.ENV_DATA_DIR)
    assert store.locate("toy") == store.Location(store.cache_dir() / "toy-folder", "cache")


def test_incomplete_folder_is_skipped(toy, tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    _write(explicit / "toy-folder", {"a.txt": ALPHA})  # b.txt missing
    _write(env / "toy-folder", {"a.txt": ALPHA, "sub/b.txt": b"truncated"})  # wrong size
    _write(store.cache_dir() / "toy-folder", toy)
    monkeypatch.setenv(store.ENV_DATA_DIR, str(env))
    assert store.locate("toy", explicit).origin == "cache"


def test_not_found_names_every_place_on_one_line(toy, tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_DATA_DIR, str(tmp_path / "env"))
    (tmp_path / "explicit").mkdir()  # there, but without the dataset
    with pytest.raises(DataError) as error:
        store.locate("toy", tmp_path / "explicit", download=False)
    message = str(error.value)
    assert "\n" not in message
    for place in ("explicit", "env", "cache", "missing a.txt"):
        assert place in message


def test_unreachable_source_is_a_data_error_naming_the_url(toy, monkeypatch):
    monkeypatch.setenv(store.ENV_DOWNLOAD_BASE, "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(DataError) as error:
        store.locate("toy")
    assert not isinstance(error.value, DownloadError)
    assert "http://127.0.0.1:9/toy-folder/a.txt" in str(error.value)
    assert "cache" in str(error.value)


def test_download_from_mirror_verifies_and_caches(toy, server, monkeypatch):
    served, base = server
    _write(served / "toy-folder", toy)
    monkeypatch.setenv(store.ENV_DOWNLOAD_BASE, base + "/")
    location = store.locate("toy")
    assert location.origin == "download"
    assert (location.path / "sub" / "b.txt").read_bytes() == BETA
    assert store.locate("toy").origin == "cache"  # second time: no download
    assert not list(location.path.rglob("*.part"))


def test_corrupted_download_fails_and_leaves_nothing(toy, server, monkeypatch):
    served, base = server
    _write(served / "toy-folder", {"a.txt": ALPHA, "sub/b.txt": b"beta BETA\n"})  # same size
    monkeypatch.setenv(store.ENV_DOWNLOAD_BASE, base)
    with pytest.raises(DownloadError) as error:
        store.locate("toy")
    message = str(error.value)
    assert f"{base}/toy-folder/sub/b.txt" in message
    assert hashlib.sha256(BETA).hexdigest() in message  # expected
    assert hashlib.sha256(b"beta BETA\n").hexdigest() in message  # found
    cache = store.cache_dir() / "toy-folder"
    assert not (cache / "sub" / "b.txt").exists()
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name != "a.txt"]


def test_public_source_transform_and_md5(monkeypatch, tmp_path, server):
    """A file unpacked from a zip, and one checked by its source's md5 (20NG's case)."""
    served, base = server
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("corpus/a.txt", ALPHA)
    (served / "corpus.zip").write_bytes(packed.getvalue())
    repacked = gzip.compress(BETA, mtime=0)
    (served / "b.gz").write_bytes(repacked)
    info = store.DatasetInfo("toy", "toy-folder", (
        store.FileInfo("a.txt", len(ALPHA), hashlib.sha256(ALPHA).hexdigest(),
                       f"{base}/corpus.zip", store._zip_member("corpus/a.txt")),
        store.FileInfo("b.gz", 1, "0" * 64, f"{base}/b.gz",
                       source_md5=hashlib.md5(repacked).hexdigest()),
    ))
    monkeypatch.setitem(store.DATASET_INFO, "toy", info)
    monkeypatch.delenv(store.ENV_DOWNLOAD_BASE, raising=False)
    monkeypatch.delenv(store.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(store.ENV_CACHE_DIR, str(tmp_path / "cache"))
    folder = store.locate("toy").path
    assert (folder / "a.txt").read_bytes() == ALPHA
    assert (folder / "b.gz").read_bytes() == repacked
    assert store.locate("toy").origin == "cache"


def test_sst_train_transform_keeps_the_official_lines():
    head = store._first_lines(2)
    assert head(b"one\ntwo\nthree\n") == b"one\ntwo\n"


def test_user_files_resolve_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store.locate("user_files") == store.Location(tmp_path, "cwd")


def test_real_dataset_downloads_from_a_mirror_of_the_data_dir(real_data_dir, server,
                                                               monkeypatch, tmp_path):
    """TREC fetched over HTTP from a copy of shared/data passes the README's sha256."""
    served, base = server
    for name in ("train_5500.label", "TREC_10.label"):
        _write(served / "trec", {name: (real_data_dir / "trec" / name).read_bytes()})
    monkeypatch.delenv(store.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(store.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(store.ENV_DOWNLOAD_BASE, base)
    (task,) = load_tasks("trec")
    assert task.source == str(tmp_path / "cache" / "trec")
    assert len(task.test) == 500
    assert store.verify_dataset("trec") == []


def test_explicit_data_dir_that_does_not_exist_is_an_error(toy, tmp_path, monkeypatch):
    # not a silent fall-back to $TEXTMTL_DATA_DIR or the cache, which hold the data
    _write(store.cache_dir() / "toy-folder", toy)
    with pytest.raises(DataError, match="--data-dir .*typo: no such folder"):
        store.locate("toy", tmp_path / "typo")
