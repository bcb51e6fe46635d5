"""Transcription results as text, SRT, VTT or JSON.

    from phoenix_npu.whisper.formats import format_results
    format_results(results, "srt")
"""
from __future__ import annotations

import json
from collections.abc import Iterable

FORMATS = ("text", "srt", "vtt", "json")
EXTENSIONS = {"text": "txt", "srt": "srt", "vtt": "vtt", "json": "json"}

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


def format_result(result: dict, fmt: str) -> str:
    """One input's own output file (an output directory holds one per input): JSON is one object."""
    if fmt == "json":
        return json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    return format_results([result], fmt)


def format_results(results: list[dict], fmt: str) -> str:
    """The one document that goes to stdout or to a single --output file: JSON is always an array
    (one object per input, however many inputs), so a reader never has to guess its shape."""
    if fmt == "json":
        return json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    if fmt == "text":
        if len(results) == 1:
            return results[0]["text"] + "\n"
        return "".join(f"{r['path']}: {r['text']}\n" for r in results)
    render = to_srt if fmt == "srt" else to_vtt
    return "\n".join(render(r) for r in results)


