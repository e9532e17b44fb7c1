"""Temporal smoothing: the EMA and the hysteresis events, on score sequences."""

from __future__ import annotations

import numpy as np
import pytest

from edge_classifier.errors import ConfigError
from edge_classifier.smoothing import Hysteresis, Smoother, ema


def scores_for(leader: int, n: int = 10, level: float = 0.7, rng: np.random.Generator | None = None) -> np.ndarray:
    s = np.full(n, (1 - level) / (n - 1), np.float32)
    s[leader] = level
    if rng is not None:
        s = np.clip(s + rng.normal(0, 0.05, n).astype(np.float32), 0, 1)
    return s


def test_ema_starts_with_the_first_frame_then_weights_the_past() -> None:
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    first = ema(None, a, 0.75)
    assert np.array_equal(first, a) and first is not a
    np.testing.assert_allclose(ema(first, b, 0.75), [0.75, 0.25])
    np.testing.assert_allclose(ema(first, b, 0.0), b)


def test_hysteresis_confirms_after_n_frames_and_ignores_blips() -> None:
    h = Hysteresis(frames=3)
    seq = [5, 5, 5, 7, 5, 7, 7, 7, 7, None, 7]
    changes = [(i, c) for i, c in enumerate(h.update(x) for x in seq) if c is not None]
    assert changes == [(2, (None, 5)), (7, (5, 7))]
    assert h.current == 7


def test_smoother_fires_once_per_change_despite_noise() -> None:
    rng = np.random.default_rng(0)
    sm = Smoother(lambda i: f"class{i}", smoothing=0.6, hysteresis=3)
    events = []
    for i in range(90):
        leader = 2 if i < 30 else 4 if i < 60 else 2
        # every 7th frame a spurious leader, as a camera glitch would give
        frame = scores_for(9 if i % 7 == 3 else leader, rng=rng)
        _, ev = sm.update(frame, i, i / 30)
        if ev is not None:
            events.append(ev)
    assert [(e.previous_label, e.label) for e in events] == [(None, "class2"), ("class2", "class4"), ("class4", "class2")]
    assert 30 < events[1].frame_index < 40 and 60 < events[2].frame_index < 70
    assert events[1].previous_id == 2 and events[1].id == 4 and 0 < events[1].score <= 1


def test_raw_flicker_without_smoothing_would_fire_more() -> None:
    # Alternating leaders: raw labels flip every frame; with hysteresis no change is confirmed.
    sm = Smoother(str, smoothing=0.0, hysteresis=2)
    events = [sm.update(scores_for(1 + i % 2), i, 0.0)[1] for i in range(20)]
    assert [e for e in events if e is not None] == []
    assert sm.label is None


def test_min_score_suppresses_weak_labels() -> None:
    sm = Smoother(str, smoothing=0.5, hysteresis=1, min_score=0.5)
    assert sm.update(scores_for(3, level=0.3), 0, 0.0)[1] is None
    ev = sm.update(scores_for(3, level=0.95), 1, 0.0)[1]
    assert ev is not None and ev.id == 3 and ev.score >= 0.5


def test_reset_forgets() -> None:
    sm = Smoother(str, hysteresis=1)
    sm.update(scores_for(1), 0, 0.0)
    sm.reset()
    assert sm.scores is None and sm.label is None


@pytest.mark.parametrize(
    ("smoothing", "hysteresis", "named"), [(1.0, 3, "smoothing=1.0"), (-0.1, 3, "smoothing=-0.1"), (0.5, 0, "hysteresis=0")]
)
def test_bad_parameters(smoothing: float, hysteresis: int, named: str) -> None:
    # The package's own error (it used to be a bare ValueError): the value, the rule and the fix.
    with pytest.raises(ConfigError, match=f"^{named}: is .*\n  fix: use ") as err:
        Smoother(str, smoothing=smoothing, hysteresis=hysteresis)
    assert not isinstance(err.value, ValueError)
