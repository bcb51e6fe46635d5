"""Audio loading for Whisper: any file soundfile (libsndfile) reads -> mono float32 at 16 kHz.

    from phoenix_npu.audio import load_audio
    samples = load_audio("talk.flac")        # np.float32, shape (n,), 16 kHz, mono

Errors are AudioError with a message a user can act on (missing file, not audio, corrupt,
unsupported format and what to install). Empty files give an empty array; very short clips
are returned as they are (Whisper pads every window to 30 s).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """An audio file could not be read; the message names the file and says why."""


def _soundfile():
    try:
        import soundfile
    except ImportError as exc:  # the wheel bundles libsndfile; the import fails only if it is absent
        raise AudioError("reading audio needs soundfile: pip install soundfile") from exc
    except OSError as exc:  # soundfile installed but libsndfile missing
        raise AudioError(f"soundfile could not load libsndfile ({exc}): pip install --force-reinstall "
                         "soundfile, or apt-get install libsndfile1") from exc
    return soundfile


def mp3_supported() -> bool:
    """Whether this libsndfile reads MP3 (libsndfile >= 1.1 does)."""
    try:
        return "MP3" in _soundfile().available_formats()
    except AudioError:
        return False


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio (soxr, high quality)."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    try:
        import soxr
    except ImportError as exc:
        raise AudioError(f"audio at {rate_in} Hz must be resampled to {rate_out} Hz, which needs soxr: "
                         "pip install soxr") from exc
    return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging the channels."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(path: str | os.PathLike, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file (wav, flac, ogg, and mp3 where libsndfile supports it), downmix to
    mono and resample to `sampling_rate`. Returns float32 samples in [-1, 1]."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), not audio")
    sf = _soundfile()
    suffix = path.suffix.lower()
    if suffix == ".mp3" and not mp3_supported():
        raise AudioError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot read MP3; "
                         "pip install --upgrade soundfile (its wheels bundle libsndfile >= 1.1 with MP3), "
                         "or convert the file to WAV/FLAC (e.g. with ffmpeg or sox)")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(_explain(path, str(exc))) from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(_explain(path, str(exc))) from exc
    mono = to_mono(samples)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{path}: contains NaN or infinite samples (corrupt float audio)")
    return resample(mono, int(rate), sampling_rate)


def _explain(path: Path, detail: str) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    known = {b"RIFF": "WAV", b"fLaC": "FLAC", b"OggS": "Ogg", b"ID3": "MP3", b"FORM": "AIFF"}
    kind = next((name for magic, name in known.items() if head.startswith(magic)), None)
    if kind is None and len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        kind = "MP3"
    if kind:
        return f"{path}: looks like {kind} but could not be decoded; the file is corrupt or truncated ({detail})"
    if head[:4] in (b"\x1aE\xdf\xa3",) or head[4:8] == b"ftyp":
        return (f"{path}: a video/container format (MP4, M4A, WebM or MKV) that libsndfile does not read; "
                "extract the audio first, e.g. `ffmpeg -i IN -ar 16000 -ac 1 OUT.wav`")
    return f"{path}: not an audio file soundfile can read (wav, flac, ogg, mp3) ({detail})"
