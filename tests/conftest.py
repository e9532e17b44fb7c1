"""Shared fixtures: the Coral reference models and photos in ../shared/testdata/coral, and the rule for tests that need them.

A test needs ``../shared`` when it asks for a fixture below (``coral``, ``mnv2``, ``insects``, ``reference``) or when its
module holds a path inside ``../shared`` (``CORAL = REPO.parent / "shared" / ...``). Where that folder is absent (a clone
from the project's public home), such a test is skipped with one reason that says how to get the data; under ``CI=true``
it fails instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORAL = SHARED / "testdata" / "coral"
INSECTS = SHARED / "testdata" / "insects"
REFERENCE = SHARED / "reference"

# Expected top-1 per photo (ImageNet label, the score from the testdata README for Coral's MobileNetV2 quant
# and for the TF2 post-training-quantized twin).
EXPECTED = {
    "cat.bmp": ("Egyptian cat", 0.75, 0.65),
    "parrot.jpg": ("macaw", 0.99, 0.93),
    "grace_hopper.bmp": ("military uniform", 0.91, 0.80),
    "bird.bmp": ("chickadee", 0.98, 0.73),
    "sunflower.bmp": ("daisy", 0.98, 0.92),
}

_FIXTURE_FOLDERS = {"coral": CORAL, "mnv2": CORAL, "insects": INSECTS, "reference": REFERENCE}
# How to get each folder: the Coral files and the insect photos are public; the reference texts are the project's own.
_HOW = {
    CORAL: "python scripts/fetch_testdata.py fetches them from Coral's public test_data repository (pinned, sha256-checked)",
    INSECTS: "python scripts/fetch_testdata.py --insects fetches the photo set (sha256-checked)",
    REFERENCE: "they are the project's own captures (compiler logs, error texts), present in the project's CI only",
}


def under_ci() -> bool:
    """Whether this run is CI's (``CI=true``): there, missing test data is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _folder_of(value: Any) -> Path | None:
    """The ../shared folder (coral, insects or reference) a module-level path points into, if any."""
    if isinstance(value, (str, Path)):
        text = str(value)
        shared = str(SHARED)
        if text == shared or text.startswith(shared + os.sep):
            for folder in (CORAL, INSECTS, REFERENCE):
                if text == str(folder) or text.startswith(str(folder) + os.sep):
                    return folder
            return SHARED
    return None


def needed_folders(item: pytest.Item) -> set[Path]:
    """The ../shared folders a collected test reads: from its fixtures and its module's paths."""
    folders = {_FIXTURE_FOLDERS[name] for name in getattr(item, "fixturenames", ()) if name in _FIXTURE_FOLDERS}
    module = getattr(item, "module", None)
    if module is not None:
        for value in vars(module).values():
            folder = _folder_of(value)
            if folder is not None:
                folders.add(folder)
    return folders


def missing_reason(folder: Path) -> str:
    """One sentence: which folder is missing and how to get it."""
    return f"{folder} is absent: {_HOW.get(folder, 'the tests need ../shared beside the repository')}"


def require(folder: Path) -> Path:
    """``folder`` when it exists; else skip (or, under CI, fail) with the one reason."""
    if not folder.is_dir():
        if under_ci():
            pytest.fail(f"CI needs the test data: {missing_reason(folder)}", pytrace=False)
        pytest.skip(missing_reason(folder))
    return folder


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or fail under CI) a test whose ../shared data is absent, before its fixtures touch the files."""
    for folder in sorted(needed_folders(item)):
        require(folder)


@pytest.fixture(scope="session")
def coral() -> Path:
    """The folder of Coral's reference models and photos (CI has it beside the clone)."""
    return require(CORAL)


@pytest.fixture(scope="session")
def mnv2(coral: Path) -> Path:
    """Coral's MobileNetV2 1.0 224 quant model (labels embedded)."""
    return coral / "mobilenet_v2_1.0_224_quant.tflite"


@pytest.fixture(scope="session")
def insects() -> Path:
    """The labelled ants/bees photos for training (``train/ants``, ``train/bees``)."""
    return require(INSECTS)


@pytest.fixture(scope="session")
def reference() -> Path:
    """The project's reference texts: the Edge TPU op table, compiler logs, camera and Coral error texts."""
    return require(REFERENCE)


@pytest.fixture(scope="module")
def clf(mnv2: Path) -> Iterator[Any]:
    """Coral's MobileNetV2 as a Classifier, one per test module (a module may define its own ``clf``)."""
    from edge_classifier import Classifier

    with Classifier(mnv2) as c:
        yield c


@pytest.fixture(scope="module")
def scene(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-tile scene clip of the region tests (see :func:`tests.region_clips.write_scene`)."""
    from tests.region_clips import write_scene

    return write_scene(tmp_path_factory.mktemp("scene") / "scene.avi", coral)
