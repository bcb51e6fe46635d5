"""One file's transcription: faster-whisper's typed results, and the JSON schema they are
written in.

    r = FileResult(path, segments, info, duration, device, encoder)   # faster.transcribe_file
    r.text, r.segments[0].start, r.segments[0].words, r.info.language
    r.to_json()          # the documented JSON object (docs/transcript-json.md), schema_version 1

`segments` are faster_whisper's `Segment`s (with their `Word`s when word timestamps were asked
for) and `info` its `TranscriptionInfo`, as `WhisperModel.transcribe()` returns them; a file
that failed has `error` (the reason) and no segments. The text, SRT, VTT and JSON writers
(formats.py) render from these. FileResult pickles (Ray workers return it).

This module imports no faster-whisper: a result is read and written without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The JSON schema's version: bumped when a field changes meaning or goes away (adding a field
# does not bump it). 1: 2026-12, the first versioned schema ("segments"; before it results had
# "chunks" with a "timestamp" pair and no "schema_version").
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FileResult:
    """One input file's result. segments: list[faster_whisper.transcribe.Segment]; info:
    faster_whisper.transcribe.TranscriptionInfo (None for a failed file)."""
    path: str
    segments: list = field(default_factory=list)
    info: Any = None
    duration: float = 0.0          # seconds of audio
    device: str = ""               # the device that ran the encoder ("auto" resolved)
    encoder: str = ""              # where the encoder ran, as the log line says it
    task: str = "transcribe"       # or "translate" (faster-whisper's info does not say)
    error: str | None = None       # why the file failed

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()

    @property
    def language(self) -> str | None:
        return getattr(self.info, "language", None)

    def to_json(self) -> dict:
        """The result as the documented JSON object (docs/transcript-json.md)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "path": self.path, "text": self.text,
                               "duration": round(float(self.duration), 3)}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update(language=self.language,
                       language_probability=_round(getattr(self.info, "language_probability", None), 4),
                       task=self.task,
                       device=self.device, encoder=self.encoder)
        out["segments"] = [segment_json(s) for s in self.segments]
        return out


def segment_json(s) -> dict:
    out = {"id": s.id, "start": _round(s.start, 3), "end": _round(s.end, 3), "text": s.text,
           "avg_logprob": _round(s.avg_logprob, 4), "compression_ratio": _round(s.compression_ratio, 4),
           "no_speech_prob": _round(s.no_speech_prob, 4), "temperature": s.temperature}
    if s.words is not None:
        out["words"] = [{"word": w.word, "start": _round(w.start, 3), "end": _round(w.end, 3),
                         "probability": _round(w.probability, 4)} for w in s.words]
    return out


def _round(x, digits: int):
    return None if x is None else round(float(x), digits)
