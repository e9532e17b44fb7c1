#!/usr/bin/env python3
"""Switch something on (a relay, an LED, a buzzer) while the camera sees a chosen label.

    python examples/gpio_action.py --label "tabby" --source picamera           # prints ON/OFF
    python examples/gpio_action.py --label "tabby" --source picamera --gpio 17 # drives BCM pin 17 (gpiozero)

The action lives in one function, ``switch``: replace its body to call a web API, play a sound, open a
door. It is called only when the smoothed label changes, so the output does not flicker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from edge_classifier import Classifier, EdgeClassifierError, LoopOptions, Result, run_pipeline
from edge_classifier.sinks import CallbackSink


def make_switch(gpio_pin: int | None) -> Callable[[bool], None]:
    """The action: drive a GPIO pin with gpiozero when a pin is given, else print the state."""
    if gpio_pin is None:

        def switch(on: bool) -> None:
            print("ON" if on else "OFF", flush=True)

        return switch

    from gpiozero import OutputDevice  # only on a Raspberry Pi: pip install gpiozero

    device = OutputDevice(gpio_pin)

    def switch_pin(on: bool) -> None:
        device.on() if on else device.off()
        print(f"GPIO{gpio_pin} {'ON' if on else 'OFF'}", flush=True)

    return switch_pin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="the ImageNet label that switches the output on (exact, case-insensitive)")
    parser.add_argument("--gpio", type=int, default=None, help="BCM pin to drive (default: just print ON/OFF)")
    parser.add_argument("--source", default="picamera", help="picamera, a camera index, a video file, a URL or an image folder")
    parser.add_argument("--model", help="a .tflite classifier (default: the bundled one)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--min-score", type=float, default=0.3, help="ignore classes scoring below this")
    args = parser.parse_args()

    switch = make_switch(args.gpio)
    target = args.label.casefold()
    state = {"on": False}

    def on_change(result: Result) -> None:
        if result.event is None:
            return
        on = result.event.label.casefold() == target
        if on != state["on"]:
            state["on"] = on
            switch(on)

    try:
        with Classifier(args.model, min_score=args.min_score) as clf:
            if target not in (label.casefold() for label in clf.spec.labels):
                print(f"error: {args.label!r} is not one of the model's labels", file=sys.stderr)
                return 2
            options = LoopOptions(smoothing=0.5, max_frames=args.max_frames)
            run_pipeline(clf, args.source, [CallbackSink(on_change, events_only=True)], options)
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if state["on"]:
            switch(False)  # leave the output off when the program ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
