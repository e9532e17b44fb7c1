"""Calibration that cannot be too thin by accident: augmentation by default, warnings for thin sets (no TensorFlow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_classifier.convert.calibration import build_samples, class_of, is_flat, is_greyscale, preprocess, sample_warnings
from edge_classifier.spec import ModelSpec

FLOAT_SPEC = ModelSpec(
    input_size=(96, 96),
    input_dtype="float32",
    input_scale=0.0,
    input_zero_point=0,
    mean=(127.5,) * 3,
    std=(127.5,) * 3,
    num_outputs=1000,
)
PHOTOS = ["cat.bmp", "parrot.jpg", "bird.bmp"]


def test_a_small_folder_is_augmented_by_default(coral: Path) -> None:
    images = [coral / p for p in PHOTOS]
    s = build_samples(images, FLOAT_SPEC, 10, progress=False)
    assert s.samples.shape == (10, 96, 96, 3) and s.augmented == 7
    assert any("only 3 calibration image(s) (7 of the 10 samples are random crops/flips" in w for w in s.warnings)
    # The first samples are the photos themselves, framed exactly as the runtime frames them.
    np.testing.assert_allclose(s.samples[0], preprocess(np.asarray(Image.open(coral / "cat.bmp").convert("RGB")), FLOAT_SPEC))
    plain = build_samples(images, FLOAT_SPEC, 10, augment_small=False, progress=False)
    assert plain.samples.shape[0] == 3 and plain.augmented == 0


def test_enough_photos_are_not_augmented(coral: Path) -> None:
    images = [coral / p for p in PHOTOS]
    s = build_samples(images, FLOAT_SPEC, 2, progress=False)
    assert s.samples.shape[0] == 2 and s.augmented == 0


def test_greyscale_and_texture_sets_are_warned_about(coral: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey, noise = tmp_path / "grey", tmp_path / "noise"
    grey.mkdir()
    noise.mkdir()
    for i, p in enumerate(PHOTOS):
        Image.open(coral / p).convert("L").save(grey / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(noise / f"{i}.png")
    g = build_samples(sorted(grey.iterdir()), FLOAT_SPEC, 3, progress=False)
    assert any("3 of 3 calibration images are greyscale" in w for w in g.warnings)
    n = build_samples(sorted(noise.iterdir()), FLOAT_SPEC, 3, progress=False)
    assert any("look flat or like textures" in w for w in n.warnings)
    photos = build_samples([coral / p for p in PHOTOS], FLOAT_SPEC, 3, progress=False)
    assert not any("greyscale" in w or "textures" in w for w in photos.warnings)


def test_the_detectors() -> None:
    checker = (np.indices((200, 200)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert is_flat(np.repeat(checker[..., None], 3, axis=2))
    assert is_flat(np.full((50, 50, 3), 90, np.uint8))
    gradient = np.repeat(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], 200, axis=0).repeat(3, axis=2)
    assert not is_flat(gradient) and is_greyscale(gradient)
    colour = gradient.copy()
    colour[..., 0] = 255 - colour[..., 0]
    assert not is_greyscale(colour)
    assert sample_warnings(500, 0, 0, 300, 0) == []


def test_validation_folders_resolve_like_evaluate(coral: Path, tmp_path: Path) -> None:
    labels = tuple(Path(__file__).resolve().parents[1].joinpath("models", "imagenet_labels.txt").read_text().splitlines())
    for folder in ("macaws", "n02124075", "garden"):
        (tmp_path / folder).mkdir()
        shutil.copy(coral / "parrot.jpg", tmp_path / folder / "x.jpg")
    assert class_of(tmp_path / "macaws" / "x.jpg", tmp_path, labels, 1000) == 88
    assert class_of(tmp_path / "n02124075" / "x.jpg", tmp_path, labels, 1000) == 285
    assert class_of(tmp_path / "garden" / "x.jpg", tmp_path, labels, 1000) is None  # a calibration folder's own grouping


@pytest.mark.parametrize("count", [0, -3])
def test_num_calib_must_be_positive(coral: Path, count: int) -> None:
    from edge_classifier.errors import CalibrationError

    with pytest.raises(CalibrationError, match="--num-calib"):
        build_samples([coral / "cat.bmp"], FLOAT_SPEC, count, progress=False)
