"""The Optimum integration: Whisper through Optimum's ORTModelForSpeechSeq2Seq and a
transformers automatic-speech-recognition pipeline, with the encoder on PhoenixNPU.

Not the transcription engine: `phoenix-npu transcribe` and the Python API use
phoenix_npu.whisper.WhisperModel (faster-whisper). This module is the library form of what
the design asks of Optimum (tests/test_whisper_optimum.py): the exported model in Optimum
with the provider, a transformers pipeline over it, Optimum's default exports, and the
decoders on the provider (claim_decoders) for measurement. The developer tools (bench, WER)
compare against it.

    from phoenix_npu.whisper.optimum_pipeline import Transcriber, transcribe
    [result] = transcribe(["talk.wav"], model="tiny.en", device="auto")
    result["text"], result["chunks"]        # chunks: [{"text", "timestamp": (start, end)}]

The encoder session gets PhoenixNPU first and the CPU EP for what it does not take, with its
symbolic batch and frame dims pinned; the decoder sessions run on ORT's CPU EP unless
`decoder_device="same"` (then they get the provider with claim_decoders=1: per-token steps were
measured slower there, docs/benchmarks.md). `device="cpu"` is the FP32 reference: the CPU EP
for everything. Sessions never fall back to the CPU EP quietly (phoenix_npu.make_session).
"""
from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .audio import CHUNK_LENGTH, SAMPLE_RATE
from .options import DEFAULT_MODEL, DEVICES, PRECISIONS

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# model loading

class Transcriber:
    """A loaded Whisper: the Optimum model with the encoder on `device`, its processor, and a
    transformers ASR pipeline over them. Load once, transcribe many:

        t = Transcriber("base", device="emulator")
        t.transcribe_array(samples)["text"]          # 16 kHz mono float32
        t.transcribe(["a.wav", "b.flac"])            # list of result dicts

    `model`: tiny.en, base, a Hugging Face / CTranslate2 Whisper directory, or an exported
    ONNX directory (this project's export or Optimum's default one; imported / exported once
    and cached as needed). decoder_device: "cpu" (default) or "same" (the decoder sessions
    get the same providers as the encoder). precision: "bf16" (default, the NPU's kernels) or
    "bf16x3" (every tensor a BF16 pair: FP32-grade encoder output at about 2.9x the emulated
    encoder time; emulated device only). int8: True for the model's INT8 (QDQ) encoder
    (int8.int8_encoder_path), or the path of a QDQ encoder .onnx the user made."""

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto", bf16: bool = False,
                 decoder_device: str = "cpu", threads: int = 0, precision: str = "bf16",
                 int8: bool | str | os.PathLike = False):
        from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
        from optimum.onnxruntime.modeling_seq2seq import ORTModelForWhisper
        from transformers import AutoConfig, GenerationConfig, WhisperProcessor, pipeline

        from .export import ensure_exported

        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
        if decoder_device not in ("cpu", "same"):
            raise ValueError("decoder_device must be 'cpu' or 'same'")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.device = device
        self.windows_done = 0
        self._bar = None
        if bf16 and precision == "bf16x3":
            log.warning("the --bf16 export rounds the encoder weights to BF16; precision=bf16x3 cannot "
                        "restore those bits (use the FP32 export for FP32-grade encoder output)")
        self.onnx_dir = ensure_exported(model, bf16=bf16)
        encoder_path = None
        if int8:  # True: the model's cached INT8 encoder; a path: a QDQ encoder the user made
            from .int8 import int8_encoder_path

            encoder_path = int8_encoder_path(model if int8 is True else int8)
        # device_ran: "auto" resolved, what results report
        encoder, self.encoder_info, self.device_ran = _encoder_session(self.onnx_dir, device, threads, precision,
                                                                       encoder_path)
        decoders = _decoder_sessions(self.onnx_dir, device if decoder_device == "same" else "cpu", threads)

        config = AutoConfig.from_pretrained(self.onnx_dir)
        config.use_cache = True
        config.is_encoder_decoder = True
        gen = GenerationConfig.from_pretrained(self.onnx_dir)
        gen.use_cache = True
        cls = ORTModelForWhisper if config.model_type == "whisper" else ORTModelForSpeechSeq2Seq
        self.model = cls(config=config, encoder_session=encoder, generation_config=gen,
                         model_save_dir=str(self.onnx_dir), **decoders)
        self.processor = WhisperProcessor.from_pretrained(self.onnx_dir)
        self.pipeline = pipeline("automatic-speech-recognition", model=self.model, tokenizer=self.processor.tokenizer,
                                 feature_extractor=self.processor.feature_extractor, device="cpu")
        self.multilingual = bool(getattr(gen, "is_multilingual", False))
        _count_windows(self)
        log.info("encoder: %s", self.encoder_info)

    def transcribe_array(self, samples, return_timestamps: bool = False, language: str | None = None,
                         num_beams: int = 1, chunk_length_s: float | None = None) -> dict:
        """Transcribe 16 kHz mono float32 samples: {"text", "chunks"}; audio over 30 s is
        decoded sequentially, window after window (_long_form; timestamp tokens are needed to
        know where each window ends, whatever the output); chunks carry (start, end) seconds
        when return_timestamps. chunk_length_s: transformers' chunked pipeline instead."""
        import numpy as np

        samples = np.asarray(samples, dtype=np.float32)
        if samples.size == 0:
            return {"text": "", "chunks": []}
        duration = samples.size / SAMPLE_RATE
        if duration > CHUNK_LENGTH and chunk_length_s is None:
            # with or without timestamps in the result: the chunked pipeline without timestamps
            # repeats and drops speech at its window seams (tiny.en, 217 s of read speech:
            # WER 97 % against 5 % for the sequential decoding)
            out = self._long_form(samples, duration, language, num_beams)
            return out if return_timestamps else {**out, "chunks": []}
        kwargs: dict[str, Any] = {}
        if chunk_length_s is None and duration > CHUNK_LENGTH:
            chunk_length_s = CHUNK_LENGTH
        if chunk_length_s:
            kwargs["chunk_length_s"] = chunk_length_s
        out = self.pipeline({"raw": samples, "sampling_rate": SAMPLE_RATE}, return_timestamps=return_timestamps,
                            generate_kwargs=self._decoding(num_beams, language), **kwargs)
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

    def _decoding(self, num_beams: int, language: str | None) -> dict[str, Any]:
        """generate() settings: English-only models take no task or language (transformers
        refuses them); multilingual ones transcribe, in `language` or the one detected."""
        out: dict[str, Any] = {"num_beams": int(num_beams)}
        if self.multilingual:
            out["task"] = "transcribe"
            if language:
                out["language"] = language
        return out

    def _long_form(self, samples, duration: float, language: str | None, num_beams: int) -> dict:
        """Audio over 30 s with timestamps: Whisper's own sequential long-form decoding (30 s
        windows, each starting where the last segment ended). The chunked pipeline merges
        overlapping windows and, with timestamps, returns a few long cues (seen with tiny.en:
        one cue over the first 45 s, on PyTorch as on ONNX Runtime)."""
        feats = self.processor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt", truncation=False,
                               padding="longest", return_attention_mask=True)
        out = self.model.generate(feats.input_features, attention_mask=feats.attention_mask,
                                  **self._decoding(num_beams, language), return_timestamps=True, return_segments=True)
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


def _encoder_session(onnx_dir: Path, device: str, threads: int = 0, precision: str = "bf16", encoder_path=None):
    """The encoder session, the line saying where it runs and the device that runs it
    (phoenix_npu.device_ran). Symbolic batch / frame dims are pinned (1, 3000): transcription
    feeds one 30 s window at a time."""
    import phoenix_npu

    from .export import ENCODER, encoder_free_dims

    path = Path(encoder_path) if encoder_path else onnx_dir / ENCODER
    opts = {} if device == "cpu" else {"precision": precision}
    sess = phoenix_npu.make_session(str(path), device=device, threads=threads, free_dims=encoder_free_dims(path),
                                    sess_options=_threads_options(threads), **opts)
    int8 = " INT8 QDQ" if encoder_path else ""
    if device == "cpu":
        return sess, f"CPUExecutionProvider ({'INT8 QDQ' if encoder_path else 'FP32'})", "cpu"
    where = phoenix_npu.describe_assignment(sess).replace(" nodes", " encoder nodes", 1)
    ran = phoenix_npu.device_ran(sess, device)
    shown = phoenix_npu.device_label(device, ran)
    return sess, f"{phoenix_npu.EP_NAME} (device={shown}, precision={precision}{int8}): {where}", ran


def _decoder_sessions(onnx_dir: Path, device: str, threads: int = 0) -> dict:
    """Optimum's decoder sessions: the merged decoder when the export has one, else the plain
    decoder and the decoder with past."""
    import phoenix_npu

    from .export import DECODER, DECODER_MERGED, DECODER_WITH_PAST

    def session(name):
        extra = {} if device == "cpu" else {"claim_decoders": "1"}  # asked for: the provider declines them by default
        return phoenix_npu.make_session(str(onnx_dir / name), device=device, threads=threads,
                                        sess_options=_threads_options(threads), **extra)

    if (onnx_dir / DECODER_MERGED).is_file():
        return {"decoder_session": session(DECODER_MERGED)}
    out = {"decoder_session": session(DECODER)}
    if (onnx_dir / DECODER_WITH_PAST).is_file():
        out["decoder_with_past_session"] = session(DECODER_WITH_PAST)
    return out


def _threads_options(threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    return so


def load_model(model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto", bf16: bool = False,
               decoder_device: str = "cpu", threads: int = 0, precision: str = "bf16",
               int8: bool | str | os.PathLike = False) -> Transcriber:
    """Load Whisper for transcription (the same as Transcriber(...))."""
    return Transcriber(model, device=device, bf16=bf16, decoder_device=decoder_device, threads=threads,
                       precision=precision, int8=int8)


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
    if duration <= CHUNK_LENGTH:
        return 1
    stride = CHUNK_LENGTH / 6
    return 1 + math.ceil((duration - CHUNK_LENGTH) / (CHUNK_LENGTH - 2 * stride))


def transcribe(audio_paths: str | os.PathLike | Sequence[str | os.PathLike], model: str | os.PathLike = DEFAULT_MODEL,
               device: str = "auto", return_timestamps: bool = False, language: str | None = None,
               num_beams: int = 1, bf16: bool = False, decoder_device: str = "cpu", threads: int = 0,
               progress: bool | None = None, errors: str = "raise", transcriber: Transcriber | None = None,
               precision: str = "bf16", int8: bool | str | os.PathLike = False) -> list[dict]:
    """Transcribe audio files. Returns one dict per file: {"path", "text", "chunks",
    "duration", "device", "encoder"}; chunks carry (start, end) seconds when return_timestamps.
    errors="raise" raises AudioError on an unreadable file; errors="keep" records it in the
    result's "error" and goes on. language: for multilingual models (None = detect).
    progress: a tqdm bar over 30 s windows (default: when stderr is a terminal).
    iter_transcribe() takes the same arguments and yields each result as it is finished."""
    return list(iter_transcribe(audio_paths, model=model, device=device, return_timestamps=return_timestamps,
                                language=language, num_beams=num_beams, bf16=bf16, decoder_device=decoder_device,
                                threads=threads, progress=progress, errors=errors, transcriber=transcriber,
                                precision=precision, int8=int8))


def iter_transcribe(audio_paths: str | os.PathLike | Sequence[str | os.PathLike],
                    model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto", return_timestamps: bool = False,
                    language: str | None = None, num_beams: int = 1, bf16: bool = False, decoder_device: str = "cpu",
                    threads: int = 0, progress: bool | None = None, errors: str = "raise",
                    transcriber: Transcriber | None = None, precision: str = "bf16",
                    int8: bool | str | os.PathLike = False):
    """transcribe(), yielding each file's result as soon as it is finished. Every file is read
    (and checked) before the model is loaded; when none is readable the model is not loaded."""
    from .audio import load_all

    if isinstance(audio_paths, (str, os.PathLike)):
        audio_paths = [audio_paths]
    if progress is None:
        progress = sys.stderr.isatty()
    loaded = load_all(audio_paths, errors)
    t = transcriber
    if t is None and any(error is None for _, _, error in loaded):
        t = load_model(model, device=device, bf16=bf16, decoder_device=decoder_device, threads=threads,
                       precision=precision, int8=int8)
    total = sum(_windows(a.size / SAMPLE_RATE) for _, a, _ in loaded if a is not None and a.size)
    bar = None
    if progress and total > 1:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="window", desc="transcribing", file=sys.stderr)
    if t is not None:
        t._bar = bar
    try:
        for path, samples, error in loaded:
            base = {"path": path, "device": t.device_ran if t else device, "encoder": t.encoder_info if t else ""}
            if error is not None:
                yield {**base, "text": "", "chunks": [], "duration": 0.0, "error": error}
                continue
            out = t.transcribe_array(samples, return_timestamps=return_timestamps, language=language, num_beams=num_beams)
            yield {**base, **out, "duration": round(samples.size / SAMPLE_RATE, 3)}
    finally:
        if t is not None:
            t._bar = None
        if bar is not None:
            bar.close()
