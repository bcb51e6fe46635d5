"""The cached INT8 (QDQ) encoder of a model: exported once (export), quantized once
(quantize), kept in the model cache per calibration set.

    from phoenix_npu.whisper.int8 import int8_encoder_path
    path = int8_encoder_path("tiny.en")          # quantized and cached on first use

    python -m phoenix_npu.whisper.int8 MODEL     # print that path (quantizing it once)

It sits above export and quantize, which do not import it: `phoenix-npu export --int8`
quantizes the export directory itself (quantize.quantize_export_dir).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from .cache import atomic_dir
from .onnx_files import ENCODER
from .quantize import (DEFAULT_METHOD, DEFAULT_QUANTIZER, INT8_DIR, INT8_MARKER, INT8_VERSION, METHODS, QUANTIZERS,
                       calibration_source, check_qdq_encoder, file_sha256, quantize_encoder)

log = logging.getLogger(__name__)

# `--int8` means INT8 end to end, as stock faster-whisper's compute_type="int8": the QDQ encoder
# on PhoenixNPU and CTranslate2's int8 decoder.
INT8_DECODER = "int8"


def _int8_dir(onnx_dir: Path, model: str) -> Path:
    """Where the INT8 encoder of `model` is cached: beside its FP32 export for a named model,
    else under cache_root()/int8/ (never inside a directory the user gave)."""
    from .cache import cache_root
    from .registry import recipes

    if model in recipes():
        return cache_root() / model / INT8_DIR
    real = onnx_dir.resolve()
    tag = hashlib.sha1(str(real).encode()).hexdigest()[:10]
    return cache_root() / "int8" / f"{real.name}-{tag}"


def int8_encoder_path(model: str | os.PathLike = "tiny.en", method: str = DEFAULT_METHOD,
                      quantizer: str = DEFAULT_QUANTIZER,
                      calibration_audio=None) -> Path:
    """The path of `model`'s INT8 (QDQ) encoder, for any caller that builds its own encoder
    session (the faster-whisper-compatible API, the batch runner): quantized once from the FP32
    export, calibrated on calibration_source(calibration_audio) (by default the
    audio installed with the package), and cached in cache_root()/<model>/onnx-int8/<calibration
    set> (redone when
    the FP32 encoder, the recipe or the calibration audio changes). A path to an .onnx file is
    taken as a QDQ encoder the user made: checked (check_qdq_encoder) and returned as it is."""
    from transformers import WhisperFeatureExtractor

    from .export import ensure_exported

    p = Path(model).expanduser()
    if p.suffix == ".onnx":
        check_qdq_encoder(p)
        return p
    paths, note = calibration_source(calibration_audio)
    onnx_dir = ensure_exported(str(model))
    src = onnx_dir / ENCODER
    meta_src = {}
    try:
        meta_src = json.loads((onnx_dir / "phoenix_npu_export.json").read_text())
    except (OSError, ValueError):
        pass
    if meta_src.get("int8"):  # an `export --int8` directory: its encoder is the quantized one
        check_qdq_encoder(src)
        return src
    # by content, not path or mtime: reinstalling the package (its clip gets a new mtime) or
    # copying the audio elsewhere reuses the cached encoder; changed audio redoes it
    calibration = sorted(file_sha256(a) for a in paths)
    calibration_tag = hashlib.sha256(json.dumps(calibration).encode()).hexdigest()[:12]
    out_dir = _int8_dir(onnx_dir, str(model)) / calibration_tag  # one cached encoder per calibration set
    stamp = {"int8_version": INT8_VERSION, "method": method, "quantizer": quantizer, "source": str(src),
             "source_size": src.stat().st_size, "source_mtime_ns": src.stat().st_mtime_ns,
             "calibration": calibration_tag}
    try:
        marker = json.loads((out_dir / INT8_MARKER).read_text())
        if marker.get("stamp") == stamp and (out_dir / ENCODER).is_file():
            return out_dir / ENCODER
    except (OSError, ValueError):
        pass
    log.info("first INT8 use of %s with this calibration audio: quantizing its encoder into %s (once)",
             model, out_dir)
    fe = WhisperFeatureExtractor.from_pretrained(onnx_dir)
    with atomic_dir(out_dir) as tmp:
        info = quantize_encoder(src, tmp / ENCODER, paths, fe, method=method, calibration_note=note,
                                quantizer=quantizer)
        (tmp / INT8_MARKER).write_text(json.dumps({"stamp": stamp, **info}, indent=2))
    return out_dir / ENCODER


def main(argv=None) -> int:  # python -m phoenix_npu.whisper.int8 MODEL: print the cached path
    import argparse

    p = argparse.ArgumentParser(description="quantize (once) and print the INT8 encoder of a model")
    p.add_argument("model", nargs="?", default="tiny.en")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    p.add_argument("--quantizer", default=DEFAULT_QUANTIZER, choices=QUANTIZERS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[phoenix-npu] %(message)s")
    print(int8_encoder_path(args.model, method=args.method, quantizer=args.quantizer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
