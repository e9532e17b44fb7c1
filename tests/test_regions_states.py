"""Named states: the built-in ImageNet groups checked against the real label names, and how states are scored."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edge_classifier import Classifier
from edge_classifier.errors import ConfigError
from edge_classifier.preprocess import load_image
from edge_classifier.states import BUILTIN_GROUPS, UNKNOWN, compile_states, is_imagenet, label_names


@pytest.fixture(scope="module")
def clf(mnv2: Path) -> Iterator[Classifier]:
    with Classifier(mnv2) as c:
        yield c


@pytest.fixture(scope="module")
def labels(clf: Classifier) -> tuple[str, ...]:
    return clf.spec.labels


def first_names(labels: tuple[str, ...], ids: frozenset[int]) -> set[str]:
    return {labels[i].split(",")[0] for i in ids}


def test_the_model_is_recognised_as_imagenet_and_a_custom_one_is_not(labels: tuple[str, ...]) -> None:
    assert is_imagenet(labels)
    assert not is_imagenet(labels[:999]) and not is_imagenet(("open", "shut") * 500)


def test_small_groups_hold_exactly_these_classes(labels: tuple[str, ...]) -> None:
    expected = {
        "cat": {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"},
        "wild_cat": {"cougar", "lynx", "leopard", "snow leopard", "jaguar", "lion", "tiger", "cheetah"},
        "car": {
            "ambulance", "beach wagon", "cab", "convertible", "jeep", "limousine", "minivan", "Model T", "racer", "sports car"
        },
        "truck": {"fire engine", "garbage truck", "moving van", "pickup", "police van", "tow truck", "trailer truck"},
        "bus": {"minibus", "school bus", "trolleybus"},
        "bike": {"bicycle-built-for-two", "moped", "motor scooter", "mountain bike"},
        "aircraft": {"airliner", "airship", "warplane"},
        "train": {"bullet train", "electric locomotive", "freight car", "passenger car", "steam locomotive", "streetcar"},
        "boat": {
            "aircraft carrier", "canoe", "catamaran", "container ship", "fireboat", "gondola", "lifeboat", "liner",
            "pirate", "schooner", "speedboat", "submarine", "trimaran", "yawl",
        },
    }  # fmt: skip
    for group, names in expected.items():
        assert first_names(labels, BUILTIN_GROUPS[group]) == names, group


def test_large_groups_are_whole_wordnet_spans(labels: tuple[str, ...]) -> None:
    dog = BUILTIN_GROUPS["dog"]
    assert len(dog) == 118 and labels[min(dog)] == "Chihuahua" and labels[max(dog)] == "Mexican hairless"
    assert labels[min(dog) - 1] == "sea lion" and labels[max(dog) + 1].startswith("timber wolf")
    bird = BUILTIN_GROUPS["bird"]
    assert len(bird) == 59
    birds = first_names(labels, bird)
    assert {
        "cock",
        "ostrich",
        "chickadee",
        "great grey owl",
        "black grouse",
        "macaw",
        "black swan",
        "white stork",
        "albatross",
    } <= birds
    # Just outside each span: a fish, a salamander, a centipede, a tusker, a hermit crab, a whale.
    for i in (6, 25, 79, 101, 126, 147):
        assert i not in bird, labels[i]
    fish = first_names(labels, BUILTIN_GROUPS["fish"])
    assert {"tench", "goldfish", "stingray", "eel", "puffer"} <= fish and len(fish) == 16
    insect = BUILTIN_GROUPS["insect"]
    assert labels[min(insect)] == "tiger beetle" and labels[max(insect)].startswith("lycaenid") and len(insect) == 27


def test_group_ids_sit_in_their_wordnet_subtree_by_wnid() -> None:
    wnids = resources.files("edge_classifier.data").joinpath("imagenet_wnids.txt").read_text().split()
    assert len(wnids) == 1000
    # WordNet numbers a subtree's synsets together: the dog breeds run from n02085620 to n02113978, the domestic
    # cats from n02123045 to n02124075; the wolves (n02114367...) come right after the dogs.
    assert all("n02085620" <= wnids[i] <= "n02113978" for i in BUILTIN_GROUPS["dog"])
    assert all("n02123045" <= wnids[i] <= "n02124075" for i in BUILTIN_GROUPS["cat"])
    assert wnids[269] == "n02114367"


def test_vehicle_is_the_union_of_the_transport_groups_and_they_do_not_overlap() -> None:
    parts = ["car", "truck", "bus", "bike", "boat", "aircraft", "train"]
    for i, a in enumerate(parts):
        assert BUILTIN_GROUPS[a] <= BUILTIN_GROUPS["vehicle"], a
        for b in parts[i + 1 :]:
            assert not BUILTIN_GROUPS[a] & BUILTIN_GROUPS[b], (a, b)
    assert 428 not in BUILTIN_GROUPS["vehicle"] and 791 not in BUILTIN_GROUPS["vehicle"]  # wheelbarrow, shopping cart


def test_no_group_name_is_also_a_label_so_a_label_never_hides_a_group(labels: tuple[str, ...]) -> None:
    every_name = set().union(*(label_names(label) for label in labels))
    assert not set(BUILTIN_GROUPS) & every_name


def test_a_state_scores_the_sum_of_its_labels(clf: Classifier, labels: tuple[str, ...], coral: Path) -> None:
    states = compile_states({"bird": ["bird"], "cat": ["cat"]}, labels, threshold=0.5)
    pred = clf.predict(load_image(coral / "bird.bmp"))
    scores = states.scores(pred.scores)
    assert scores[0] == pytest.approx(float(pred.scores[sorted(BUILTIN_GROUPS["bird"])].sum()))
    assert scores[0] >= float(pred.scores[19])  # at least the chickadee itself
    assert states.name(states.decide(scores)) == "bird" and labels[states.best_class(pred.scores, 0)] == "chickadee"
    # A photo of neither is unknown.
    flower = states.scores(clf.predict(load_image(coral / "sunflower.bmp")).scores)
    assert states.decide(flower) == -1 and states.name(-1) == UNKNOWN


def test_the_best_state_passing_its_own_threshold_wins() -> None:
    labels = ("open", "shut", "ajar")
    states = compile_states({"open": ["open"], "shut": ["shut"]}, labels, threshold=0.5, thresholds={"shut": 0.8, "open": 0.3})
    assert states.decide(np.array([0.35, 0.5], np.float32)) == 0  # shut leads but misses its 0.8; open passes 0.3
    assert states.decide(np.array([0.1, 0.85], np.float32)) == 1
    assert states.decide(np.array([0.2, 0.7], np.float32)) == -1
    per_label = compile_states(None, labels, threshold=0.6)
    assert per_label.per_label and per_label.names == labels
    assert (
        per_label.decide(np.array([0.1, 0.7, 0.2], np.float32)) == 1
        and per_label.decide(np.array([0.3, 0.4, 0.3], np.float32)) == -1
    )


def test_synonyms_match_and_a_repeated_label_counts_all_its_classes(labels: tuple[str, ...]) -> None:
    states = compile_states({"pet": ["tabby cat", "Siamese"], "machine": ["crane"]}, labels, threshold=0.5)
    assert states.members is not None
    assert states.members[0].tolist() == [281, 284]
    assert states.members[1].tolist() == [134, 517]  # ImageNet has two cranes: the bird and the machine


@pytest.mark.parametrize(
    ("states", "labels_of", "words"),
    [
        ({"a": ["dog"]}, "custom", "not the 1000 ImageNet classes"),
        ({"a": ["cat"], "b": ["Egyptian cat"]}, "imagenet", "which state 'a' already has"),
        ({"a": ["kitten"]}, "imagenet", "is neither a label of this model nor a built-in group"),
        ({"a": ["shutt"]}, "custom", "did you mean 'shut'"),
    ],
)
def test_bad_states_are_one_config_error(
    states: dict[str, list[str]], labels_of: str, words: str, labels: tuple[str, ...]
) -> None:
    names = labels if labels_of == "imagenet" else ("open", "shut")
    with pytest.raises(ConfigError) as e:
        compile_states(states, names, threshold=0.5, where="region 'door'")
    assert words in str(e.value) and str(e.value).startswith("region 'door', state ")


def test_custom_model_labels_are_the_states() -> None:
    states = compile_states({"opened": ["open"], "closed": ["shut"]}, ("open", "shut"), threshold=0.5)
    assert states.decide(np.array([0.2, 0.8], np.float32)) == 1 and states.name(1) == "closed"
