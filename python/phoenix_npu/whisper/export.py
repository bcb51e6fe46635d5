"""Export Whisper to ONNX with Optimum, ready for PhoenixNPU.

`phoenix-npu export MODEL OUTDIR [--bf16] [--opset 17]` runs Optimum's exporter (task
automatic-speech-recognition-with-past) and writes encoder_model.onnx, decoder_model.onnx,
decoder_with_past_model.onnx, decoder_model_merged.onnx and the configs, a directory that
`optimum.onnxruntime.ORTModelForSpeechSeq2Seq.from_pretrained(OUTDIR, ...)` loads.

Then the encoder is made static: its `batch_size` dim becomes 1 (frames are already 3000), so
ORT folds the Shape / Gather / Unsqueeze / Concat chains before partitioning and the provider
sees one static graph. `--dynamic-batch` keeps the dim symbolic; `encoder_session_options()`
pins it at session creation instead (and is harmless on a static encoder).

`--bf16` stores the encoder's large float initializers as ONNX BFLOAT16 (round to nearest
even), each followed by a Cast to float: the FP32 CPU EP loads the same directory and computes
exactly what a model with bf16-rounded weights computes, and the file is half the size.

    from phoenix_npu.whisper.export import ensure_exported
    onnx_dir = ensure_exported("tiny.en")     # exported once, cached outside the repository

An Optimum export made elsewhere (`optimum-cli export onnx --model DIR --task
automatic-speech-recognition-with-past OUT`, symbolic batch dim, any opset) is used as it is.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from .audio import N_FRAMES
from .cache import atomic_dir, cache_root, outdir_problem

from .onnx_files import DECODER, DECODER_MERGED, DECODER_WITH_PAST, ENCODER  # noqa: F401  (re-exported)
TASK = "automatic-speech-recognition-with-past"
DEFAULT_OPSET = 17          # the first opset with LayerNormalization
BATCH_DIM = "batch_size"    # the encoder's symbolic batch dim, as Optimum names it
MARKER = "phoenix_npu_export.json"
EXPORT_VERSION = 1          # bump when the exported directory changes; cached exports are redone
BF16_MIN_ELEMENTS = 1024    # initializers at least this large are stored as BF16 with --bf16

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# encoder rewrites

def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def encoder_dim_params(model) -> set[str]:
    """The symbolic dim names of an encoder model's inputs and outputs (e.g. {"batch_size"})."""
    names = set()
    for vi in list(model.graph.input) + list(model.graph.output):
        names.update(d.dim_param for d in vi.type.tensor_type.shape.dim if d.dim_param)
    return names


def fix_encoder_dims(model, batch: int = 1, frames: int = N_FRAMES):
    """Make the encoder static in place: every symbolic dim named like the batch becomes
    `batch`, input_features' frame axis becomes `frames`; stale value_info is dropped (ORT
    infers shapes again). Returns the model."""
    for vi in list(model.graph.input) + list(model.graph.output):
        shape = vi.type.tensor_type.shape
        for axis, d in enumerate(shape.dim):
            if d.dim_param == BATCH_DIM or (axis == 0 and d.dim_param):
                d.Clear()
                d.dim_value = batch
            elif vi.name == "input_features" and axis == 2 and d.dim_param:
                d.Clear()
                d.dim_value = frames
    del model.graph.value_info[:]
    return model


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (as float32)."""
    return (_bf16_bits(x).astype(np.uint32) << 16).view(np.float32).reshape(np.shape(x))


def convert_initializers_bf16(model, min_elements: int = BF16_MIN_ELEMENTS) -> list[str]:
    """In place: each float32 initializer with >= min_elements values becomes a BFLOAT16
    initializer `<name>_bf16` followed by `Cast(to=FLOAT)` producing `<name>`, so every
    consumer is unchanged. Returns the converted names."""
    from onnx import TensorProto, helper, numpy_helper

    converted, casts, keep = [], [], []
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            keep.append(init)
            continue
        arr = numpy_helper.to_array(init)
        t = TensorProto()
        t.name = init.name + "_bf16"
        t.data_type = TensorProto.BFLOAT16
        t.dims.extend(arr.shape)
        t.raw_data = _bf16_bits(arr).tobytes()
        keep.append(t)
        casts.append(helper.make_node("Cast", [t.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}_cast_bf16_to_fp32"))
        converted.append(init.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return converted


def postprocess_encoder(path: str | os.PathLike, fix_batch: bool = True, bf16: bool = False,
                        min_elements: int = BF16_MIN_ELEMENTS) -> dict:
    """Rewrite encoder_model.onnx in place (static dims and/or BF16 weights)."""
    import onnx

    model = onnx.load(str(path))
    info: dict = {"dim_params": sorted(encoder_dim_params(model))}
    if fix_batch:
        fix_encoder_dims(model)
    if bf16:
        info["bf16_initializers"] = len(convert_initializers_bf16(model, min_elements))
    info["inputs"] = {vi.name: _dims(vi) for vi in model.graph.input}
    info["nodes"] = len(model.graph.node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return info


def encoder_free_dims(path: str | os.PathLike, batch: int = 1, frames: int = N_FRAMES) -> dict[str, int]:
    """{dim name: value} for the symbolic dims of the encoder's input_features: the batch axis
    to `batch`, the frame axis to `frames` (what transcription feeds: one 30 s window). Empty
    for an encoder with fixed dims. Works for any Whisper encoder export, whatever its dim names."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    out: dict[str, int] = {}
    for vi in model.graph.input:
        if vi.name != "input_features":
            continue
        for axis, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.dim_param and axis in (0, 2):
                out[d.dim_param] = batch if axis == 0 else frames
    return out


def encoder_session_options(batch: int = 1, base=None, optimized_model_path: str | None = None):
    """SessionOptions for the encoder: its symbolic batch dim pinned to `batch`, so the shape
    chains fold before the provider partitions the graph (needed only for an encoder exported
    with --dynamic-batch; harmless on a static one). Pass these ONLY to the encoder session:
    the decoders share the dim name, and beam search runs them with batch = beams."""
    import onnxruntime as ort

    so = base if base is not None else ort.SessionOptions()
    so.add_free_dimension_override_by_name(BATCH_DIM, int(batch))
    if optimized_model_path:
        so.optimized_model_filepath = str(optimized_model_path)
    return so


# ----------------------------------------------------------------------------------------------
# export

def export_model(model: str | os.PathLike, outdir: str | os.PathLike, opset: int = DEFAULT_OPSET,
                 bf16: bool = False, fix_batch: bool = True, int8: bool = False, int8_options: dict | None = None) -> Path:
    """Export `model` (a name resolve_model knows, or a Hugging Face / CTranslate2 Whisper
    directory) to `outdir` with Optimum. Written atomically; returns `outdir`. int8: the
    encoder is then quantized (quantize.quantize_export_dir, with `int8_options`: method,
    calibration_audio, quantizer); the FP32 one stays as encoder_model.fp32.onnx."""
    if int8 and bf16:
        raise ValueError("--int8 and --bf16 exclude each other (the INT8 encoder is quantized from the FP32 one)")
    if int8 and not fix_batch:
        raise ValueError("--int8 needs the static encoder (drop --dynamic-batch): calibration runs it on one window")
    if opset < 17:
        raise ValueError(f"opset {opset} has no LayerNormalization op; use --opset 17 or higher")
    from .importer import IMPORTER_VERSION
    from .importer import resolve_model

    hf_dir = resolve_model(model)
    outdir = Path(outdir)
    with atomic_dir(outdir) as tmp:
        log.info("exporting %s to ONNX (opset %d, %s); this takes a minute", hf_dir, opset, TASK)
        _optimum_export(hf_dir, tmp, opset)
        info = postprocess_encoder(tmp / ENCODER, fix_batch=fix_batch, bf16=bf16)
        int8_info = None
        if int8:
            from .quantize import quantize_export_dir

            int8_info = quantize_export_dir(tmp, **(int8_options or {}))
        missing = [f for f in (ENCODER, DECODER, DECODER_WITH_PAST, DECODER_MERGED) if not (tmp / f).is_file()]
        if missing:
            raise RuntimeError(f"Optimum's export wrote no {', '.join(missing)}")
        (tmp / MARKER).write_text(json.dumps({
            "export_version": EXPORT_VERSION, "importer_version": IMPORTER_VERSION, "source": str(model),
            "hf_dir": str(hf_dir), "opset": opset, "bf16": bf16, "encoder_static_batch": fix_batch,
            "encoder": info, "int8": int8_info, "versions": _versions()}, indent=2))
    bf16_note = f", {info['bf16_initializers']} BF16 initializers" if bf16 else ""
    log.info("exported to %s (encoder: %d nodes, inputs %s%s)", outdir, info["nodes"], info["inputs"], bf16_note)
    return outdir


def _optimum_export(hf_dir: Path, out: Path, opset: int) -> None:
    import logging
    import warnings

    from optimum.exporters.onnx import main_export

    quiet = ["optimum", "transformers", "torch"]
    levels = {n: logging.getLogger(n).level for n in quiet}
    try:
        for n in quiet:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main_export(str(hf_dir), str(out), task=TASK, opset=opset, device="cpu",
                        do_validation=False, local_files_only=True)
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for pkg in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def is_onnx_dir(path: str | os.PathLike) -> bool:
    """An Optimum Whisper export: the encoder and a decoder (merged, or plain + with-past)."""
    p = Path(path)
    return (p / ENCODER).is_file() and ((p / DECODER_MERGED).is_file() or (p / DECODER).is_file())


def export_dir(model_name: str, bf16: bool = False, opset: int = DEFAULT_OPSET) -> Path:
    """Where ensure_exported caches `model_name`."""
    from .registry import recipes

    leaf = "onnx" + ("-bf16" if bf16 else "") + ("" if opset == DEFAULT_OPSET else f"-opset{opset}")
    if model_name in recipes():
        return cache_root() / model_name / leaf
    real = Path(model_name).expanduser().resolve()
    tag = hashlib.sha1(str(real).encode()).hexdigest()[:10]
    return cache_root() / "exported" / f"{real.name}-{tag}" / leaf


def _is_current_export(out: Path, opset: int, bf16: bool) -> bool:
    from .importer import IMPORTER_VERSION

    try:
        meta = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return is_onnx_dir(out) and (meta.get("opset"), meta.get("bf16"), meta.get("export_version"),
                                 meta.get("importer_version")) == (opset, bf16, EXPORT_VERSION, IMPORTER_VERSION)


def ensure_exported(model_name: str | os.PathLike = "tiny.en", bf16: bool = False,
                    opset: int = DEFAULT_OPSET) -> Path:
    """An exported ONNX directory for `model_name`: an ONNX directory given directly (this
    project's export or Optimum's default one) is used as is; anything else is exported once
    and cached (cache_root()/<name>/onnx[-bf16])."""
    from .importer import resolve_model

    name = str(model_name)
    if Path(name).expanduser().is_dir() and is_onnx_dir(Path(name).expanduser()):
        return Path(name).expanduser()
    out = export_dir(name, bf16, opset)
    if _is_current_export(out, opset, bf16):
        return out
    resolve_model(name)  # an unknown name fails here, before anything says "exporting"
    log.info("first use of %s%s: exporting to ONNX into %s (once)", name, " (bf16)" if bf16 else "", out)
    return export_model(name, out, opset=opset, bf16=bf16)


# ----------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser) -> None:
    parser.add_argument("model", help="tiny.en, base, or a Hugging Face / CTranslate2 Whisper directory")
    parser.add_argument("outdir", help="directory to write the ONNX models and configs to")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset, >= 17 (default 17)")
    parser.add_argument("--bf16", action="store_true",
                        help="store the encoder's large weights as BF16 (+ Cast to float; the CPU EP still loads it)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="keep the encoder's batch dim symbolic (then pin it with encoder_session_options())")
    parser.add_argument("--int8", action="store_true",
                        help="quantize the encoder's linear layers to INT8 (QDQ), calibrated on audio that is not the "
                             "WER evaluation set (default: the shared clips' calibration split; see --calibration)")
    parser.add_argument("--calibration", nargs="+", metavar="AUDIO", default=None,
                        help="with --int8: audio files or folders to calibrate on instead of the calibration split")
    parser.add_argument("--calibration-method", default="minmax", choices=("minmax", "percentile", "entropy"),
                        help="with --int8: how activation ranges are calibrated (default minmax)")
    parser.add_argument("--quantizer", default="ort", choices=("ort", "quark"),
                        help="with --int8: ONNX Runtime's static quantizer (default) or AMD Quark (the quark extra, "
                             "in its own environment: see README)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTDIR if it exists")


def run(args) -> int:
    out = Path(args.outdir)
    problem = outdir_problem(out, args.force)
    if problem:
        print(f"phoenix-npu export: {problem}", file=sys.stderr)
        return 2
    from .quantize import QuantizationError, _quark_quantize_static, audio_files
    from .registry import ModelNotFoundError

    if not args.int8 and (args.calibration or args.quantizer != "ort" or args.calibration_method != "minmax"):
        print("phoenix-npu export: --calibration, --calibration-method and --quantizer go with --int8", file=sys.stderr)
        return 2
    try:  # bad calibration paths or a missing Quark are found before the minute of export, not after
        calibration = audio_files(args.calibration) if args.calibration else None
        if args.int8 and args.quantizer == "quark":
            _quark_quantize_static()
    except QuantizationError as exc:
        print(f"phoenix-npu export: {exc}", file=sys.stderr)
        return 2
    int8_options = {"method": args.calibration_method, "calibration_audio": calibration,
                    "quantizer": args.quantizer}
    try:
        export_model(args.model, out, opset=args.opset, bf16=args.bf16, fix_batch=not args.dynamic_batch,
                     int8=args.int8, int8_options=int8_options)
    except (ModelNotFoundError, ValueError, QuantizationError) as exc:
        print(f"phoenix-npu export: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
