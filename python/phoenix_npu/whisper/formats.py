"""Transcription results (results.FileResult) as text, SRT, VTT or JSON.

    from phoenix_npu.whisper.formats import format_results
    format_results(results, "srt")

Times come from faster-whisper's segments (start, end in seconds); JSON is the versioned
schema of FileResult.to_json (docs/transcript-json.md).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .results import FileResult

FORMATS = ("text", "srt", "vtt", "json")
EXTENSIONS = {"text": "txt", "srt": "srt", "vtt": "vtt", "json": "json"}


def _stamp(seconds: float, sep: str) -> str:
    ms = round(max(0.0, seconds) * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(result: FileResult) -> str:
    lines = []
    for i, (start, end, text) in enumerate(_cues(result), 1):
        lines += [str(i), f"{_stamp(start, ',')} --> {_stamp(end, ',')}", text, ""]
    return "\n".join(lines)


def to_vtt(result: FileResult) -> str:
    lines = ["WEBVTT", ""]
    for start, end, text in _cues(result):
        lines += [f"{_stamp(start, '.')} --> {_stamp(end, '.')}", text, ""]
    return "\n".join(lines)


def _cues(result: FileResult) -> Iterable[tuple[float, float, str]]:
    for s in result.segments:
        text = s.text.strip()
        if text:
            start = float(s.start)
            yield start, max(float(s.end), start), text


def format_result(result: FileResult, fmt: str) -> str:
    """One input's own output file (an output directory holds one per input): JSON is one object."""
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    return format_results([result], fmt)


def format_results(results: Sequence[FileResult], fmt: str) -> str:
    """The one document that goes to stdout or to a single --output file: JSON is always an array
    (one object per input, however many inputs), so a reader never has to guess its shape."""
    if fmt == "json":
        return json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False) + "\n"
    if fmt == "text":
        if len(results) == 1:
            return results[0].text + "\n"
        return "".join(f"{r.path}: {r.text}\n" for r in results)
    render = to_srt if fmt == "srt" else to_vtt
    return "\n".join(render(r) for r in results)
