"""The 1000 ImageNet class labels the converter embeds, and how ``models/imagenet_labels.txt`` is made.

Keras downloads its ``imagenet_class_index.json`` on first use, so it is not available offline.
The committed file is regenerated from Coral's ``imagenet_labels.txt`` (google-coral/test_data,
Apache-2.0), dropping its leading "background" line so that line N is class id N of a
1000-output model::

    python -m edge_classifier.convert.imagenet_labels ../shared/testdata/coral/imagenet_labels.txt
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_classifier.errors import LabelsError
from edge_classifier.spec import fit_labels, load_labels

LABELS_PATH = Path(__file__).resolve().parents[1] / "models" / "imagenet_labels.txt"


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet labels, class id order (no background).

    Raises:
        LabelsError: the labels file is missing from this checkout or installation.
    """
    path = LABELS_PATH
    if not path.is_file():
        from importlib import resources

        with contextlib.suppress(ModuleNotFoundError):
            path = Path(str(resources.files("edge_classifier.models") / "imagenet_labels.txt"))
    if not path.is_file():
        raise LabelsError(
            str(LABELS_PATH),
            "the ImageNet labels file is missing",
            "regenerate it: python -m edge_classifier.convert.imagenet_labels SOURCE",
        )
    labels = load_labels(path)
    if len(labels) != 1000:
        raise LabelsError(
            str(path),
            f"has {len(labels)} labels, expected 1000",
            "regenerate it: python -m edge_classifier.convert.imagenet_labels SOURCE",
        )
    return labels


def regenerate(source: str | Path, dest: str | Path = LABELS_PATH) -> Path:
    """Write the 1000 class labels of ``source`` (1000 or 1001 lines) to ``dest``."""
    labels, _offset = fit_labels(load_labels(source), 1001, str(source))
    Path(dest).write_text("\n".join(labels) + "\n", encoding="utf-8")
    return Path(dest)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_classifier.convert.imagenet_labels SOURCE [DEST]``."""
    p = argparse.ArgumentParser(description="Regenerate models/imagenet_labels.txt from a 1001-line ImageNet labels file.")
    p.add_argument("source")
    p.add_argument("dest", nargs="?", default=str(LABELS_PATH))
    args = p.parse_args(argv)
    try:
        print(regenerate(args.source, args.dest))
    except LabelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
