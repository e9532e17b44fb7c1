"""`evaluate`: label resolution, the metrics, a labelled folder built from the shared photos, and its bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_classifier import Classifier, SpecOverrides
from edge_classifier.errors import DatasetError
from edge_classifier.evaluate import (
    Framing,
    LabelResolver,
    evaluate,
    imagenet_wnids,
    most_confused,
    per_class_accuracy,
    read_dataset,
    topk_hits,
)

LABELS = tuple(Path(__file__).resolve().parents[1].joinpath("models", "imagenet_labels.txt").read_text().splitlines())


@pytest.fixture(scope="module")
def resolver() -> LabelResolver:
    return LabelResolver(LABELS, 1000)


@pytest.mark.parametrize(
    ("name", "cid"),
    [
        ("Egyptian cat", 285),
        ("egyptian_cat", 285),
        ("285", 285),
        ("n02124075", 285),
        ("ant", 310),
        ("emmet", 310),  # a synonym in "ant, emmet, pismire"
        ("ants", 310),  # plural folder names
        ("bees", 309),
        ("n01440764", 0),
        ("toilet tissue", 999),
    ],
)
def test_names_resolve(resolver: LabelResolver, name: str, cid: int) -> None:
    assert resolver.resolve(name) == cid


def test_the_wnid_table_is_imagenets() -> None:
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 == len(set(wnids)) and list(wnids) == sorted(wnids)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("egyptain cat", "did you mean 'egyptian cat'"),
        ("crane", "names more than one class: 134 .*517"),
        ("1000", "out of range"),
        ("n99999999", "not one of ImageNet's 1000 WordNet ids"),
        ("zzzz", "is not a label of this model"),
    ],
)
def test_bad_names_are_one_clear_error(resolver: LabelResolver, name: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        resolver.resolve(name, "photos/x")


def test_wnids_need_an_imagenet_model() -> None:
    with pytest.raises(DatasetError, match="model has 2 classes"):
        LabelResolver(("ants", "bees"), 2).resolve("n02219486")
    assert LabelResolver(("ants", "bees"), 2).resolve("bees") == 1


def test_metrics_on_known_arrays() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    truth = np.array([1, 1, 0, 2])
    assert topk_hits(scores, truth, 1).tolist() == [True, False, False, False]
    assert topk_hits(scores, truth, 2).tolist() == [True, True, False, False]
    assert topk_hits(scores, truth, 5).all()
    pred = scores.argmax(axis=1)
    assert per_class_accuracy(pred, truth) == {0: (0, 1), 1: (1, 2), 2: (0, 1)}
    assert most_confused(pred, truth) == [(0, 2, 1), (1, 0, 1), (2, 0, 1)]
    assert most_confused(np.array([0, 0, 0]), np.array([1, 1, 2])) == [(1, 0, 2), (2, 0, 1)]


def _labelled(coral: Path, root: Path) -> Path:
    """Folders named the three ways: by WordNet id, by label, by class id."""
    for folder, photos in {
        "n02124075": ["cat.bmp"],
        "macaw": ["parrot.jpg"],
        "19": ["bird.bmp"],
        "daisy": ["sunflower.bmp"],
    }.items():
        (root / folder).mkdir(parents=True)
        for p in photos:
            shutil.copy(coral / p, root / folder / p)
    return root


def _run(model: Path, data: Path, framings: list[str]) -> list:  # type: ignore[type-arg]
    with Classifier(model) as clf:
        resolver = LabelResolver(clf.spec.labels, clf.spec.num_classes)
    dataset = read_dataset(data, resolver)

    def open_for(f: Framing) -> Classifier:
        return Classifier(model, overrides=SpecOverrides(resize=f.resize, crop_fraction=f.crop_fraction), resample=f.resample)

    return evaluate(open_for, dataset, [Framing.parse(t) for t in framings])


def test_a_labelled_folder_of_the_shared_photos(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    data = _labelled(coral, tmp_path / "photos")
    results = _run(mnv2, data, ["model", "stretch", "center_crop:1.0/fast"])
    assert [r.framing for r in results] == [
        "center_crop(0.875), Lanczos",
        "stretch, Lanczos",
        "center_crop(1), fast box+bilinear",
    ]
    for r in results:
        assert r.images == 4 and r.top1 == 1.0 and r.top5 == 1.0 and r.unreadable == 0 and not r.confused
        assert r.per_class["Egyptian cat"] == {"id": 285, "correct": 1, "total": 1, "accuracy": 1.0}
        assert r.images_per_second > 0


def test_a_mistake_shows_in_per_class_and_confusions(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    data = tmp_path / "photos"
    (data / "tabby").mkdir(parents=True)
    shutil.copy(coral / "cat.bmp", data / "tabby" / "cat.bmp")
    (r,) = _run(mnv2, data, ["model"])
    assert r.top1 == 0.0 and r.top5 == 1.0  # tabby is the runner-up
    assert r.confused == [{"true": "tabby, tabby cat", "predicted": "Egyptian cat", "count": 1}]


def test_bad_inputs(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    res = LabelResolver(LABELS, 1000)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no labelled image"):
        read_dataset(empty, res)
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nope", res)
    # A class folder with no images is reported, not fatal.
    data = _labelled(coral, tmp_path / "photos")
    (data / "goldfish").mkdir()
    assert read_dataset(data, res).empty_classes == ["goldfish"]
    # An unknown label is fatal: every photo of that class would be scored wrong.
    (data / "kitteh").mkdir()
    with pytest.raises(DatasetError, match="'kitteh' is not a label"):
        read_dataset(data, res)
    (data / "kitteh").rmdir()
    # A corrupt image is skipped, counted and named.
    (data / "macaw" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    seen: list[Path] = []
    with Classifier(mnv2) as clf:
        results = evaluate(lambda f: Classifier(mnv2), read_dataset(data, res), on_unreadable=lambda p, e: seen.append(p))
        del clf
    assert results[0].unreadable == 1 and results[0].images == 4 and seen == [data / "macaw" / "broken.jpg"]


def test_csv_rows_and_a_missing_file(coral: Path, tmp_path: Path) -> None:
    res = LabelResolver(LABELS, 1000)
    csv = tmp_path / "set.csv"
    csv.write_text(
        f"path,label\n{coral / 'cat.bmp'},Egyptian cat\n{coral / 'parrot.jpg'},n01818515\nmissing.jpg,macaw\n", encoding="utf-8"
    )
    data = read_dataset(csv, res)
    assert [i.class_id for i in data.items] == [285, 88] and data.missing == [str(tmp_path / "missing.jpg")]
    csv.write_text("a.jpg,cat,extra\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"set.csv:1: has 3 fields"):
        read_dataset(csv, res)
    csv.write_text("missing.jpg,macaw\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="none of which exists"):
        read_dataset(csv, res)
    csv.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DatasetError, match="cannot be read as a UTF-8 CSV"):
        read_dataset(csv, res)


@pytest.mark.parametrize("bad", ["zoom", "center_crop:2", "center_crop:x", "stretch/nearest"])
def test_bad_framings(bad: str) -> None:
    with pytest.raises(DatasetError, match="framing"):
        Framing.parse(bad)


def test_the_cli_prints_a_report_and_json(coral: Path, mnv2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_classifier.cli import main

    data = _labelled(coral, tmp_path / "photos")
    (data / "macaw" / "broken.jpg").write_bytes(b"GIF89a broken")
    assert main(["evaluate", str(data), "--model", str(mnv2), "--compare", "model", "stretch", "-v"]) == 0
    out, err = capsys.readouterr()
    assert "4 images, 1 unreadable" in out and "center_crop(0.875), Lanczos  100.0%" in out and "stretch, Lanczos" in out
    assert "broken.jpg" in err
    assert main(["evaluate", str(data), "--model", str(mnv2), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["top1"] == 1.0 and doc["results"][0]["unreadable"] == 1
    assert main(["evaluate", str(tmp_path / "nowhere"), "--model", str(mnv2)]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["mobilenet_v2_1.0_224_quant.tflite"])
def test_insects_are_imagenet_classes_and_crop_beats_stretch(insects: Path, coral: Path, model: str) -> None:
    # ants and bees are ImageNet classes 310 and 309: the default framing must beat stretching the photos, as it does
    # on ImageNet. Measured on all 245 photos: 87.8% centre crop vs 75.5% stretch; a 60-photo slice keeps this quick.
    slice_ = insects / "train"
    with Classifier(coral / model) as clf:
        res = LabelResolver(clf.spec.labels, clf.spec.num_classes)
    data = read_dataset(slice_, res)
    data.items = data.items[::4]
    crop, stretch = evaluate(
        lambda f: Classifier(coral / model, overrides=SpecOverrides(resize=f.resize, crop_fraction=f.crop_fraction)),
        data,
        [Framing.parse("model"), Framing.parse("stretch")],
    )
    assert crop.top1 >= 0.8 and crop.top1 > stretch.top1 + 0.05, (crop.top1, stretch.top1)
