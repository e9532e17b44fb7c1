"""Named states: groups of labels reported as one answer, with ``unknown`` below their thresholds.

A camera on a bird feeder does not care whether the model says "chickadee" or "house finch": the spot is in the
state ``bird``. A state is a named group of labels; its score is the sum of its labels' probabilities (so a bird the
model is unsure about, split between three finches, still scores high as a bird), and the answer is the best state
that passes its threshold, or ``unknown`` when none does. Without named states, each label is its own state.

For ImageNet models (1000 classes in the standard order), the names in :data:`BUILTIN_GROUPS` (``dog``, ``cat``,
``bird``, ``vehicle``, ...) stand for whole WordNet subtrees. The WordNet hypernym tree is not shipped, so the groups
are explicit class-id sets, checked against the label names by the tests.

Pure: numpy only; the loop's :class:`~edge_classifier.smoothing.StateSmoother` smooths and confirms the answers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["BUILTIN_GROUPS", "UNKNOWN", "StateSet", "compile_states", "is_imagenet", "label_names"]

#: The state of a region whose best state is below its threshold (reserved: no state may be called this).
UNKNOWN = "unknown"


def _span(first: int, last: int) -> frozenset[int]:
    return frozenset(range(first, last + 1))


_CAR = frozenset({407, 436, 468, 511, 609, 627, 656, 661, 751, 817})  # ambulance ... sports car (WordNet "car")
# fire engine, garbage truck, moving van, pickup, police van, tow truck, trailer truck
_TRUCK = frozenset({555, 569, 675, 717, 734, 864, 867})
_BUS = frozenset({654, 779, 874})  # minibus, school bus, trolleybus
_BIKE = frozenset({444, 665, 670, 671})  # tandem, moped, motor scooter, mountain bike
_BOAT = frozenset({403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914})  # carrier ... yawl
_AIRCRAFT = frozenset({404, 405, 895})  # airliner, airship, warplane
_TRAIN = frozenset({466, 547, 565, 705, 820, 829})  # bullet train, locomotives, freight/passenger car, streetcar
# Other transport a driveway or street camera calls a vehicle: amphibian, bobsled, dogsled, forklift, go-kart,
# golfcart, half track, harvester, horse cart, rickshaw, oxcart, RV, snowmobile, snowplow, space shuttle, tank,
# thresher, tractor, tricycle, unicycle. Left out on purpose: wheelbarrow, shopping cart, mobile home (a house).
_OTHER_VEHICLES = frozenset({408, 450, 537, 561, 573, 575, 586, 595, 603, 612, 690, 757, 802, 803, 812, 847, 856, 866, 870, 880})

#: ImageNet-1k class ids (0..999, background removed) of each built-in group, by WordNet subtree.
BUILTIN_GROUPS: Mapping[str, frozenset[int]] = {
    "dog": _span(151, 268),  # Chihuahua ... Mexican hairless: the 118 breeds (wolves and foxes are not dogs)
    "cat": _span(281, 285),  # domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat
    "wild_cat": _span(286, 293),  # cougar, lynx and the big cats (leopard ... cheetah)
    # cock ... great grey owl; black grouse ... black swan; white stork ... albatross
    "bird": _span(7, 24) | _span(80, 100) | _span(127, 146),
    "fish": _span(0, 6) | _span(389, 397),  # tench ... stingray, barracouta ... puffer
    "insect": _span(300, 326),  # beetles, flies, bees, ants, grasshoppers ... butterflies
    "car": _CAR,
    "truck": _TRUCK,
    "bus": _BUS,
    "bike": _BIKE,
    "boat": _BOAT,
    "aircraft": _AIRCRAFT,
    "train": _TRAIN,
    "vehicle": _CAR | _TRUCK | _BUS | _BIKE | _BOAT | _AIRCRAFT | _TRAIN | _OTHER_VEHICLES,
}

# A model is taken for ImageNet-1k (so the groups' ids mean what they say) when these ids carry these names.
_IMAGENET_ANCHORS = {0: "tench", 151: "chihuahua", 285: "egyptian cat", 817: "sports car", 999: "toilet tissue"}


def label_names(label: str) -> set[str]:
    """The names a label answers to, lower-cased: the whole label and each comma-separated synonym.

    ImageNet labels list synonyms (``tabby, tabby cat``), so a state may name any of them.
    """
    text = label.strip().lower()
    return {text, *(part.strip() for part in text.split(",") if part.strip())}


def is_imagenet(labels: Sequence[str]) -> bool:
    """Whether ``labels`` are the 1000 ImageNet classes in the standard order (the built-in groups apply)."""
    return len(labels) == 1000 and all(name in label_names(labels[i]) for i, name in _IMAGENET_ANCHORS.items())


@dataclass(frozen=True)
class StateSet:
    """The states of one region, compiled against one model's labels.

    Attributes:
        names: the state names, in declaration order (``unknown`` not included).
        members: the class ids of each state; None when each label is its own state.
        thresholds: the score each state needs to be the answer (one per state; one value for all in label mode).
    """

    names: tuple[str, ...]
    members: tuple[np.ndarray, ...] | None
    thresholds: np.ndarray

    @property
    def per_label(self) -> bool:
        """True when each label is its own state (no named states were given)."""
        return self.members is None

    def scores(self, class_scores: np.ndarray) -> np.ndarray:
        """Each state's score: the sum of its labels' probabilities (the class scores themselves in label mode)."""
        if self.members is None:
            return class_scores
        return np.array([float(class_scores[ids].sum()) for ids in self.members], dtype=np.float32)

    def decide(self, state_scores: np.ndarray) -> int:
        """The index of the best state that reaches its threshold, or -1 (``unknown``) when none does."""
        if self.members is None:
            best = int(np.argmax(state_scores))
            return best if state_scores[best] >= self.thresholds[0] else -1
        passing = np.where(state_scores >= self.thresholds, state_scores, -1.0)
        best = int(np.argmax(passing))
        return best if passing[best] >= 0.0 else -1

    def name(self, index: int) -> str:
        """The name of state ``index``; -1 is ``unknown``."""
        return UNKNOWN if index < 0 else self.names[index]

    def best_class(self, class_scores: np.ndarray, index: int) -> int:
        """The highest-scoring class id inside state ``index`` (the whole ranking for ``unknown`` or label mode)."""
        if self.members is None or index < 0:
            return int(np.argmax(class_scores))
        ids = self.members[index]
        return int(ids[int(np.argmax(class_scores[ids]))])


def _close(word: str, *choices: Iterable[str]) -> str:
    """`` (did you mean 'a', 'b'?)`` from each list of ``choices`` in turn (groups before labels), up to three."""
    near: list[str] = []
    for names in choices:
        near += [n for n in difflib.get_close_matches(word.lower(), list(names), n=3, cutoff=0.6) if n not in near]
    return f" (did you mean {', '.join(repr(n) for n in near[:3])}?)" if near else ""


def _resolve(entry: str, labels: Sequence[str], index: Mapping[str, list[int]], imagenet: bool, where: str) -> list[int]:
    """Class ids for one entry of a state: a label (or a synonym of one), else a built-in group."""
    key = entry.strip().lower()
    if key in index:
        return index[key]
    if key in BUILTIN_GROUPS:
        if not imagenet:
            raise ConfigError(
                f"{where}: {entry!r}",
                "is a built-in ImageNet group, but this model's labels are not the 1000 ImageNet classes",
                "name this model's own labels in the state instead",
            )
        return sorted(BUILTIN_GROUPS[key])
    groups = ", ".join(BUILTIN_GROUPS) if imagenet else "none for this model"
    example = labels[0] if labels else "a label"
    raise ConfigError(
        f"{where}: {entry!r}",
        f"is neither a label of this model nor a built-in group{_close(key, BUILTIN_GROUPS if imagenet else (), index)}",
        f"use labels of the model (e.g. {example.split(',')[0]!r}) or a built-in group ({groups})",
    )


def compile_states(
    states: Mapping[str, Sequence[str]] | None,
    labels: Sequence[str],
    *,
    threshold: float,
    thresholds: Mapping[str, float] | None = None,
    where: str = "states",
) -> StateSet:
    """A :class:`StateSet` for ``labels``.

    Args:
        states: state name -> labels and built-in group names; None makes each label its own state.
        labels: the model's labels (``spec.labels``); a model without labels has ``class <id>`` names.
        threshold: the score a state needs, unless ``thresholds`` names it.
        thresholds: per-state thresholds (keys must be state names; only with named states).
        where: what to name in errors (``region 'door'``).

    Raises:
        ConfigError: an unknown label or group (with close matches), a class claimed by two states, a state
            without labels, a threshold for a state that does not exist.
    """
    per = dict(thresholds or {})
    if states is None:
        if per:
            raise ConfigError(
                f"{where}: thresholds",
                "are given per state, but no states are named",
                "add states = { name = [labels] }, or use threshold alone",
            )
        return StateSet(names=tuple(labels), members=None, thresholds=np.array([threshold], dtype=np.float32))
    index: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        for name in label_names(label):
            index.setdefault(name, []).append(i)
    imagenet = is_imagenet(labels)
    owner: dict[int, str] = {}
    members: list[np.ndarray] = []
    for name, entries in states.items():
        ids: set[int] = set()
        for entry in entries:
            ids.update(_resolve(entry, labels, index, imagenet, f"{where}, state {name!r}"))
        if not ids:
            raise ConfigError(f"{where}, state {name!r}", "names no labels", "list at least one label or group for it")
        for i in sorted(ids):
            if i in owner and owner[i] != name:
                raise ConfigError(
                    f"{where}, state {name!r}",
                    f"claims {labels[i].split(',')[0]!r}, which state {owner[i]!r} already has",
                    "give each label to one state only (a score must not count twice)",
                )
            owner[i] = name
        members.append(np.array(sorted(ids), dtype=np.int64))
    unknown_keys = sorted(set(per) - set(states))
    if unknown_keys:
        raise ConfigError(f"{where}: thresholds.{unknown_keys[0]}", "names no state", f"use one of {', '.join(states)}")
    values = np.array([per.get(name, threshold) for name in states], dtype=np.float32)
    return StateSet(names=tuple(states), members=tuple(members), thresholds=values)
