"""Long audio is transcribed whole in every output format (the reliability issue: plain text
of a 76 s recording lost whole sentences, WER 54 %, because it was decoded without timestamp
tokens and faster-whisper's long-form decoding then skipped the rest of each 30 s window; the
Optimum engine's chunked pipeline repeated and dropped text). Real tiny.en, recordings of
several minutes made of the shared clips, `phoenix-npu transcribe` as users run it, WER
against the joined references."""
from __future__ import annotations

import json

import pytest
from _whisper import cue_text, long_recording, needs_ct2, needs_speech, needs_tiny_en, needs_whisper, provider_available

pytestmark = [pytest.mark.whisper, pytest.mark.slow, needs_whisper, needs_tiny_en, needs_speech(),
              pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")]

MAX_WER = 0.08  # measured 4.7 % (faster-whisper) and 5.2 % (Optimum) with timestamps; 28.8 % / 97 % before


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "talk.wav"
    ref = long_recording(path, repeats=2)  # 26 clips, about 2.4 minutes
    return path, ref


def _transcribe(path, out, *args):
    from phoenix_npu.cli import main

    assert main(["transcribe", str(path), "-o", str(out), "--model", "tiny.en", "--device", "emulator",
                 "--no-progress", *args]) == 0
    return out.read_text(encoding="utf-8")


def _spoken(fmt: str, document: str) -> str:
    if fmt == "json":
        [r] = json.loads(document)
        assert r["duration"] > 120 and r["chunks"][-1]["timestamp"][1] > 120
        return r["text"]
    return cue_text(document) if fmt in ("srt", "vtt") else document


@needs_ct2
@pytest.mark.parametrize("fmt", ["text", "srt", "vtt", "json"])
def test_long_audio_is_transcribed_whole_in_every_format(recording, tmp_path, fmt):
    from phoenix_npu_tools.wer import word_error_rate

    path, ref = recording
    got = _spoken(fmt, _transcribe(path, tmp_path / f"out.{fmt}", "--format", fmt))
    wer = word_error_rate([ref], [got])
    assert wer <= MAX_WER, f"{fmt}: WER {wer:.1%}"
    assert len(got.split()) >= 0.9 * len(ref.split())  # nothing dropped


def test_long_audio_plain_text_on_the_optimum_engine(tmp_path):
    """The Optimum engine decodes a few times slower here: the issue's length (13 clips, 72 s)."""
    from phoenix_npu_tools.wer import word_error_rate

    path = tmp_path / "talk.wav"
    ref = long_recording(path, repeats=1)
    got = _transcribe(path, tmp_path / "out.txt", "--engine", "optimum")
    wer = word_error_rate([ref], [got])
    assert wer <= MAX_WER, f"WER {wer:.1%}"
    assert len(got.split()) <= 1.1 * len(ref.split())  # nothing said twice
