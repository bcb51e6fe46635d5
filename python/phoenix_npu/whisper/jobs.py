"""What a batch run hands to its executors and gets back: a Job (one input file and where its
result goes), an Outcome (its result or why it failed), and the Factory that builds a
worker's "transcribe one file" callable. batch (the run) and cluster (Ray actors) both import
it; it imports nothing of theirs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

# a worker's "transcribe one file" callable: path -> its result (results.FileResult for the
# default LocalTranscriber; any picklable value for another factory)
Factory = Callable[[], Callable[[str], Any]]


@dataclass
class Job:
    """One input file: its path, the output name it maps to (relative, no extension), its
    target file (with an output folder) and its duration from the header (0 if unknown)."""
    path: str
    name: str
    target: Path | None = None
    duration: float = 0.0


@dataclass
class Outcome:
    """What an executor yields per file: the result, or the reason it failed."""
    job: Job
    result: Any = None
    error: str | None = None
    seconds: float = 0.0          # time spent on it by the worker
    worker: str = ""              # which worker (host:pid)


def failure_reason(exc: BaseException) -> str:
    from .audio import AudioError  # noqa: PLC0415  (audio imports numpy only)

    return str(exc) if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"
