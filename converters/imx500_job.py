"""The IMX500 quantization job, run by the toolchain's own Python (TensorFlow 2.15, Sony's MCT): not imported here.

``python imx500_job.py JOB_FOLDER`` reads ``job.json`` and the files :mod:`.imx500` wrote beside it, and writes
``result.json``. It imports nothing of edge-classifier (its environment has none of it):

1. Rebuild the float network in tf.keras from the neutral graph (``graph.json``: layer classes, the config keys
   both Keras versions share, inbound layers) and its weights (``weights.npz``), behind a 1x1 depthwise
   convolution that does the spec's normalisation ``(pixel - mean) / std``: the sensor then feeds raw pixels
   (imxconv supports DepthwiseConv2D, not Rescaling: ``[USOP] The network contains unsupported ops:
   ...Rescaling``). The rebuild is checked against the source model's own outputs (``probe.npz``).
2. Quantize with MCT's post-training quantization for the IMX500 (``mct.ptq.keras_post_training_quantization``
   with ``edgemdt_tpc.get_target_platform_capabilities(tpc_version, device_type="imx500")``, as Sony's IMX500
   tutorials do), calibrating on ``calib.npy`` (raw RGB pixels, framed as the runtime frames them).
3. Export it for imxconv (``mct.exporter.keras_export_model``, MCTQ ``.keras``).
4. Measure it: top-1/top-5 agreement of the quantized network with the float one on ``val.npy``, and Sony's own
   float-vs-quantized report (``mct.xquant.xquant_report_keras_experimental``: MSE, cosine similarity, SQNR of
   the output on the representative and validation sets).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

# Config keys tf.keras 2.15 and Keras 3 share for each layer the rebuild supports (imxconv supports them all).
KEEP: dict[str, tuple[str, ...]] = {
    "Conv2D": (
        "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias"
    ),
    "DepthwiseConv2D": (
        "kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate", "activation", "use_bias"
    ),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Add": (),
    "Multiply": (),
    "Subtract": (),
    "Concatenate": ("axis",),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "Dense": ("units", "activation", "use_bias"),
    "Dropout": ("rate",),
    "Softmax": ("axis",),
    "ZeroPadding2D": ("padding", "data_format"),
    "Reshape": ("target_shape",),
    "Flatten": ("data_format",),
}  # fmt: skip


def rebuild(tf: Any, job: dict[str, Any], folder: Path) -> Any:
    """The float network in tf.keras, normalising raw pixels itself."""
    graph = json.loads((folder / job["graph"]).read_text())
    weights = np.load(folder / job["weights"])
    h, w = job["input_size"]
    mean = np.asarray(job["mean"], dtype=np.float32)
    std = np.asarray(job["std"], dtype=np.float32)
    inp = tf.keras.Input(shape=(h, w, 3), name="input")
    normalize = tf.keras.layers.DepthwiseConv2D(1, use_bias=True, name="normalize")
    tensors: dict[str, Any] = {}
    x = normalize(inp)
    normalize.set_weights([(1.0 / std).reshape(1, 1, 3, 1), -mean / std])
    for layer in graph["layers"]:
        cls = layer["class_name"]
        if cls == "InputLayer":
            tensors[layer["name"]] = x
            continue
        cfg = {k: layer["config"][k] for k in KEEP[cls] if k in layer["config"]}
        for key in ("kernel_size", "strides", "dilation_rate", "pool_size", "target_shape"):
            if isinstance(cfg.get(key), list):
                cfg[key] = tuple(cfg[key])
        obj = getattr(tf.keras.layers, cls)(name=layer["name"], **cfg)
        ins = [tensors[name] for name in layer["inbound"]]
        tensors[layer["name"]] = obj(ins if len(ins) > 1 else ins[0])
        count = int(layer.get("weights", 0))
        if count:
            obj.set_weights([weights[f"{layer['name']}/{i}"] for i in range(count)])
    return tf.keras.Model(inp, tensors[graph["output"]], name=job.get("name", "network"))


def batches(x: np.ndarray, size: int) -> Any:
    """A representative-dataset callable for MCT: lists of one batch each."""

    def gen() -> Any:
        for i in range(0, len(x), size):
            yield [x[i : i + size]]

    return gen


def agreement(float_out: np.ndarray, quant_out: np.ndarray) -> dict[str, float]:
    """How often the quantized network's top-1 (and top-5) matches the float network's."""
    f1 = float_out.argmax(-1)
    q1 = quant_out.argmax(-1)
    q5 = np.argsort(-quant_out, axis=-1)[:, :5]
    return {
        "images": int(len(f1)),
        "top1_agreement": float((f1 == q1).mean()),
        "float_top1_in_quantized_top5": float(np.mean([f in row for f, row in zip(f1, q5, strict=True)])),
        "mean_abs_score_difference": float(np.abs(float_out - quant_out).mean()),
    }


def run(folder: Path, out: dict[str, Any]) -> None:
    """Do the job in ``folder``, recording in ``out`` (what result.json holds) as it goes: ``stage`` says how far it got."""
    out.update(ok=False, stage="start")
    import tensorflow as tf

    job = json.loads((folder / "job.json").read_text())
    out["stage"] = "rebuild"
    model = rebuild(tf, job, folder)
    probe = np.load(folder / job["probe"])
    out["rebuild_max_abs_diff"] = float(np.abs(model.predict(probe["x"], verbose=0) - probe["y"]).max())
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities

    out["stage"] = "quantize"
    calib = np.load(folder / job["calib"])
    tpc = get_target_platform_capabilities(tpc_version=job["tpc_version"], device_type="imx500")
    t0 = time.perf_counter()
    quantized, _info = mct.ptq.keras_post_training_quantization(
        model, batches(calib, job["batch"]), target_platform_capabilities=tpc
    )
    out["ptq_seconds"] = round(time.perf_counter() - t0, 2)
    out["stage"] = "export"
    target = folder / job["out"]
    mct.exporter.keras_export_model(model=quantized, save_model_path=str(target))
    out["quantized_model"] = str(target)
    out["quantized_model_bytes"] = target.stat().st_size
    out["stage"] = "measure"
    val = np.load(folder / job["val"]) if job.get("val") else calib[: min(len(calib), 32)]
    out["agreement"] = agreement(model.predict(val, verbose=0), quantized.predict(val, verbose=0))
    from model_compression_toolkit.xquant import XQuantConfig

    t0 = time.perf_counter()
    report = mct.xquant.xquant_report_keras_experimental(
        model, quantized, batches(calib[: min(len(calib), 32)], job["batch"]), batches(val, job["batch"]),
        XQuantConfig(report_dir=str(folder / "xquant")),
    )  # fmt: skip
    out["xquant_seconds"] = round(time.perf_counter() - t0, 2)
    out["xquant"] = {
        "representative": report.get("output_similarity_metrics_repr"),
        "validation": report.get("output_similarity_metrics_val"),
        "report_dir": str(folder / "xquant"),
    }
    import importlib.metadata as md

    out["versions"] = {p: md.version(p) for p in ("tensorflow", "keras", "model-compression-toolkit", "edge-mdt-tpc", "numpy")}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["ok"] = True
    out["stage"] = "done"


def main(argv: list[str]) -> int:
    """``imx500_job.py FOLDER``: writes FOLDER/result.json; exit status 0 when the job finished."""
    folder = Path(argv[1])
    result: dict[str, Any] = {}
    try:
        run(folder, result)
    except Exception as exc:  # noqa: BLE001 - reported to the converter, which names the stage and the cause
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:])
    (folder / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
