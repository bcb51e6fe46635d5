"""Transcribe audio with Whisper: Optimum's ORTModelForSpeechSeq2Seq and a transformers
automatic-speech-recognition pipeline, with the encoder on PhoenixNPU.

    phoenix-npu transcribe talk.wav --model base --format srt --output talk.srt

    from phoenix_npu.transcribe import transcribe
    [result] = transcribe(["talk.wav"], model="tiny.en", device="auto")
    result["text"], result["chunks"]        # chunks: [{"text", "timestamp": (start, end)}]

The encoder session gets `make_providers(device)` (PhoenixNPU first, the CPU EP for what it
does not take) with its batch dim pinned to 1; the decoder sessions run on ORT's CPU EP unless
`decoder_device="same"`: the decoder's sequence length changes every step, which is not what
the NPU path is built for. `device="cpu"` is the FP32 reference: the CPU EP for everything.
"""
from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

DEVICES = ("auto", "emulator", "npu", "cpu")
FORMATS = ("text", "srt", "vtt", "json")
CHUNK_LENGTH_S = 30
DEFAULT_MODEL = "tiny.en"


def _say(msg: str) -> None:
    print(f"[phoenix-npu] {msg}", file=sys.stderr, flush=True)


def make_providers(device: str = "auto") -> list:
    """The ONNX Runtime providers list for `device`.
    cpu -> ["CPUExecutionProvider"]; auto / emulator / npu ->
    [("PhoenixNPUExecutionProvider", {"device": device}), "CPUExecutionProvider"].
    Raises phoenix_npu.ProviderError when the provider library cannot be registered (not
    built, or ORT too old): there is no silent fallback to the CPU EP."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import phoenix_npu

    phoenix_npu.register()
    return [(phoenix_npu.EP_NAME, {"device": device}), "CPUExecutionProvider"]


# ----------------------------------------------------------------------------------------------
# model loading

class Transcriber:
    """A loaded Whisper: the Optimum model with the encoder on `device`, its processor, and a
    transformers ASR pipeline over them. Load once, transcribe many:

        t = Transcriber("base", device="emulator")
        t.transcribe_array(samples)["text"]          # 16 kHz mono float32
        t.transcribe(["a.wav", "b.flac"])            # list of result dicts

    `model`: tiny.en, base, a Hugging Face / CTranslate2 Whisper directory, or an exported
    ONNX directory (imported / exported once and cached as needed). decoder_device: "cpu"
    (default) or "same" (the decoder sessions get the same providers as the encoder).
    precision: "bf16" (default, the NPU's kernels) or "bf16x3" (every tensor a BF16 pair: FP32-grade
    encoder output at about 2.9x the emulated encoder time; emulated device only)."""

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto", bf16: bool = False,
                 decoder_device: str = "cpu", threads: int = 0, progress: bool = True, precision: str = "bf16"):
        import logging
        import warnings

        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
        from optimum.onnxruntime.modeling_seq2seq import ORTModelForWhisper
        from transformers import AutoConfig, GenerationConfig, WhisperProcessor, pipeline

        from .export import DECODER_MERGED, ENCODER, ensure_exported

        if decoder_device not in ("cpu", "same"):
            raise ValueError("decoder_device must be 'cpu' or 'same'")
        for name in ("transformers", "optimum"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="transformers")
        say = _say if progress else (lambda _msg: None)
        self.device = device
        self.windows_done = 0
        self._bar = None
        if bf16 and precision == "bf16x3":
            # always said, even without progress: the combination quietly loses what bf16x3 is for
            _say("note: the --bf16 export rounds the encoder weights to BF16; precision=bf16x3 cannot "
                 "restore those bits (use the FP32 export for FP32-grade encoder output)")
        self.onnx_dir = ensure_exported(model, bf16=bf16, progress=say)
        encoder, self.encoder_info = _encoder_session(self.onnx_dir / ENCODER, device, threads, precision)
        dec_providers = make_providers(device) if decoder_device == "same" else ["CPUExecutionProvider"]
        dec_so = ort.SessionOptions()
        if threads:
            dec_so.intra_op_num_threads = threads
        decoder = ort.InferenceSession(str(self.onnx_dir / DECODER_MERGED), dec_so, providers=dec_providers)

        config = AutoConfig.from_pretrained(self.onnx_dir)
        config.use_cache = True
        config.is_encoder_decoder = True
        gen = GenerationConfig.from_pretrained(self.onnx_dir)
        gen.use_cache = True
        cls = ORTModelForWhisper if config.model_type == "whisper" else ORTModelForSpeechSeq2Seq
        self.model = cls(config=config, encoder_session=encoder, decoder_session=decoder, generation_config=gen,
                         model_save_dir=str(self.onnx_dir))
        self.processor = WhisperProcessor.from_pretrained(self.onnx_dir)
        self.pipeline = pipeline("automatic-speech-recognition", model=self.model, tokenizer=self.processor.tokenizer,
                                 feature_extractor=self.processor.feature_extractor, device="cpu")
        self.multilingual = bool(getattr(gen, "is_multilingual", False))
        _count_windows(self)
        say(f"encoder: {self.encoder_info}")

    def transcribe_array(self, samples, return_timestamps: bool = False, language: str | None = None,
                         num_beams: int = 1, chunk_length_s: float | None = None) -> dict:
        """Transcribe 16 kHz mono float32 samples: {"text", "chunks"}; audio over 30 s is
        chunked (30 s windows); chunks carry (start, end) seconds when return_timestamps."""
        import numpy as np

        samples = np.asarray(samples, dtype=np.float32)
        if samples.size == 0:
            return {"text": "", "chunks": []}
        duration = samples.size / 16000
        if return_timestamps and duration > CHUNK_LENGTH_S and chunk_length_s is None:
            return self._long_form(samples, duration, language, num_beams)
        kwargs: dict[str, Any] = {}
        if chunk_length_s is None and duration > CHUNK_LENGTH_S:
            chunk_length_s = CHUNK_LENGTH_S
        if chunk_length_s:
            kwargs["chunk_length_s"] = chunk_length_s
        generate: dict[str, Any] = {"num_beams": int(num_beams)}
        if self.multilingual:
            generate["task"] = "transcribe"
            if language:
                generate["language"] = language
        out = self.pipeline({"raw": samples, "sampling_rate": 16000}, return_timestamps=return_timestamps,
                            generate_kwargs=generate, **kwargs)
        chunks = []
        for c in out.get("chunks") or []:
            start, end = c.get("timestamp", (None, None))
            start = 0.0 if start is None else float(start)
            end = duration if end is None else float(end)
            chunks.append({"text": c["text"], "timestamp": (round(start, 2), round(min(end, duration), 2))})
        if return_timestamps and not chunks and out["text"].strip():
            chunks = [{"text": out["text"], "timestamp": (0.0, round(duration, 2))}]
        return {"text": out["text"].strip(), "chunks": chunks}

    __call__ = transcribe_array

    def _long_form(self, samples, duration: float, language: str | None, num_beams: int) -> dict:
        """Audio over 30 s with timestamps: Whisper's own sequential long-form decoding (30 s
        windows, each starting where the last segment ended). The chunked pipeline merges
        overlapping windows and, with timestamps, returns a few long cues (seen with tiny.en:
        one cue over the first 45 s, on PyTorch as on ONNX Runtime)."""
        feats = self.processor(samples, sampling_rate=16000, return_tensors="pt", truncation=False,
                               padding="longest", return_attention_mask=True)
        generate: dict[str, Any] = {"num_beams": int(num_beams), "return_timestamps": True, "return_segments": True}
        if self.multilingual:
            generate["task"] = "transcribe"
            if language:
                generate["language"] = language
        out = self.model.generate(feats.input_features, attention_mask=feats.attention_mask, **generate)
        chunks = []
        for seg in out["segments"][0]:
            text = self.processor.tokenizer.decode(seg["tokens"], skip_special_tokens=True)
            start, end = float(seg["start"]), min(float(seg["end"]), duration)
            if text.strip():
                chunks.append({"text": text, "timestamp": (round(start, 2), round(end, 2))})
        return {"text": "".join(c["text"] for c in chunks).strip(), "chunks": chunks}

    def transcribe(self, audio_paths, **kwargs) -> list[dict]:
        """Transcribe files with this model; keyword arguments as for the module's transcribe()."""
        return transcribe(audio_paths, transcriber=self, **kwargs)


def _encoder_session(path: Path, device: str, threads: int = 0, precision: str = "bf16"):
    import onnxruntime as ort

    from .export import encoder_session_options

    if device == "cpu":
        so = encoder_session_options()
        if threads:
            so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(path), so, providers=make_providers("cpu"))
        return sess, "CPUExecutionProvider (FP32)"
    import phoenix_npu

    make_providers(device)  # registers, or raises ProviderError
    so = encoder_session_options()
    sess = phoenix_npu.make_session(str(path), device=device, threads=threads,
                                    free_dims={"batch_size": 1}, sess_options=so, precision=precision)
    try:
        summary = phoenix_npu.assignment_summary(sess)
        npu = summary.get(phoenix_npu.EP_NAME, {"nodes": 0, "subgraphs": 0})
        total = sum(s["nodes"] for s in summary.values())
        info = (f"{phoenix_npu.EP_NAME} (device={device}, precision={precision}): {npu['nodes']} of {total} encoder nodes "
                f"in {npu['subgraphs']} region(s)")
    except Exception:  # noqa: BLE001 - assignment info is optional
        info = f"{phoenix_npu.EP_NAME} (device={device}, precision={precision})"
    return sess, info


def load_model(model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto", bf16: bool = False,
               decoder_device: str = "cpu", threads: int = 0, progress: bool = True,
               precision: str = "bf16") -> Transcriber:
    """Load Whisper for transcription (the same as Transcriber(...))."""
    return Transcriber(model, device=device, bf16=bf16, decoder_device=decoder_device, threads=threads,
                       progress=progress, precision=precision)


def _count_windows(t: Transcriber) -> None:
    """Advance the progress bar (if any) on every encoder run (= one 30 s window)."""
    enc = t.model.encoder
    inner = enc.forward

    def forward(*args, **kwargs):
        out = inner(*args, **kwargs)
        t.windows_done += 1
        if t._bar is not None:
            t._bar.update(1)
        return out

    enc.forward = forward


# ----------------------------------------------------------------------------------------------
# Python API

def _windows(duration: float) -> int:
    if duration <= CHUNK_LENGTH_S:
        return 1
    stride = CHUNK_LENGTH_S / 6
    return 1 + math.ceil((duration - CHUNK_LENGTH_S) / (CHUNK_LENGTH_S - 2 * stride))


def transcribe(audio_paths: str | os.PathLike | Sequence[str | os.PathLike], model: str | os.PathLike = DEFAULT_MODEL,
               device: str = "auto", return_timestamps: bool = False, language: str | None = None,
               num_beams: int = 1, bf16: bool = False, decoder_device: str = "cpu", threads: int = 0,
               progress: bool | None = None, errors: str = "raise", transcriber: Transcriber | None = None,
               precision: str = "bf16") -> list[dict]:
    """Transcribe audio files. Returns one dict per file: {"path", "text", "chunks",
    "duration", "device", "encoder"}; chunks carry (start, end) seconds when return_timestamps.
    errors="raise" raises AudioError on an unreadable file; errors="keep" records it in the
    result's "error" and goes on. language: for multilingual models (None = detect).
    progress: a tqdm bar over 30 s windows (default: when stderr is a terminal)."""
    from .audio import AudioError, load_audio

    if isinstance(audio_paths, (str, os.PathLike)):
        audio_paths = [audio_paths]
    if errors not in ("raise", "keep"):
        raise ValueError("errors must be 'raise' or 'keep'")
    if progress is None:
        progress = sys.stderr.isatty()
    t = transcriber or load_model(model, device=device, bf16=bf16, decoder_device=decoder_device,
                                  threads=threads, progress=True, precision=precision)
    loaded: list[tuple[str, Any, str | None]] = []
    for p in audio_paths:
        try:
            loaded.append((str(p), load_audio(p), None))
        except AudioError as exc:
            if errors == "raise":
                raise
            loaded.append((str(p), None, str(exc)))
    total = sum(_windows(a.size / 16000) for _, a, _ in loaded if a is not None and a.size)
    results = []
    bar = None
    if progress and total > 1:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="window", desc="transcribing", file=sys.stderr)
    t._bar = bar
    try:
        for path, samples, error in loaded:
            base = {"path": path, "device": t.device, "encoder": t.encoder_info}
            if error is not None:
                results.append({**base, "text": "", "chunks": [], "duration": 0.0, "error": error})
                continue
            out = t.transcribe_array(samples, return_timestamps=return_timestamps, language=language, num_beams=num_beams)
            results.append({**base, **out, "duration": round(samples.size / 16000, 3)})
    finally:
        t._bar = None
        if bar is not None:
            bar.close()
    return results


# ----------------------------------------------------------------------------------------------
# output formats

def _stamp(seconds: float, sep: str) -> str:
    ms = round(max(0.0, seconds) * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(result: dict) -> str:
    lines = []
    for i, c in enumerate(_cues(result), 1):
        lines += [str(i), f"{_stamp(c[0], ',')} --> {_stamp(c[1], ',')}", c[2], ""]
    return "\n".join(lines)


def to_vtt(result: dict) -> str:
    lines = ["WEBVTT", ""]
    for start, end, text in _cues(result):
        lines += [f"{_stamp(start, '.')} --> {_stamp(end, '.')}", text, ""]
    return "\n".join(lines)


def _cues(result: dict) -> Iterable[tuple[float, float, str]]:
    chunks = result.get("chunks") or ([{"text": result["text"], "timestamp": (0.0, result.get("duration", 0.0))}]
                                      if result.get("text") else [])
    for c in chunks:
        text = c["text"].strip()
        if text:
            start, end = c["timestamp"]
            yield float(start), float(max(end, start)), text


def format_results(results: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(results if len(results) != 1 else results[0], indent=2, ensure_ascii=False) + "\n"
    if fmt == "text":
        if len(results) == 1:
            return results[0]["text"] + "\n"
        return "".join(f"{r['path']}: {r['text']}\n" for r in results)
    render = to_srt if fmt == "srt" else to_vtt
    return "\n".join(render(r) for r in results)


# ----------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser) -> None:
    parser.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg; mp3 where libsndfile reads it)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="tiny.en (default), base, or a Hugging Face / CTranslate2 / exported ONNX Whisper directory")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the encoder runs: auto (NPU if present, else the emulated NPU), emulator, npu, "
                             "or cpu (ORT's CPU EP, FP32)")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "bf16x3"),
                        help="encoder numerics on PhoenixNPU: bf16 (default, the NPU kernels) or bf16x3 (BF16 pairs, "
                             "FP32-grade output, about 2.9x the encoder time; emulated device only)")
    parser.add_argument("--format", default="text", choices=FORMATS, help="output format (default text)")
    parser.add_argument("--output", "-o", default=None,
                        help="output file (default stdout); a directory writes one file per input")
    parser.add_argument("--language", default=None, help="language code for multilingual models (default: detect)")
    parser.add_argument("--beam-size", type=int, default=1, help="beam search width (default 1, greedy)")
    parser.add_argument("--bf16", action="store_true", help="use the BF16-weight export of the encoder")
    parser.add_argument("--decoder-on-device", action="store_true",
                        help="give the decoder sessions the same providers as the encoder (default: CPU EP)")
    parser.add_argument("--threads", type=int, default=0, help="threads per session (0 = ORT's default)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from .checkpoint import ModelNotFoundError

    try:
        from ._library import ProviderError
    except ImportError:  # pragma: no cover
        ProviderError = RuntimeError
    fmt = args.format
    out_path = Path(args.output) if args.output else None
    per_file = out_path is not None and (out_path.is_dir() or str(args.output).endswith(os.sep))
    if out_path is not None and not per_file and len(args.audio) > 1 and fmt in ("srt", "vtt"):
        print(f"phoenix-npu transcribe: --format {fmt} with several inputs needs --output DIR/", file=sys.stderr)
        return 2
    try:
        results = transcribe(args.audio, model=args.model, device=args.device,
                             return_timestamps=fmt in ("srt", "vtt", "json"), language=args.language,
                             num_beams=args.beam_size, bf16=args.bf16,
                             decoder_device="same" if args.decoder_on_device else "cpu", threads=args.threads,
                             progress=False if args.no_progress else None, errors="keep",
                             precision=args.precision)
    except ProviderError as exc:
        print(f"phoenix-npu transcribe: the PhoenixNPU provider is not available for --device {args.device}:\n"
              f"  {exc}\n  Use --device cpu to transcribe on ONNX Runtime's CPU EP instead.", file=sys.stderr)
        return 1
    except ModelNotFoundError as exc:
        print(f"phoenix-npu transcribe: {exc}", file=sys.stderr)
        return 1
    failed = [r for r in results if r.get("error")]
    for r in failed:
        print(f"phoenix-npu transcribe: {r['error']}", file=sys.stderr)
    good = [r for r in results if not r.get("error")]
    if per_file:
        out_path.mkdir(parents=True, exist_ok=True)
        ext = {"text": "txt"}.get(fmt, fmt)
        for r in good:
            dst = out_path / (Path(r["path"]).stem + "." + ext)
            dst.write_text(format_results([r], fmt), encoding="utf-8")
            _say(f"wrote {dst}")
    elif good:
        text = format_results(good, fmt)
        if out_path is not None:
            out_path.write_text(text, encoding="utf-8")
            _say(f"wrote {out_path}")
        else:
            sys.stdout.write(text)
    return 1 if failed else 0
