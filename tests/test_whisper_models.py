"""models/*.toml recipes agree with the code that uses them, and the CLI exposes the Whisper
commands (without importing torch or transformers to build its parser)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from _whisper import ROOT

pytestmark = pytest.mark.whisper


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_recipe_matches_known_models(name):
    tomllib = pytest.importorskip("tomllib")
    from phoenix_npu.checkpoint import KNOWN_MODELS

    recipe = tomllib.loads((ROOT / "models" / f"{name}.toml").read_text())
    src = KNOWN_MODELS[name]
    assert recipe["name"] == name
    assert tuple(recipe["source"]["packages"]) == src.packages
    assert tuple(recipe["source"]["modules"]) == src.modules
    assert tuple(recipe["source"]["parts"]) == src.parts
    assert recipe["source"]["data_dir"] == src.data_dir
    assert recipe["export"]["opset"] >= 17


def test_no_weights_in_models_dir():
    big = [p for p in (ROOT / "models").rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert not big


def test_cli_parser_needs_no_heavy_imports():
    code = ("import sys; from phoenix_npu import cli; p = cli.build_parser();"
            "a = p.parse_args(['transcribe', 'x.wav', '--device', 'cpu', '--format', 'srt']);"
            "assert a.device == 'cpu' and a.format == 'srt' and a.model == 'tiny.en';"
            "p.parse_args(['export', 'tiny.en', 'out', '--bf16']); p.parse_args(['import', 'src', 'out']);"
            "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules];"
            "assert not heavy, heavy")
    env_path = str(ROOT / "python")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": env_path})
    assert r.returncode == 0, r.stderr[-2000:]
