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


# The INT8 calibration / evaluation split of a speech set, so that calibration audio is never
# evaluated: in file-name order, clip i calibrates when i % 3 == 1 (of the 13 shared clips: 4,
# LibriVox, LJSpeech and two LibriSpeech recordings, 16.7 s); the other 9 are the INT8 WER set.
CALIBRATION_RULE = "speech clips in file-name order, clip i calibrates when i % 3 == 1; the rest evaluate"


def _split(speech_dir: str | os.PathLike | None = None) -> tuple[list[dict], list[dict]]:
    clips = sorted(read_manifest(speech_dir or default_speech_dir()), key=lambda c: Path(c["path"]).name)
    return [c for i, c in enumerate(clips) if i % 3 == 1], [c for i, c in enumerate(clips) if i % 3 != 1]


def calibration_clips(speech_dir: str | os.PathLike | None = None) -> list[dict]:
    """The clips of the speech set that calibrate (CALIBRATION_RULE): [{"path", "reference", ...}]."""
    return _split(speech_dir)[0]


def evaluation_clips(speech_dir: str | os.PathLike | None = None) -> list[dict]:
    """The clips of the speech set never used for calibration: the INT8 WER set."""
    return _split(speech_dir)[1]


def calibration_paths(speech_dir: str | os.PathLike | None = None) -> list[str]:
    """calibration_clips' audio paths, as phoenix_npu's `calibration_audio` takes them."""
    return [c["path"] for c in calibration_clips(speech_dir)]
