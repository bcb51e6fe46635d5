"""Audio loading for Whisper: any audio file a user has -> mono float32 at 16 kHz.

    from phoenix_npu.whisper.audio import load_audio
    samples = load_audio("talk.m4a")        # np.float32, shape (n,), 16 kHz, mono

WAV, FLAC, Ogg (Vorbis, Opus) and MP3 are read with soundfile (libsndfile: the faster path,
downmixed and resampled with soxr block by block); everything else FFmpeg demuxes and decodes
(M4A/AAC, MP4, WebM, MKV, ... and any file libsndfile refuses) goes through PyAV, which
faster-whisper installs (its FFmpeg is bundled in the wheel). Any rate and channel count.

Errors are AudioError with a message a user can act on (missing file, not a regular file,
not audio, corrupt, implausible header, no audio stream). The header is checked before
anything is decoded: a sample rate no audio has, or more audio than `max_duration` seconds,
is refused before memory is spent on it (and again while decoding, as a header can lie).
Files with no samples give an empty array; very short clips are returned as they are
(Whisper pads every window to 30 s). FFmpeg only ever reads the file through a Python file
object: no protocol or URL in a name, or in a playlist inside a file, is followed.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

# Whisper's published audio front end (the same for every model with 80 or 128 mel bins).
SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30                                  # seconds per window
N_FRAMES = CHUNK_LENGTH * SAMPLE_RATE // HOP_LENGTH  # 3000 mel frames in a 30 s window

MIN_RATE = 1000                  # Hz; below this a header is wrong, not audio (telephony is 8000)
MAX_RATE = 768_000               # Hz; the highest rate audio interfaces record
MAX_DURATION = 8 * 3600          # seconds loaded at once (8 h at 16 kHz = 1.7 GiB of float32)
_BLOCK = 1 << 20                 # frames decoded at a time (then downmixed)


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


def _soxr(rate_in: int, rate_out: int):
    try:
        import soxr
    except ImportError as exc:
        raise AudioError(f"audio at {rate_in} Hz must be resampled to {rate_out} Hz, which needs soxr: "
                         "pip install soxr") from exc
    return soxr


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio (soxr, high quality)."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return _soxr(rate_in, rate_out).resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging the channels."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return np.ascontiguousarray(samples, dtype=np.float32)


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_audio_path(path: str | os.PathLike) -> Path:
    """`path` if it names a readable, non-empty regular file; AudioError saying what it is otherwise.
    Never opens the file (opening a FIFO would block)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _NOT_REGULAR if test(st.st_mode)), "not a regular file")
        raise AudioError(f"{path}: is {kind}, not a regular file; give an audio file "
                         "(to read a stream, save it to a file first)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: not readable (permission denied)")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), not audio")
    return path


# what libsndfile reads (MP3 where its version does); the rest goes to FFmpeg (PyAV)
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64",
                                ".rf64", ".caf"})
# what FFmpeg is asked first (containers libsndfile has no reader for)
FFMPEG_SUFFIXES = frozenset({".m4a", ".mp4", ".m4b", ".aac", ".webm", ".mkv", ".mka", ".mov", ".wma", ".amr", ".3gp",
                             ".ac3", ".ec3", ".mp2", ".ape", ".wv", ".tta", ".spx"})
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | FFMPEG_SUFFIXES


def load_audio(path: str | os.PathLike, sampling_rate: int = SAMPLE_RATE, max_duration: float = MAX_DURATION) -> np.ndarray:
    """Read an audio file (wav, flac, ogg/opus, mp3 through soundfile; m4a/aac, mp4, webm,
    mkv and whatever else FFmpeg reads through PyAV), downmix to mono and resample to
    `sampling_rate`. Returns float32 samples in [-1, 1]."""
    path = check_audio_path(path)
    if not _soundfile_first(path):
        return _load_av(path, sampling_rate, max_duration, None)
    sf = _soundfile()
    try:
        with sf.SoundFile(str(path)) as f:
            _check_header(path, f.samplerate, f.frames, max_duration)
            return _decode(path, f, sampling_rate, max_duration)
    except AudioError:
        raise
    except sf.LibsndfileError as exc:
        detail = str(exc)
        if "not recognised" in detail.lower() or "unsupported" in detail.lower() or "unknown format" in detail.lower():
            return _load_av(path, sampling_rate, max_duration, detail)  # a format libsndfile has no reader for
        raise AudioError(_explain(path, detail)) from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(_explain(path, str(exc))) from exc


def _soundfile_first(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in FFMPEG_SUFFIXES or _is_container(path):
        return False
    if suffix == ".mp3" and not mp3_supported():
        return False
    try:
        _soundfile()
    except AudioError:
        return False
    return True


def _is_container(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head[:4] == b"\x1aE\xdf\xa3" or head[4:8] == b"ftyp"  # Matroska/WebM, ISO BMFF (MP4, M4A, MOV)


def _av():
    try:
        import av
    except ImportError as exc:
        from ..extras import install_hint

        raise AudioError("reading this format needs PyAV (FFmpeg): "
                         f"{install_hint(ModuleNotFoundError(name='av')) or 'pip install av'}") from exc
    return av


def audio_duration(path: str | os.PathLike) -> float:
    """Seconds of audio per the file's header, without decoding (soundfile, else FFmpeg's
    demuxer); AudioError when the file cannot be read as audio."""
    path = check_audio_path(path)
    if _soundfile_first(path):
        sf = _soundfile()
        try:
            info = sf.info(str(path))
            return float(info.frames) / info.samplerate if info.samplerate else 0.0
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            pass  # FFmpeg may read it
    av = _av()
    try:
        with open(path, "rb") as f, av.open(f, mode="r", options=_AV_OPTIONS) as container:
            stream = _audio_stream(path, container)
            return _av_duration(container, stream) or 0.0
    except av.FFmpegError as exc:
        raise AudioError(_explain(path, str(exc))) from exc


# no protocol for FFmpeg to open another input with (a playlist or concat list inside a file)
_AV_OPTIONS = {"protocol_whitelist": "none"}


def _audio_stream(path: Path, container):
    if not container.streams.audio:
        raise AudioError(f"{path}: has no audio stream ({container.format.name}: "
                         f"{', '.join(s.type for s in container.streams) or 'no streams'})")
    return container.streams.audio[0]


def _av_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _load_av(path: Path, rate_out: int, max_duration: float, soundfile_detail: str | None) -> np.ndarray:
    """Decode the first audio stream with FFmpeg (PyAV), frame by frame: downmixed to mono
    float32 and resampled by FFmpeg's resampler as it goes, the header's rate and duration
    checked first and the decoded length all along."""
    av = _av()
    out, frames = [], 0
    try:
        with open(path, "rb") as f, av.open(f, mode="r", options=_AV_OPTIONS) as container:
            stream = _audio_stream(path, container)
            rate = stream.rate or stream.codec_context.sample_rate or 0
            duration = _av_duration(container, stream)
            _check_header(path, rate, int((duration or 0) * rate), max_duration)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
            for frame in container.decode(stream):
                frames += frame.samples
                _check_header(path, frame.sample_rate or rate, frames, max_duration)
                for piece in resampler.resample(frame):
                    out.append(piece.to_ndarray().reshape(-1))
            for piece in resampler.resample(None):
                out.append(piece.to_ndarray().reshape(-1))
    except AudioError:
        raise
    except av.FFmpegError as exc:
        raise AudioError(_explain(path, str(exc), soundfile_detail)) from exc
    samples = np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{path}: contains NaN or infinite samples (corrupt float audio)")
    return samples


def load_all(paths, errors: str = "raise") -> list[tuple[str, np.ndarray | None, str | None]]:
    """Every file read (and checked) up front, before a model is loaded: [(path, samples, None)],
    or with errors="keep" (path, None, reason) for a file that cannot be read."""
    if errors not in ("raise", "keep"):
        raise ValueError("errors must be 'raise' or 'keep'")
    loaded = []
    for p in paths:
        try:
            loaded.append((str(p), load_audio(p), None))
        except AudioError as exc:
            if errors == "raise":
                raise
            loaded.append((str(p), None, str(exc)))
    return loaded


def _decode(path: Path, f, rate_out: int, max_duration: float) -> np.ndarray:
    """Decode block by block, downmixing and resampling as it goes: memory holds the output
    and one block, never the file's channels at its own rate (nor more than the header said)."""
    stream = None
    if f.samplerate != rate_out:
        stream = _soxr(f.samplerate, rate_out).ResampleStream(f.samplerate, rate_out, 1, dtype="float32", quality="HQ")
    out, frames = [], 0
    for block in f.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
        frames += len(block)
        _check_header(path, f.samplerate, frames, max_duration)  # a header can understate the data
        mono = to_mono(block)
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{path}: contains NaN or infinite samples (corrupt float audio)")
        out.append(stream.resample_chunk(mono) if stream is not None else mono)
    if stream is not None:
        out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _check_header(path: Path, rate: int, frames: int, max_duration: float) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: declares a sample rate of {rate} Hz; audio is recorded at {MIN_RATE}-{MAX_RATE} Hz, "
                         "so the header is wrong (the file is corrupt or not what its name says)")
    duration = frames / rate
    if duration > max_duration:
        raise AudioError(f"{path}: {_span(duration)} of audio ({frames} samples at {rate} Hz); at most "
                         f"{_span(max_duration)} are loaded at once: split the file "
                         "(e.g. `ffmpeg -i IN -f segment -segment_time 3600 OUT%03d.wav`)")


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def _explain(path: Path, detail: str, soundfile_detail: str | None = None) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    known = {b"RIFF": "WAV", b"fLaC": "FLAC", b"OggS": "Ogg", b"ID3": "MP3", b"FORM": "AIFF",
             b"\x1aE\xdf\xa3": "Matroska/WebM"}
    kind = next((name for magic, name in known.items() if head.startswith(magic)), None)
    if kind is None and len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        kind = "MP3"
    if kind is None and head[4:8] == b"ftyp":
        kind = "MP4/M4A"
    if kind:
        return f"{path}: looks like {kind} but could not be decoded; the file is corrupt or truncated ({detail})"
    return (f"{path}: not an audio file soundfile or FFmpeg can read (wav, flac, ogg/opus, mp3, m4a/aac, mp4, "
            f"webm, mkv, ...) ({soundfile_detail + '; ' if soundfile_detail else ''}{detail})")
