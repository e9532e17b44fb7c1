"""Shared fixtures: the Coral reference models and photos in ../shared/testdata/coral."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"

# Expected top-1 per photo (ImageNet label, the score from the testdata README for Coral's MobileNetV2 quant
# and for the TF2 post-training-quantized twin).
EXPECTED = {
    "cat.bmp": ("Egyptian cat", 0.75, 0.65),
    "parrot.jpg": ("macaw", 0.99, 0.93),
    "grace_hopper.bmp": ("military uniform", 0.91, 0.80),
    "bird.bmp": ("chickadee", 0.98, 0.73),
    "sunflower.bmp": ("daisy", 0.98, 0.92),
}


@pytest.fixture(scope="session")
def coral() -> Path:
    """The folder of Coral's reference models and photos (CI has it beside the clone)."""
    if not CORAL.is_dir():
        pytest.fail(f"{CORAL} is missing: the tests need ../shared/testdata/coral beside the repository")
    return CORAL


@pytest.fixture(scope="session")
def mnv2(coral: Path) -> Path:
    """Coral's MobileNetV2 1.0 224 quant model (labels embedded)."""
    return coral / "mobilenet_v2_1.0_224_quant.tflite"
