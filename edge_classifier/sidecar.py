"""Labels and a spec for model files that cannot carry the SDK's own: a sidecar beside them.

A ``.tflite`` carries its labels and spec in an appended archive (:mod:`edge_classifier.tflite_file`). A Hailo
``.hef`` or an IMX500 ``.rpk`` is a vendor format the SDK does not write, so the same two files sit beside it:

- ``<stem>.json``: the spec fields the converter embeds (``edge_classifier_spec.json``'s schema: ``name``,
  ``resize``, ``crop_fraction``, ``color_order``, ``label_offset``, ``output_kind``, ...), optionally ``labels``
  (a list) and ``hailo_arch`` (the chip a ``.hef`` was compiled for, when its name does not say);
- ``<stem>_labels.txt`` or ``<stem>.labels.txt``, else ``labels.txt`` in the same folder (what
  ``edge-convert convert --target imx500`` writes beside ``packerOut.zip``), one label per line.

:func:`sidecar_files` returns them under the names the spec builder reads (``edge_classifier_spec.json``,
``labels.txt``), so a ``.hef`` gets its ModelSpec the way a ``.tflite`` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import LabelsError, SpecError

SPEC_NAME = "edge_classifier_spec.json"  # the spec builder's name for it (edge_classifier.spec.SPEC_FILE)
LABELS_NAME = "labels.txt"  # the spec builder's name for embedded labels (edge_classifier.spec.LABELS_FILE)


def spec_path(model: str | Path) -> Path:
    """The sidecar spec of ``model``: ``<stem>.json`` beside it."""
    p = Path(model)
    return p.with_name(p.stem + ".json")


def labels_path(model: str | Path) -> Path | None:
    """The sidecar labels file of ``model``, or None when there is none."""
    p = Path(model)
    for candidate in (p.with_name(p.stem + "_labels.txt"), p.with_name(p.stem + ".labels.txt"), p.with_name(LABELS_NAME)):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar_spec(model: str | Path) -> dict[str, Any]:
    """The sidecar spec of ``model`` as a dict (empty when there is none).

    Raises:
        SpecError: the file exists but is not a JSON object.
    """
    path = spec_path(model)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(
            str(path), f"is not a readable JSON file ({exc})", "fix or delete the sidecar spec beside the model"
        ) from exc
    if not isinstance(data, dict):
        raise SpecError(
            str(path), f"holds a {type(data).__name__}, not a JSON object", 'write an object such as {"resize": "stretch"}'
        )
    return data


def sidecar_files(model: str | Path, *, drop: tuple[str, ...] = ()) -> tuple[dict[str, bytes], dict[str, str]]:
    """The sidecar files of ``model`` under the names the spec builder reads, and where each came from.

    Args:
        model: the model file.
        drop: spec keys to leave out (a ``.hef`` takes raw pixels, so ``mean``/``std`` would mislead it).

    Returns:
        (``{"edge_classifier_spec.json": ..., "labels.txt": ...}``, ``{name: source path}``); both empty without sidecars.

    Raises:
        SpecError: a sidecar spec that is not a JSON object.
        LabelsError: a labels file that cannot be read, or ``labels`` in the spec that is not a list of strings.
    """
    files: dict[str, bytes] = {}
    sources: dict[str, str] = {}
    spec = read_sidecar_spec(model)
    labels = spec.pop("labels", None)
    for key in drop:
        spec.pop(key, None)
    if spec:
        files[SPEC_NAME] = json.dumps(spec).encode()
        sources[SPEC_NAME] = str(spec_path(model))
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise LabelsError(str(spec_path(model)), '"labels" is not a list of strings', 'write "labels": ["cat", "dog", ...]')
        files[LABELS_NAME] = "\n".join(labels).encode()
        sources[LABELS_NAME] = str(spec_path(model))
    else:
        found = labels_path(model)
        if found is not None:
            try:
                files[LABELS_NAME] = found.read_bytes()
            except OSError as exc:
                raise LabelsError(str(found), f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from exc
            sources[LABELS_NAME] = str(found)
    return files, sources
