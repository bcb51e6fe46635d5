"""WhisperX's pipeline (VAD, batched transcription) with the Whisper encoder on PhoenixNPU.

    from phoenix_npu.whisper.whisperx_support import load_model
    pipeline = load_model("base", encoder_device="emulator", threads=2, language="en")
    result = pipeline.transcribe(audio, batch_size=4)      # whisperx's result dict

WhisperX runs faster-whisper's model through its own subclass (whisperx.asr.WhisperModel,
which adds batched generation) and accepts a ready model in `whisperx.load_model(...,
model=...)`. This module builds a model that is both: phoenix_npu.whisper.WhisperModel first
in the method order (so `encode` runs on PhoenixNPU), whisperx.asr.WhisperModel next (its
batched generation), and hands it to whisperx.load_model. WhisperX's VAD (pyannote, its
bundled weights) and its pipeline are used unchanged; alignment (whisperx.align) and
diarization take the result as they would from WhisperX itself, but download their models
from the Hugging Face Hub.

WhisperX 3.8 pins torch ~2.8, so it lives in its own environment (README, "WhisperX").
"""
from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)


@functools.cache
def model_class():
    """phoenix_npu.whisper.WhisperModel + whisperx.asr.WhisperModel, in that order."""
    from whisperx.asr import WhisperModel as WhisperXModel

    from .faster import WhisperModel

    return type("PhoenixWhisperXModel", (WhisperModel, WhisperXModel), {
        "__doc__": "WhisperX's batched model with the encoder on PhoenixNPU (phoenix_npu.whisper.WhisperModel)."})


def load_model(model: str | os.PathLike = "base", encoder_device: str = "auto", precision: str = "bf16",
               threads: int = 0, compute_type: str = "float32", language: str | None = None,
               task: str = "transcribe", encoder_model: str | os.PathLike | None = None, **whisperx_kwargs):
    """whisperx.load_model(...) with the encoder on PhoenixNPU: a whisperx FasterWhisperPipeline.
    `model`: tiny.en, base or a CTranslate2 Whisper directory (as for WhisperModel).
    whisperx_kwargs go to whisperx.load_model (asr_options, vad_method, vad_model, vad_options)."""
    import whisperx

    fw_model = model_class()(str(model), device="cpu", compute_type=compute_type, cpu_threads=threads,
                             encoder_device=encoder_device, precision=precision, encoder_model=encoder_model)
    if str(model).endswith(".en"):
        language = "en"
    log.info("WhisperX pipeline with the encoder on %s", fw_model.encoder_info)
    return whisperx.load_model(str(model), device="cpu", compute_type=compute_type, model=fw_model,
                               language=language, task=task, threads=threads, **whisperx_kwargs)
