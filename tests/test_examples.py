"""Every script in examples/ runs, as a user would run it, on test data, and exits 0 with the expected output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .clips import write_clip
from .mosquitto import Mosquitto, Subscriber

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TIMEOUT = 120

# Each example and the test that runs it; a new example without a test fails test_every_example_has_a_test.
COVERED = {"classify_image.py", "camera_callback.py", "publish_mqtt.py", "gpio_action.py"}


def _run(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def clip(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cat, parrot, cat: 20 frames each."""
    segments = [(coral / "cat.bmp", 20), (coral / "parrot.jpg", 20), (coral / "cat.bmp", 20)]
    return write_clip(tmp_path_factory.mktemp("clip") / "cat_parrot_cat.avi", segments)


def test_every_example_has_a_test() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == COVERED


def test_classify_image(coral: Path, mnv2: Path) -> None:
    out = _run("classify_image.py", "--source", coral / "parrot.jpg", "--model", mnv2, "--top-k", "3").stdout.splitlines()
    assert len(out) == 3 and out[0].split(None, 1)[1] == "macaw" and float(out[0].split()[0]) > 0.9


def test_classify_image_with_the_bundled_default_model(coral: Path) -> None:
    out = _run("classify_image.py", "--source", coral / "parrot.jpg", "--top-k", "1").stdout.splitlines()
    assert len(out) == 1 and out[0].split(None, 1)[1] == "macaw"


def test_camera_callback_on_a_video(clip: Path, mnv2: Path) -> None:
    out = _run("camera_callback.py", "--source", clip, "--model", mnv2, "--max-frames", "40").stdout
    lines = out.splitlines()
    assert "now Egyptian cat" in lines[0] and "was None" in lines[0]
    assert "now macaw" in lines[1] and "was Egyptian cat" in lines[1]
    assert lines[-1] == "40 frames, 2 label changes"


def test_camera_callback_on_an_image_folder(coral: Path, mnv2: Path) -> None:
    # A glob of the Coral photos (bird, cat, grace_hopper, sunflower .bmp, in sorted order): smoothing and
    # hysteresis (3 frames) mean four different photos in a row announce nothing but the first clear winner.
    out = _run("camera_callback.py", "--source", f"{coral}/*.bmp", "--model", mnv2, "--max-frames", "10").stdout
    assert out.splitlines()[-1].startswith("4 frames, ")


def test_gpio_action_switches_on_and_off(clip: Path, mnv2: Path) -> None:
    out = _run("gpio_action.py", "--label", "Macaw", "--source", clip, "--model", mnv2).stdout
    assert out.splitlines() == ["ON", "OFF"]


def test_gpio_action_unknown_label_is_refused(clip: Path, mnv2: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "gpio_action.py"), "--label", "unicorn", "--source", str(clip), "--model", str(mnv2)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2 and "'unicorn' is not one of the model's labels" in proc.stderr


def test_publish_mqtt(clip: Path, mnv2: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    sub = Subscriber(broker, "cameras/porch/#")
    try:
        out = _run(
            "publish_mqtt.py", "--broker", f"{broker.url}/cameras/porch", "--source", clip, "--model", mnv2, "--max-frames", "40"
        ).stdout
        assert "published 2 event(s) to cameras/porch/event, dropped 0" in out
        assert sub.wait_for(lambda: len(sub.on("cameras/porch/event")) == 2, 10)
        assert [m["label"] for m in sub.on("cameras/porch/event")] == ["Egyptian cat", "macaw"]
        assert sub.on("cameras/porch/status")[-1]["state"] == "offline"
    finally:
        sub.close()
        broker.stop()


def test_the_readme_python_api_example_runs_as_written(tmp_path: Path) -> None:
    # The README's first Python block, as a user would paste it: no camera, no test data, no deprecated name.
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    script = tmp_path / "readme_api.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout.splitlines()
    assert out[0].startswith("ai-edge-litert ") and " on cpu " in out[0]
    assert "espresso espresso" in proc.stdout and "missile missile" in proc.stdout  # the clip's subjects, as printed
    assert "now espresso" in out and "now missile" in out
    assert out[-1].startswith("90 frames, ") and out[-1].endswith(" label changes")
