"""The developers' speech clips (a folder with manifest.tsv: filename, duration_seconds,
reference_transcript): where they are and what they say. Used by the WER tool, the INT8
calibration/evaluation split and the tests; the installed code never needs them.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path


def default_speech_dir() -> Path:
    """$PHOENIX_NPU_SPEECH, else shared/speech beside the repository."""
    env = os.environ.get("PHOENIX_NPU_SPEECH")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "speech"
        if (cand / "manifest.tsv").is_file():
            return cand
    return Path("../shared/speech")


def read_manifest(speech_dir: str | os.PathLike) -> list[dict]:
    """[{"path", "reference", "duration"}] from speech_dir/manifest.tsv."""
    speech_dir = Path(speech_dir)
    manifest = speech_dir / "manifest.tsv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: give --speech-dir a folder with manifest.tsv")
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [{"path": str(speech_dir / r["filename"]), "reference": r["reference_transcript"],
             "duration": float(r.get("duration_seconds") or 0)} for r in rows]
