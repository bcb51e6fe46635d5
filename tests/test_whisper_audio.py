"""Bad and unusual audio inputs: a transcript or a clear error, never a crash."""
from __future__ import annotations

import numpy as np
import pytest
from _whisper import needs_speech, needs_tiny_en, needs_whisper, speech_dir

pytestmark = [pytest.mark.whisper, needs_whisper]


@pytest.fixture
def files(tmp_path):
    import soundfile as sf

    f = {}
    f["missing"] = tmp_path / "missing.wav"
    f["empty_file"] = tmp_path / "empty.wav"
    f["empty_file"].write_bytes(b"")
    f["text"] = tmp_path / "notes.wav"
    f["text"].write_text("this is not audio, just text pretending to be a wav file\n" * 20)
    f["mp4"] = tmp_path / "clip.m4a"
    f["mp4"].write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 200)
    good = (speech_dir() / "jfk.wav")
    if good.is_file():
        f["corrupt"] = tmp_path / "corrupt.wav"
        f["corrupt"].write_bytes(good.read_bytes()[:30])
    f["zero_samples"] = tmp_path / "zero.wav"
    sf.write(f["zero_samples"], np.zeros(0, np.float32), 16000)
    f["silence"] = tmp_path / "silence.wav"
    sf.write(f["silence"], np.zeros(3 * 16000, np.float32), 16000)
    f["dir"] = tmp_path
    return f


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"),
    ("empty_file", "empty file"),
    ("text", "not an audio file"),
    ("mp4", "looks like MP4/M4A but could not be decoded"),
    ("corrupt", "corrupt"),
    ("dir", "is a directory"),
])
def test_unreadable_files_give_clear_errors(files, kind, message):
    from phoenix_npu.whisper.audio import AudioError, load_audio

    if kind not in files:
        pytest.skip("speech clips not found")
    with pytest.raises(AudioError, match=message) as exc:
        load_audio(files[kind])
    assert str(files[kind]) in str(exc.value)


def test_zero_length_wav_loads_empty(files):
    from phoenix_npu.whisper.audio import load_audio

    assert load_audio(files["zero_samples"]).shape == (0,)


@needs_speech()
def test_stereo_48k_is_downmixed_and_resampled(tmp_path):
    import soundfile as sf
    from phoenix_npu.whisper.audio import load_audio, resample

    mono = load_audio(speech_dir() / "jfk.wav")
    hi = resample(mono, 16000, 48000)
    sf.write(tmp_path / "st48.wav", np.stack([hi, 0.5 * hi], axis=1), 48000, subtype="PCM_24")
    got = load_audio(tmp_path / "st48.wav")
    assert abs(got.size - mono.size) <= 2
    n = min(got.size, mono.size)
    corr = np.corrcoef(got[:n], 0.75 * mono[:n])[0, 1]
    assert corr > 0.99


@needs_tiny_en
@needs_speech()
def test_unusual_audio_transcribes_without_crashing(files, tmp_path):
    import soundfile as sf
    from phoenix_npu.whisper.audio import AudioError, load_audio, mp3_supported, resample
    from phoenix_npu.whisper.faster import iter_transcribe, load_model
    from phoenix_npu.whisper.options import TranscribeOptions

    mono = load_audio(speech_dir() / "jfk.wav")
    hi = resample(mono, 16000, 48000)
    sf.write(tmp_path / "st48.wav", np.stack([hi, 0.5 * hi], axis=1), 48000)
    sf.write(tmp_path / "short.wav", mono[16000:17600], 16000)  # 0.1 s
    paths = [tmp_path / "st48.wav", tmp_path / "short.wav", files["silence"], files["zero_samples"],
             files["missing"], files["text"]]
    if mp3_supported():
        sf.write(tmp_path / "jfk.mp3", mono, 16000, format="MP3")
        paths.append(tmp_path / "jfk.mp3")
    m = load_model(TranscribeOptions(model="tiny.en", device="cpu", threads=2))
    res = {r.path: r for r in iter_transcribe(paths, whisper_model=m, errors="keep")}
    assert "ask not what your country" in res[str(tmp_path / "st48.wav")].text.lower()
    assert isinstance(res[str(tmp_path / "short.wav")].text, str)
    assert isinstance(res[str(files["silence"])].text, str)
    zero = res[str(files["zero_samples"])]
    assert zero.error is None and zero.text == "" and zero.duration == 0 and zero.segments == []
    assert "no such file" in res[str(files["missing"])].error
    assert "not an audio file" in res[str(files["text"])].error
    if mp3_supported():
        assert "ask not what your country" in res[str(tmp_path / "jfk.mp3")].text.lower()
    with pytest.raises(AudioError):
        list(iter_transcribe([files["missing"]], whisper_model=m))


def _wav_header(rate: int, data_bytes: int, channels: int = 1, bits: int = 16) -> bytes:
    import struct

    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits) +
            b"data" + struct.pack("<I", data_bytes))


def test_not_regular_files_say_what_they_are(tmp_path):
    """/dev/zero (endless) and a FIFO (blocks on open) are named as what they are, without
    being opened, not reported as an "empty file"."""
    import os

    from phoenix_npu.whisper.audio import AudioError, load_audio

    with pytest.raises(AudioError, match="/dev/zero: is a character device, not a regular file"):
        load_audio("/dev/zero")
    fifo = tmp_path / "stream.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match=r"stream.wav: is a named pipe \(FIFO\), not a regular file"):
        load_audio(fifo)  # returns at once: opening it would wait for a writer forever


def test_implausible_rate_is_refused_before_decoding(tmp_path):
    """800 KB of samples declaring 1 Hz would be 111 hours, 25 GB once resampled to 16 kHz:
    the header is refused before anything is decoded."""
    import resource
    import time

    from phoenix_npu.whisper.audio import AudioError, load_audio

    path = tmp_path / "one_hz.wav"
    data = np.random.default_rng(0).integers(-3000, 3000, 400_000, dtype=np.int16).tobytes()
    path.write_bytes(_wav_header(1, len(data)) + data)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(AudioError, match="declares a sample rate of 1 Hz"):
        load_audio(path)
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200_000  # KiB: no big buffer


def test_too_long_audio_is_refused_before_decoding(tmp_path):
    import soundfile as sf

    from phoenix_npu.whisper.audio import AudioError, load_audio

    sf.write(tmp_path / "long.wav", np.zeros(8000 * 20, np.float32), 8000)
    with pytest.raises(AudioError, match=r"long.wav: 20 s of audio \(160000 samples at 8000 Hz\); at most 10 s are loaded at once: split"):
        load_audio(tmp_path / "long.wav", max_duration=10)
    assert load_audio(tmp_path / "long.wav", max_duration=30).shape == (16000 * 20,)  # resampled 8 -> 16 kHz


# ----------------------------------------------------------------------------------------------
# every container a user has, made here from samples/jfk.wav with PyAV (FFmpeg) itself

SAMPLE = __import__("pathlib").Path(__file__).resolve().parent.parent / "samples" / "jfk.wav"
# file name, FFmpeg muxer, encoder, rate, layout: every rate and channel count differs
CONTAINERS = [("wav.wav", "wav", "pcm_s16le", 44100, "stereo"),
              ("flac.flac", "flac", "flac", 48000, "stereo"),
              ("mp3.mp3", "mp3", "libmp3lame", 22050, "mono"),
              ("ogg.ogg", "ogg", "libopus", 48000, "stereo"),
              ("m4a.m4a", "ipod", "aac", 44100, "stereo"),
              ("mp4.mp4", "mp4", "aac", 8000, "mono"),
              ("webm.webm", "webm", "libopus", 48000, "mono"),
              ("mkv.mkv", "matroska", "aac", 32000, "stereo")]


def _encode(dst, muxer: str, codec: str, rate: int, layout: str) -> None:
    import av

    with av.open(str(SAMPLE)) as src, av.open(str(dst), "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        ctx = stream.codec_context
        resampler = av.AudioResampler(format=ctx.codec.audio_formats[0].name, layout=layout, rate=rate,
                                      frame_size=ctx.frame_size or None)
        for frame in src.decode(audio=0):
            frame.pts = None
            for piece in resampler.resample(frame):
                out.mux(stream.encode(piece))
        for piece in resampler.resample(None):
            out.mux(stream.encode(piece))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    pytest.importorskip("av", reason="PyAV missing: pip install 'phoenix-npu[faster-whisper]'")
    folder = tmp_path_factory.mktemp("containers")
    for name, *how in CONTAINERS:
        _encode(folder / name, *how)
    return folder


def test_every_container_loads_at_16k_mono(containers):
    from phoenix_npu.whisper.audio import audio_duration, load_audio

    ref = load_audio(SAMPLE)
    for name, _, codec, rate, layout in CONTAINERS:
        path = containers / name
        x = load_audio(path)
        assert x.dtype == np.float32 and x.ndim == 1, name
        assert abs(x.size / 16000 - 11.0) < 0.15, (name, x.size)     # codec padding at most
        assert abs(audio_duration(path) - 11.0) < 0.15, name          # from the header, not decoded
        lag = max(range(0, 3000, 2), key=lambda k: float(np.dot(x[k:k + 48000], ref[:48000])))
        corr = np.corrcoef(x[lag:lag + 48000], ref[:48000])[0, 1]     # encoder delay, then the same audio
        assert corr > (0.99 if codec in ("pcm_s16le", "flac") else 0.8), (name, lag, corr)


@needs_tiny_en
def test_every_container_transcribes_through_the_cli(containers, tmp_path):
    """One CLI run over the folder (one model): each container found, read and transcribed."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "transcribe", str(containers), "-o", f"{out}/",
                        "--format", "json", "--device", "emulator", "--no-progress"],
                       capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    for name, *_ in CONTAINERS:
        result = json.loads((out / (name.rsplit(".", 1)[0] + ".json")).read_text())
        words = "".join(c for c in result["text"].lower() if c.isalpha() or c == " ")
        assert "ask not what your country can do for you" in words, (name, result["text"])
