"""INT8 (QDQ) Whisper encoders for PhoenixNPU (issue 15).

    from phoenix_npu.whisper.int8 import int8_encoder_path
    from phoenix_npu.whisper.quantize import quantize_encoder
    path = int8_encoder_path("base")     # quantized once (calibrated), cached, then reused
    quantize_encoder("encoder_model.onnx", "encoder_int8.onnx", calibration_audio=[...])

Every linear layer of the encoder (each MatMul / Gemm whose weight is a constant) is quantized
with ONNX Runtime's static quantizer in QDQ format: weights INT8 per output channel
(symmetric), activations UINT8 per tensor (asymmetric), both calibrated ahead of time. The
provider folds the DequantizeLinear of the weights and runs each QuantizeLinear ->
DequantizeLinear -> MatMul as an INT8 MatMul with INT32 accumulation (provider/ops/qdq.cc).
The convolution stem and the attention products (activation x activation: Q K^T, P V) stay in
BF16, so attention stays one fused kernel.

Calibration audio (calibration_source()): the user's (`calibration_audio`, the CLI's
--calibration), else the 11 s of read speech installed with the package (PACKAGED_CALIBRATION),
never a folder of the developers'. (The developers' WER tool, phoenix_npu_tools.wer, passes the
calibration half of its speech set here, split from its evaluation half by a fixed rule: see
phoenix_npu_tools/speech.py.) Each calibration clip is one padded 30 s window, and all of them
concatenated are one more (a window full of speech). Which clips calibrated a model is written into the model
(metadata_props "phoenix_npu.int8") and beside the cached copy.

Quantizer: ONNX Runtime's quantize_static by default; AMD Quark (`quantizer="quark"`, the
`quark` extra) when it is importable. amd-quark 0.13 runs beside onnxruntime 1.32 but not in this
project's environment (it needs onnx<=1.22 and torch, and pulls a huggingface_hub transformers 4.x
refuses): see the README ("INT8") for the details and a separate environment that works.

A QDQ encoder made elsewhere (Quark, ORT, Olive...) is accepted as it is: `check_qdq_encoder()`
says what it holds (and refuses a model with no QuantizeLinear / DequantizeLinear or without the
Whisper encoder's input).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from .cache import atomic_dir

log = logging.getLogger(__name__)

INT8_VERSION = 2               # bump when the quantization recipe changes: cached encoders are redone
INT8_DIR = "onnx-int8"         # cache_root()/<model>/onnx-int8/encoder_model.onnx
INT8_MARKER = "phoenix_npu_int8.json"
METADATA_KEY = "phoenix_npu.int8"
# the calibration audio installed with the package, for users who give none: 11 s of the JFK
# inaugural address (public domain; samples/jfk.wav as FLAC)
PACKAGED_CALIBRATION = Path(__file__).resolve().parent / "data" / "calibration_jfk.flac"
PACKAGED_NOTE = "the package's calibration audio (11 s of read speech); pass --calibration for your own"
METHODS = ("minmax", "percentile", "entropy")
DEFAULT_METHOD = "minmax"
QUANTIZERS = ("ort", "quark")  # ONNX Runtime's quantize_static (default), AMD Quark (optional extra)
DEFAULT_QUANTIZER = "ort"


class QuantizationError(RuntimeError):
    """A model could not be quantized or is not a usable QDQ encoder; the message says why."""


# ----------------------------------------------------------------------------------------------
# calibration audio

def calibration_windows(feature_extractor, audio_paths) -> list[np.ndarray]:
    """Log-mel windows [1, n_mels, 3000] for calibration: each clip padded to 30 s, then the
    clips concatenated (in 30 s windows) so that calibration also sees windows full of speech."""
    from .audio import CHUNK_LENGTH, SAMPLE_RATE, load_audio

    audio = [load_audio(p) for p in audio_paths]
    if not audio:
        raise QuantizationError("no calibration audio")
    window = CHUNK_LENGTH * SAMPLE_RATE
    pieces = [a[i:i + window] for a in audio for i in range(0, max(len(a), 1), window)]
    joined = np.concatenate(audio)
    if len(audio) > 1:
        pieces += [joined[i:i + window] for i in range(0, len(joined), window)]
    return [feature_extractor(p, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features.astype(np.float32)
            for p in pieces if len(p)]


# ----------------------------------------------------------------------------------------------
# quantization

def linear_layers(model) -> list[str]:
    """Names of the MatMul / Gemm nodes whose second operand is a constant (the linear layers),
    naming unnamed nodes in place so the quantizer can be told which to take."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for node in model.graph.node if node.op_type == "Constant" for o in node.output}
    out = []
    for k, node in enumerate(model.graph.node):
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in consts:
            if not node.name:
                node.name = f"{node.op_type}_{k}"
            out.append(node.name)
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """A file's SHA-256 (hex), read in 1 MiB blocks: what identifies calibration audio."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def quantize_encoder(fp32_encoder: str | os.PathLike, out_path: str | os.PathLike, calibration_audio,
                     feature_extractor, method: str = DEFAULT_METHOD, calibration_note: str = "",
                     quantizer: str = DEFAULT_QUANTIZER) -> dict:
    """Quantize a Whisper encoder (FP32 ONNX, static input_features) to a QDQ model at
    `out_path`, calibrated on `calibration_audio` (audio file paths). Returns what was done
    (also written into the model's metadata_props under "phoenix_npu.int8")."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if quantizer not in QUANTIZERS:
        raise QuantizationError(f"quantizer must be one of {', '.join(QUANTIZERS)}, not {quantizer!r}")
    if method not in METHODS:
        raise QuantizationError(f"calibration method must be one of {', '.join(METHODS)}, not {method!r}")
    fp32_encoder, out_path = Path(fp32_encoder), Path(out_path)
    model = onnx.load(str(fp32_encoder))
    inputs = [i.name for i in model.graph.input]
    if inputs != ["input_features"]:
        raise QuantizationError(f"{fp32_encoder}: not a Whisper encoder (inputs {inputs}, expected input_features)")
    layers = linear_layers(model)
    if not layers:
        raise QuantizationError(f"{fp32_encoder}: no MatMul / Gemm with constant weights to quantize")
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise QuantizationError(f"{fp32_encoder} is already quantized (it has QuantizeLinear / DequantizeLinear)")
    paths = [str(p) for p in calibration_audio]
    windows = calibration_windows(feature_extractor, paths)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(windows)

        def get_next(self):
            w = next(self._it, None)
            return None if w is None else {"input_features": w}

    # Outputs stay float: the bias Add, GELU and residual Add after each linear layer then fold
    # into the INT8 kernel's epilogue (an output Q/DQ would end the chain and quantize it twice).
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True,
             "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"]}
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    t0 = time.perf_counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    named = out_path.with_name(out_path.name + ".named.onnx")
    onnx.save(model, str(named))  # the FP32 model with every linear layer named
    others = [n.name or f"{n.op_type}_{k}" for k, n in enumerate(model.graph.node)
              if n.op_type in ("MatMul", "Gemm") and n.name not in layers]
    calib = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}[method]
    quiet = _QuietPreprocessHint()
    logging.getLogger().addFilter(quiet)
    try:
        log.info("quantizing %d linear layers of %s with %s (%s calibration on %d windows from %d clips)",
                 len(layers), fp32_encoder, quantizer, method, len(windows), len(paths))
        if quantizer == "quark":
            qs = _quark_quantize_static()
            # Quark writes MatMul + bias Add as a Gemm with an INT32 bias; told which nodes to
            # take (nodes_to_quantize) it keeps only the bias-free k_proj layers, so it is told
            # which to leave (the attention products) instead.
            qs(str(named), str(out_path), Reader(), quant_format=QuantFormat.QDQ, calibrate_method=calib,
               activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
               op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=others, optimize_model=False,
               include_cle=False, print_summary=False, extra_options=extra)
        else:
            quantize_static(str(named), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=layers,
                            calibrate_method=calib, extra_options=extra)
    finally:
        logging.getLogger().removeFilter(quiet)
        named.unlink(missing_ok=True)
        for junk in out_path.parent.glob("augmented_model*.onnx"):
            junk.unlink(missing_ok=True)
    from importlib import metadata

    info = {
        "int8_version": INT8_VERSION,
        "quantizer": (f"amd-quark {metadata.version('amd-quark')} quark.onnx.quantize_static" if quantizer == "quark"
                      else f"onnxruntime {metadata.version('onnxruntime')} onnxruntime.quantization.quantize_static"),
        "format": "QDQ", "weights": "int8, per output channel, symmetric",
        "activations": "uint8, per tensor, asymmetric", "calibration_method": method,
        "linear_layers": len(layers), "source_encoder": str(fp32_encoder),
        "calibration_audio": [Path(p).name for p in paths], "calibration_windows": len(windows),
        "calibration_rule": calibration_note or "audio given by the user",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    q = onnx.load(str(out_path))
    del q.metadata_props[:]
    entry = q.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info)
    onnx.save(q, str(out_path))
    log.info("wrote %s (%d linear layers in INT8, %.1f s)", out_path, len(layers), info["seconds"])
    return info


class _QuietPreprocessHint(logging.Filter):
    """ORT's quantizer advises shape-inference pre-processing on the root logger at WARNING;
    the encoder has static shapes already (export.fix_encoder_dims), so the advice is noise."""

    def filter(self, record):
        return "pre-processing before quantization" not in record.getMessage()


def _quark_quantize_static():
    """AMD Quark's quantize_static, or a QuantizationError saying why it is not usable here."""
    try:
        from quark.onnx import quantize_static as qs
    except ImportError as exc:
        raise QuantizationError(
            f"AMD Quark is not usable in this environment ({exc}). amd-quark 0.13 needs onnx<=1.22 and "
            "torch (imported, not declared), and its datasets/evaluate dependencies want huggingface_hub "
            "releases that transformers 4.x refuses: install it into a separate environment "
            "(pip install 'phoenix-npu[quark]'), or use the default --quantizer ort") from exc
    return qs


def check_qdq_encoder(path: str | os.PathLike) -> dict:
    """What a QDQ encoder holds: {"quantize_linear", "dequantize_linear", "linear_layers",
    "quantized_linear_layers", "metadata"}. Raises QuantizationError for a model that is not a
    quantized Whisper encoder. A user's own QDQ model (AMD Quark, ORT, Olive) is used as it is."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise QuantizationError(f"{path}: no such file (give a QDQ encoder .onnx, or --int8 alone for the built-in one)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - a bad file: say so
        raise QuantizationError(f"{path}: not an ONNX model ({exc})") from exc
    inputs = [i.name for i in model.graph.input]
    if "input_features" not in inputs:
        raise QuantizationError(f"{path}: not a Whisper encoder (inputs {inputs}, expected input_features)")
    ops = [n.op_type for n in model.graph.node]
    q, dq = ops.count("QuantizeLinear"), ops.count("DequantizeLinear")
    if not q or not dq:
        raise QuantizationError(f"{path}: no QuantizeLinear / DequantizeLinear nodes: not a QDQ model")
    producers = {o: n for n in model.graph.node for o in n.output}
    quantized = 0
    linear = 0
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        a, b = producers.get(node.input[0]), producers.get(node.input[1])
        if b is not None and b.op_type == "DequantizeLinear":
            linear += 1
            quantized += a is not None and a.op_type == "DequantizeLinear"
    meta = {p.key: p.value for p in model.metadata_props}
    info = {"quantize_linear": q, "dequantize_linear": dq, "linear_layers": linear,
            "quantized_linear_layers": quantized}
    if METADATA_KEY in meta:
        info["metadata"] = json.loads(meta[METADATA_KEY])
    return info


def calibration_source(calibration_audio=None) -> tuple[list[str], str]:
    """(audio paths, what they are) to calibrate with: the caller's files and folders
    (`calibration_audio`, the CLI's --calibration), else the audio installed with the package.
    Raises QuantizationError when the audio named is not there."""
    if calibration_audio:
        items = [calibration_audio] if isinstance(calibration_audio, (str, os.PathLike)) else calibration_audio
        paths = audio_files(items)
        return paths, f"the caller's calibration audio ({len(paths)} file{'s' if len(paths) != 1 else ''})"
    if not PACKAGED_CALIBRATION.is_file():
        raise QuantizationError(f"the package's calibration audio {PACKAGED_CALIBRATION} is missing (a broken "
                                "install); pass --calibration with audio of your own")
    return [str(PACKAGED_CALIBRATION)], PACKAGED_NOTE


def quantize_export_dir(onnx_dir: str | os.PathLike, method: str = DEFAULT_METHOD, calibration_audio=None,
                        quantizer: str = DEFAULT_QUANTIZER) -> dict:
    """`phoenix-npu export --int8`: replace onnx_dir/encoder_model.onnx by its INT8 QDQ version
    (the FP32 one is kept as encoder_model.fp32.onnx); the directory stays an Optimum export
    that `phoenix-npu transcribe --model DIR` and ORTModelForSpeechSeq2Seq load."""
    from transformers import WhisperFeatureExtractor

    from .onnx_files import ENCODER

    onnx_dir = Path(onnx_dir)
    paths, note = calibration_source(calibration_audio)
    fp32 = onnx_dir / "encoder_model.fp32.onnx"
    (onnx_dir / ENCODER).rename(fp32)
    fe = WhisperFeatureExtractor.from_pretrained(onnx_dir)
    info = quantize_encoder(fp32, onnx_dir / ENCODER, paths, fe, method=method, calibration_note=note,
                            quantizer=quantizer)
    info["source_encoder"] = fp32.name
    return info


def audio_files(items) -> list[str]:
    """Files and folders (their .wav / .flac / .mp3 / .ogg files) -> audio paths."""
    out = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            out += sorted(str(f) for f in p.iterdir() if f.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg"))
        elif p.is_file():
            out.append(str(p))
        else:
            raise QuantizationError(f"calibration audio {p}: no such file or folder")
    if not out:
        raise QuantizationError(f"no audio files in {', '.join(map(str, items))}")
    return out
