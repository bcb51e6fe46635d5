"""`phoenix-npu transcribe` as a user runs it (subprocesses): what it prints besides the
transcript, how fast a mistyped model name fails, and what a wheel without the extra it needs
says. A missing module is hidden the way Python itself reports one (None in sys.modules), never
by mocking the library."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _whisper import needs_tiny_en, needs_whisper

pytestmark = [pytest.mark.whisper, needs_whisper]

ROOT = Path(__file__).resolve().parent.parent
JFK = str(ROOT / "samples" / "jfk.wav")

# the CLI with some modules missing: `import X` raises ModuleNotFoundError(name="X") and
# importlib.util.find_spec("X") is None, as when the module is not installed
HIDING = ("import sys\n"
          "for m in sys.argv[1].split(','): sys.modules[m] = None\n"
          "from phoenix_npu.cli import main\n"
          "sys.exit(main(sys.argv[2:]))\n")

WHISPER_ONLY = ("torch", "transformers", "optimum", "safetensors")


def _cli(*args, hide: tuple[str, ...] = (), env: dict | None = None, timeout: float = 300):
    cmd = [sys.executable, "-c", HIDING, ",".join(hide) or "-", *args]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    r.seconds = time.monotonic() - start
    return r


def _ours(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[phoenix-npu]")]


@needs_tiny_en
def test_a_run_says_once_where_the_encoder_runs_and_nothing_else():
    r = _cli("transcribe", "--device", "emulator", JFK)
    assert r.returncode == 0, r.stderr
    assert "ask not what your country can do for you" in r.stdout
    lines = _ours(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("[phoenix-npu] encoder: PhoenixNPUExecutionProvider"), r.stderr
    assert "device=emulator" in lines[0]
    # CTranslate2 converting the saved float16 weights for the CPU is not a problem to warn about
    assert "compute type" not in r.stderr and "[ctranslate2]" not in r.stderr, r.stderr
    assert "engine:" not in r.stderr and "Traceback" not in r.stderr


@needs_tiny_en
def test_quiet_prints_the_transcript_only():
    r = _cli("-q", "transcribe", "--device", "emulator", JFK)
    assert r.returncode == 0, r.stderr
    assert "ask not what your country can do for you" in r.stdout
    assert r.stderr.strip() == "", r.stderr  # ours, ONNX Runtime's (the provider's device line), CTranslate2's


@pytest.mark.parametrize("name, says", [("tiny-en", "unknown model 'tiny-en'"),
                                        ("./no/such/dir", "no such model directory")])
def test_an_unknown_model_fails_at_once_with_the_names_that_work(name, says):
    # with the heavy libraries missing, any attempt to load them would fail differently
    r = _cli("transcribe", "--model", name, JFK, hide=WHISPER_ONLY + ("faster_whisper", "ctranslate2"))
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and "tiny.en" in r.stderr and "base" in r.stderr, r.stderr
    assert "engine" not in r.stderr and "Traceback" not in r.stderr
    assert r.seconds < 15, r.seconds


@needs_tiny_en
def test_without_the_whisper_extra_the_error_is_the_install_command(tmp_path):
    # an empty model cache: the first run imports and exports the model, which needs the extra
    r = _cli("transcribe", "--device", "emulator", JFK, hide=WHISPER_ONLY, env={"PHOENIX_NPU_CACHE": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert "pip install 'phoenix-npu[whisper]'" in r.stderr, r.stderr
    assert "is not installed" in r.stderr


@needs_tiny_en
def test_without_faster_whisper_the_error_is_its_extra():
    r = _cli("transcribe", JFK, hide=("faster_whisper", "ctranslate2"))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert "pip install 'phoenix-npu[faster-whisper]'" in r.stderr, r.stderr


def test_every_extra_named_for_a_module_exists():
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    from phoenix_npu.extras import MODULE_EXTRAS

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(MODULE_EXTRAS.values()) <= set(extras)


@needs_tiny_en
def test_a_hugging_face_whisper_directory_transcribes(tmp_path):
    """A Hugging Face Whisper directory is a model: converted once to CTranslate2 for the
    decoder (CTranslate2's converter), its encoder exported from it."""
    from phoenix_npu.whisper.importer import resolve_model

    hf_dir = resolve_model("tiny.en")
    cache = {"PHOENIX_NPU_CACHE": str(tmp_path / "cache")}
    r = _cli("transcribe", "--device", "emulator", "--model", str(hf_dir), JFK, env=cache)
    assert r.returncode == 0, r.stderr
    assert "ask not what your country can do for you" in r.stdout.lower()
    converted = list((tmp_path / "cache" / "converted").glob("*/ct2/model.bin"))
    assert len(converted) == 1, converted
    r = _cli("transcribe", "--device", "emulator", "--model", str(hf_dir), JFK, env=cache)   # reused, not redone
    assert r.returncode == 0 and "converting" not in r.stderr, r.stderr
    assert list((tmp_path / "cache" / "converted").glob("*/ct2/model.bin")) == converted


def test_a_faster_whisper_size_name_is_downloaded_by_faster_whisper():
    """`small` is faster-whisper's name: accepted (not "unknown model") and handed to its
    download, which offline fails saying what works without a network."""
    r = _cli("transcribe", "--device", "emulator", "--model", "small", JFK, env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0
    assert "unknown model" not in r.stderr, r.stderr
    assert "could not get 'small' through faster-whisper's Hugging Face Hub download" in r.stderr, r.stderr
    assert "Offline, use one of" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.skipif(not __import__("_whisper").provider_available(), reason="PhoenixNPU provider library not built")
@__import__("_whisper").needs_base
def test_translate_task_on_a_multilingual_model(tmp_path):
    """`--task translate` (the only clips here are English: speech to English text, the path a
    French or German recording takes): the run succeeds, the JSON result says the task and the
    language, and the text is the speech. An English-only model cannot translate: faster-whisper
    transcribes then, and the run says so."""
    import json

    out = tmp_path / "t.json"
    r = _cli("-q", "transcribe", "--model", "base", "--device", "emulator", "--task", "translate",
             "--format", "json", "-o", str(out), JFK)
    assert r.returncode == 0, r.stderr
    [res] = json.loads(out.read_text())
    assert res["task"] == "translate" and res["language"] == "en", {k: res[k] for k in ("task", "language")}
    assert "ask not what your country can do for you" in res["text"].lower(), res["text"]
    r = _cli("transcribe", "--model", "tiny.en", "--device", "emulator", "--task", "translate", JFK)
    assert r.returncode == 0, r.stderr
    assert "tiny.en is an English-only model: it cannot translate" in r.stderr, r.stderr
    assert "ask not what your country can do for you" in r.stdout.lower()
