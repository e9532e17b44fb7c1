"""scripts/fetch_testdata.py against a local HTTP server holding the same files (no internet here)."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import CORAL, REPO


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_testdata", REPO / "scripts" / "fetch_testdata.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch = _load_script()


@pytest.fixture()
def serve() -> Iterator[functools.partial[str]]:
    """Serve a folder on 127.0.0.1; yields a function folder -> base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield functools.partial(start)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_manifest_matches_the_shared_files(coral: Path) -> None:
    for name, digest in fetch.CORAL_FILES.items():
        assert fetch.sha256((coral / name).read_bytes()) == digest, name


def test_fetches_checks_and_keeps(coral: Path, tmp_path: Path, serve: functools.partial[str]) -> None:
    base = serve(coral)
    dest = tmp_path / "coral"
    fetched = fetch.fetch_coral(dest, base)
    assert sorted(fetched) == sorted([*fetch.CORAL_FILES, fetch.DERIVED])
    for name, digest in fetch.CORAL_FILES.items():
        assert fetch.sha256((dest / name).read_bytes()) == digest
    from PIL import Image

    with Image.open(dest / fetch.DERIVED) as im:
        assert im.size == (1280, 720)
    assert fetch.fetch_coral(dest, base) == []  # a second run downloads nothing


def test_a_tampered_file_is_refused_and_not_written(coral: Path, tmp_path: Path, serve: functools.partial[str]) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in fetch.CORAL_FILES:
        (mirror / name).symlink_to(coral / name)
    (mirror / "cat.bmp").unlink()
    (mirror / "cat.bmp").write_bytes((coral / "cat.bmp").read_bytes()[:-1] + b"\x00")
    dest = tmp_path / "coral"
    with pytest.raises(fetch.FetchError, match="cat.bmp: sha256 .* is not the pinned"):
        fetch.fetch_coral(dest, serve(mirror))
    assert not (dest / "cat.bmp").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(fetch.FetchError, match="cannot download .* internet connection"):
        fetch.fetch_coral(tmp_path, "http://127.0.0.1:9/")


def test_insect_digest_matches_the_shared_set(insects: Path) -> None:
    assert fetch.insects_digest(insects / "train") == (fetch.INSECTS_COUNT, fetch.INSECTS_DIGEST)


def test_conftest_sees_module_paths_into_shared() -> None:
    from tests import conftest

    assert conftest._folder_of(CORAL / "cat.bmp") == CORAL
    assert conftest._folder_of(str(conftest.REFERENCE / "edgetpu")) == conftest.REFERENCE
    assert conftest._folder_of(REPO / "models") is None
