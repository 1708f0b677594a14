"""Real bounce messages for tests: the samples in flufl.bounce's source distribution.

The sdist of flufl.bounce 6.0.0 holds about a hundred bounces collected from real mail
servers (`tests/data/*.txt`) and, in `tests/test_detectors.py`, the table of the addresses
flufl.bounce's detectors must find in each: `DETECTORS = [(detector, filename, addresses,
is_temporary), ...]`. The table is read from that module's syntax tree, never retyped.

The archive is downloaded once from PyPI's file host, checked against its pinned SHA-256
and kept in `<rootdir>/.cache/test-data/`. Anything wrong (no network, another hash, a
changed layout) fails the tests that use it with `SampleDataError`: they never skip.

Use as a pytest plugin: a test taking a `flufl_bounce_sample` argument runs once per sample
file; the session fixture `flufl_bounce_samples` gives all of them.
"""

from __future__ import annotations

import ast
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
import pytest

SDIST_URL = (
    "https://files.pythonhosted.org/packages/36/df/"
    "ef02be153e34314595ccc4d8d903dfa4ab2f23c94481e6e8bbe2e1bf368b/flufl_bounce-6.0.0.tar.gz"
)
SDIST_SHA256 = "a1df16b9d1877ae4536f7d76c00d8421fcefbe694f80f5285d05c45a2547b1bc"
SDIST_NAME = "flufl_bounce-6.0.0.tar.gz"
CACHE_DIR = Path(".cache") / "test-data"  # under pytest's rootdir
DATA_DIR = PurePosixPath("flufl_bounce-6.0.0/tests/data")
TABLE_MODULE = PurePosixPath("flufl_bounce-6.0.0/tests/test_detectors.py")
TABLE_NAME = "DETECTORS"
SAMPLE_ARGUMENT = "flufl_bounce_sample"
DOWNLOAD_TIMEOUT_SECONDS = 60.0


class SampleDataError(RuntimeError):
    """The sample archive could not be had, or is not what it should be; `source` says which."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"flufl.bounce samples: {source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class BounceSample:
    """One sample bounce and the addresses flufl.bounce's own tests expect in it."""

    filename: str
    raw: bytes
    permanent: frozenset[str]  # case-folded: reported as failing for good
    temporary: frozenset[str]  # case-folded: reported as delayed (warnings)

    @property
    def expected(self) -> frozenset[str]:
        return self.permanent | self.temporary


def load_samples(rootdir: Path) -> tuple[BounceSample, ...]:
    """Every sample of the (downloaded, verified, cached) sdist, by file name."""
    with tarfile.open(_sdist(rootdir / CACHE_DIR), mode="r:gz") as archive:
        files = _read_members(archive)
    table = _expected_table(files.pop(str(TABLE_MODULE)).decode("utf-8"))
    samples = []
    for path, raw in sorted(files.items()):
        name = PurePosixPath(path).name
        permanent, temporary = table.get(name, (frozenset(), frozenset()))
        samples.append(BounceSample(name, raw, permanent, temporary))
    missing = set(table) - {sample.filename for sample in samples}
    if missing:
        raise SampleDataError(TABLE_MODULE.name, f"names files not in the archive: {missing}")
    return tuple(samples)


def _sdist(cache: Path) -> Path:
    path = cache / SDIST_NAME
    if path.is_file() and _sha256(path.read_bytes()) == SDIST_SHA256:
        return path
    try:
        response = httpx.get(SDIST_URL, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT_SECONDS)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SampleDataError(SDIST_URL, f"download failed: {exc}") from exc
    digest = _sha256(response.content)
    if digest != SDIST_SHA256:
        raise SampleDataError(SDIST_URL, f"SHA-256 is {digest}, expected {SDIST_SHA256}")
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")  # a rename, so a killed run leaves no half file
    partial.write_bytes(response.content)
    partial.replace(path)
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_members(archive: tarfile.TarFile) -> dict[str, bytes]:
    """The sample files and the table module, read in memory (no path of the archive is
    ever written to disk)."""
    files: dict[str, bytes] = {}
    for member in archive.getmembers():
        path = PurePosixPath(member.name)
        wanted = path == TABLE_MODULE or (path.parent == DATA_DIR and path.suffix == ".txt")
        extracted = archive.extractfile(member) if wanted and member.isfile() else None
        if extracted is not None:
            files[member.name] = extracted.read()
    if str(TABLE_MODULE) not in files:
        raise SampleDataError(SDIST_NAME, f"has no {TABLE_MODULE}")
    return files


def _expected_table(source: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """file name -> (permanent, temporary) addresses, merged over the table's rows.

    A file can have several rows (groupwise_02.txt: nothing for the GroupWise detector, one
    address for the Exchange one); what any detector must find is expected.
    """
    expected: dict[str, tuple[set[str], set[str]]] = {}
    for _detector, filename, addresses, is_temporary in _table_rows(source):
        permanent, temporary = expected.setdefault(filename, (set(), set()))
        (temporary if is_temporary else permanent).update(
            address.decode("ascii").casefold() for address in addresses
        )
    return {name: (frozenset(p), frozenset(t)) for name, (p, t) in expected.items()}


def _table_rows(source: str) -> list[tuple[str, str, list[bytes], bool]]:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == TABLE_NAME for target in node.targets
        ):
            rows = ast.literal_eval(node.value)
            if isinstance(rows, list) and all(_is_row(row) for row in rows):
                return rows
            raise SampleDataError(TABLE_MODULE.name, f"{TABLE_NAME} has an unknown shape")
    raise SampleDataError(TABLE_MODULE.name, f"defines no {TABLE_NAME}")


def _is_row(row: object) -> bool:
    return (
        isinstance(row, tuple)
        and len(row) == 4
        and isinstance(row[0], str)
        and isinstance(row[1], str)
        and isinstance(row[2], list)
        and all(isinstance(address, bytes) for address in row[2])
        and isinstance(row[3], bool)
    )


_loaded: dict[Path, tuple[BounceSample, ...]] = {}


def _samples_for(config: pytest.Config) -> tuple[BounceSample, ...]:
    # Collection (parametrizing) and the session fixture share one download and parse.
    root = config.rootpath
    if root not in _loaded:
        _loaded[root] = load_samples(root)
    return _loaded[root]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per sample file for every test taking `flufl_bounce_sample`."""
    if SAMPLE_ARGUMENT in metafunc.fixturenames:
        samples = _samples_for(metafunc.config)
        metafunc.parametrize(SAMPLE_ARGUMENT, samples, ids=[sample.filename for sample in samples])


@pytest.fixture(scope="session")
def flufl_bounce_samples(pytestconfig: pytest.Config) -> tuple[BounceSample, ...]:
    """All flufl.bounce sample bounces with the addresses expected in each."""
    return _samples_for(pytestconfig)
