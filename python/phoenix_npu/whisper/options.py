"""How to transcribe: one frozen options object, one name per option.

    from phoenix_npu.whisper.options import TranscribeOptions
    options = TranscribeOptions(model="base", device="emulator", beam_size=5, word_timestamps=True)

`phoenix-npu transcribe` builds it once from its arguments (transcribe_cli.build_options); the
Python API takes it as it is. The batch runner hands it unchanged to the worker that loads the
model and transcribes (batch.LocalTranscriber, in this process or in a Ray actor: it pickles).
The engine is phoenix_npu.whisper.WhisperModel: faster-whisper with the encoder on PhoenixNPU.

This module imports nothing heavy (the CLI's parser reads its choices).
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "tiny.en"
DEVICES = ("auto", "emulator", "npu", "cpu")   # where the encoder runs (cpu: ORT's CPU EP, FP32)
PRECISIONS = ("bf16", "bf16x3")                # the encoder's numerics on PhoenixNPU
TASKS = ("transcribe", "translate")
# CTranslate2 compute types of the decoder ("auto": CTranslate2's fastest for the device, int8 on a
# CPU). The default is float32 (stock faster-whisper's numerics), int8 with --int8: the int8
# decoder takes 0.6-0.8x the time, but on tiny.en's long-form decoding its WER was 8.4 % against
# 3.2 % (2.4 min of the shared clips; base: 1.3 % against 2.6 %; docs/benchmarks.md, 2026-12-07).
DECODERS = ("auto", "int8", "int16", "float32")


@dataclass(frozen=True)
class TranscribeOptions:
    """What a transcription run needs to load the model and decode.

    model            tiny.en, base, a faster-whisper size name or a Hub id of CTranslate2
                     weights (downloaded by faster-whisper), or a CTranslate2 or Hugging Face
                     Whisper directory
    device           where the encoder runs: DEVICES
    precision        the encoder's numerics on PhoenixNPU: PRECISIONS
    decoder          CTranslate2's compute type for the decoder: DECODERS (None: float32, stock
                     faster-whisper's numerics; int8 with int8)
    int8             INT8 end to end: the INT8 (QDQ) encoder (`encoder_model`, or the model's
                     own, quantized and cached on first use) and, unless `decoder` says
                     otherwise, CTranslate2's int8 decoder
    encoder_model    an encoder ONNX file to use instead of the model's export (with int8: a QDQ one)
    threads          threads per session (0: ONNX Runtime's and CTranslate2's defaults)
    language         language code (None: detected; English-only models: en)
    task             transcribe, or translate (to English)
    beam_size        beam search width (1: greedy)
    word_timestamps  per-word start and end times
    vad              skip non-speech (faster-whisper's Silero VAD filter)
    timestamps       decode with Whisper's timestamp tokens (segments with times); audio over
                     30 s always is (long-form decoding needs them)
    """
    model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: str = "bf16"
    decoder: str | None = None
    int8: bool = False
    encoder_model: str | None = None
    threads: int = 0
    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 1
    word_timestamps: bool = False
    vad: bool = False
    timestamps: bool = True

    def __post_init__(self) -> None:
        for name, value, allowed in (("device", self.device, DEVICES), ("precision", self.precision, PRECISIONS),
                                     ("task", self.task, TASKS),
                                     ("decoder", self.compute_type, DECODERS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if int(self.beam_size) < 1:
            raise ValueError(f"beam_size must be 1 or more, not {self.beam_size}")
        if int(self.threads) < 0:
            raise ValueError(f"threads must be 0 (the default) or more, not {self.threads}")
        # paths as strings: the object pickles the same everywhere and compares by value
        object.__setattr__(self, "model", str(self.model))
        if self.encoder_model is not None:
            object.__setattr__(self, "encoder_model", str(self.encoder_model))

    @property
    def compute_type(self) -> str:
        """The decoder's CTranslate2 compute type: `decoder`, else int8 with int8 and float32
        without. Derived, not stored, so that replace(options, int8=True) gets the int8 decoder."""
        return self.decoder or ("int8" if self.int8 else "float32")
