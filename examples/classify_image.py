#!/usr/bin/env python3
"""Classify one image and print the top classes.

    python examples/classify_image.py --source cat.jpg
    python examples/classify_image.py --source cat.jpg --model mobilenet_v2_1.0_224_quant.tflite --top-k 3

Without --model the model bundled with edge_classifier is used. The Classifier reads the model's
own preprocessing (input size, normalisation, labels) from the file, so there is nothing to set up.
"""

from __future__ import annotations

import argparse
import sys

from edge_classifier import Classifier, EdgeClassifierError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="an image file (jpg, png, bmp, ...)")
    parser.add_argument("--model", help="a .tflite classifier (default: the bundled one)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to print")
    args = parser.parse_args()

    try:
        with Classifier(args.model, top_k=args.top_k) as clf:
            for c in clf.classify(args.source):
                print(f"{c.score:6.3f}  {c.label}")
    except EdgeClassifierError as exc:  # a missing image or model: the message says what to do
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
