"""Word error rate of Whisper on PhoenixNPU against ORT's FP32 CPU EP, on real speech clips.

    python -m phoenix_npu_tools.wer --models tiny.en base --device emulator
    python -m phoenix_npu_tools.wer --speech-dir ../shared/speech

Both runs use the same exported model, the same decoder (on the CPU EP) and the same decoding
settings; only the encoder's providers differ. Texts are normalised with Whisper's English
normaliser (transformers' EnglishTextNormalizer, with Whisper's British -> American spelling
table when available) before scoring. The clip set is a folder with manifest.tsv
(filename, duration_seconds, reference_transcript, ...); the project's clips come from
LibriSpeech (CC BY 4.0, Panayotov et al.), LibriVox, LJSpeech and the JFK inaugural address.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .speech import calibration_paths, default_speech_dir, evaluation_clips, read_manifest  # noqa: F401  (re-exported)

DEFAULT_MODELS = ("tiny.en",)


_normalizer = None


def normalizer():
    """Whisper's English text normaliser (lower case, no punctuation, numbers and spellings
    standardised)."""
    global _normalizer
    if _normalizer is None:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        from phoenix_npu.whisper.tokenizer import english_spelling_mapping

        _normalizer = EnglishTextNormalizer(english_spelling_mapping() or {})
    return _normalizer


def normalize(text: str) -> str:
    return normalizer()(text)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (total edits / total reference words) after Whisper's normalisation."""
    import jiwer

    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        return 0.0
    return float(jiwer.wer([r for r, _ in pairs], [h if h.strip() else "<empty>" for _, h in pairs]))


def evaluate(model: str, device: str, clips: list[dict], num_beams: int = 1, bf16: bool = False, precision: str = "bf16",
             language: str | None = "en", int8=False) -> dict:
    """Transcribe `clips` with the encoder on `device`; returns WER, timings and texts.
    int8: True for the model's INT8 (QDQ) encoder, or a QDQ encoder path."""
    from phoenix_npu.whisper.optimum_pipeline import load_model, transcribe

    t = load_model(model, device=device, bf16=bf16, precision=precision, int8=int8)
    start = time.perf_counter()
    results = transcribe([c["path"] for c in clips], transcriber=t, num_beams=num_beams,
                         language=language if t.multilingual else None, progress=False)
    seconds = time.perf_counter() - start
    hyps = [r["text"] for r in results]
    refs = [c["reference"] for c in clips]
    return {"model": model, "device": device, "encoder": t.encoder_info, "wer": word_error_rate(refs, hyps),
            "seconds": round(seconds, 2), "audio_seconds": round(sum(r["duration"] for r in results), 2),
            "hypotheses": hyps}


def compare(model: str, device: str, clips: list[dict], num_beams: int = 1, bf16: bool = False,
            precision: str = "bf16") -> dict:
    """WER with the encoder on `device` and on the FP32 CPU EP, same decoder and settings."""
    ref = evaluate(model, "cpu", clips, num_beams=num_beams)
    if device == "cpu":
        return {"model": model, "cpu": ref}
    got = evaluate(model, device, clips, num_beams=num_beams, bf16=bf16, precision=precision)
    return {"model": model, "cpu": ref, device: got, "delta_points": round(100 * (got["wer"] - ref["wer"]), 2)}


def int8_report(model: str, device: str, clips: list[dict], num_beams: int = 1,
                speech_dir: str | os.PathLike | None = None) -> dict:
    """WER on `clips` of: the FP32 CPU EP, `device` at BF16, `device` with the INT8 encoder
    (calibrated on the calibration clips of `speech_dir`, default default_speech_dir()), and
    the CPU EP running the same INT8 QDQ encoder; printed as one line per configuration."""
    from phoenix_npu.whisper.int8 import int8_encoder_path

    qdq = str(int8_encoder_path(model, calibration_audio=calibration_paths(speech_dir)))
    runs = {"cpu fp32": evaluate(model, "cpu", clips, num_beams=num_beams)}
    if device != "cpu":
        runs[f"{device} bf16"] = evaluate(model, device, clips, num_beams=num_beams)
        runs[f"{device} int8"] = evaluate(model, device, clips, num_beams=num_beams, int8=qdq)
    runs["cpu int8 qdq"] = evaluate(model, "cpu", clips, num_beams=num_beams, int8=qdq)
    base = runs["cpu fp32"]["wer"]
    names = ", ".join(Path(c["path"]).name for c in clips)
    print(f"{model}: {len(clips)} evaluation clips (none calibrated the INT8 encoder): {names}", flush=True)
    for k, r in runs.items():
        print(f"  {k:14s} WER {100 * r['wer']:5.2f}%  delta {100 * (r['wer'] - base):+.2f} points  "
              f"({r['seconds']:.1f} s; {r['encoder']})", flush=True)
    for k, r in runs.items():
        if k != "cpu fp32":
            for c, a, b in zip(clips, runs["cpu fp32"]["hypotheses"],
                               r["hypotheses"]):
                if normalize(a) != normalize(b):
                    print(f"    {k} differs on {Path(c['path']).name}: {b!r} (fp32: {a!r})")
    return {"model": model, "clips": [Path(c["path"]).name for c in clips], "encoder_int8": qdq,
            **{k: {"wer": r["wer"], "seconds": r["seconds"], "encoder": r["encoder"], "hypotheses": r["hypotheses"]}
               for k, r in runs.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="phoenix-npu-wer", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="models (default tiny.en)")
    p.add_argument("--device", default="emulator", choices=("auto", "emulator", "npu", "cpu"),
                   help="encoder device compared against the FP32 CPU EP (default emulator)")
    p.add_argument("--speech-dir", default=None, help="folder with manifest.tsv (default: shared/speech)")
    p.add_argument("--beam-size", type=int, default=1, help="beam width for both runs (default 1)")
    p.add_argument("--bf16", action="store_true", help="BF16-weight encoder export for the device run")
    p.add_argument("--precision", default="bf16", choices=("bf16", "bf16x3"),
                   help="PhoenixNPU precision for the device run (default bf16)")
    p.add_argument("--limit", type=int, default=0, help="only the first N clips")
    p.add_argument("--int8", action="store_true",
                   help="score the INT8 (QDQ) encoder too (on --device, and on the CPU EP), on the clips that did not "
                        "calibrate it (speech.evaluation_clips), next to FP32 and BF16")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--verbose", "-v", action="store_true", help="print every clip whose transcripts differ")
    args = p.parse_args(argv)

    from phoenix_npu._library import ProviderError
    from phoenix_npu.cli import configure_logging

    configure_logging()

    clips = read_manifest(args.speech_dir or default_speech_dir())
    if args.int8:
        clips = evaluation_clips(args.speech_dir)
    if args.limit:
        clips = clips[:args.limit]
    report = []
    if args.int8:
        try:
            for model in args.models:
                report.append(int8_report(model, args.device, clips, args.beam_size,
                                          args.speech_dir or default_speech_dir()))
        except ProviderError as exc:
            print(f"phoenix-npu wer: the PhoenixNPU provider is not available: {exc}", file=sys.stderr)
            return 1
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return 0
    try:
        for model in args.models:
            r = compare(model, args.device, clips, num_beams=args.beam_size, bf16=args.bf16, precision=args.precision)
            report.append(r)
            cpu = r["cpu"]
            line = f"{model:8s} clips {len(clips):2d}  WER cpu-fp32 {100 * cpu['wer']:5.2f}%"
            if args.device != "cpu":
                dev = r[args.device]
                line += (f"  {args.device} {100 * dev['wer']:5.2f}%  delta {r['delta_points']:+.2f} points"
                         f"  (time cpu {cpu['seconds']:.1f}s, {args.device} {dev['seconds']:.1f}s)")
            print(line, flush=True)
            if args.verbose and args.device != "cpu":
                for c, a, b in zip(clips, cpu["hypotheses"], r[args.device]["hypotheses"]):
                    if normalize(a) != normalize(b):
                        print(f"  {Path(c['path']).name}\n    cpu: {a}\n    {args.device}: {b}")
    except ProviderError as exc:
        print(f"phoenix-npu wer: the PhoenixNPU provider is not available: {exc}\n"
              "  (--device cpu scores the CPU EP alone)", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
