"""The `phoenix-npu` command's pieces that need no Whisper extras: info (the library, and
where a model's nodes run and why), help and version, and the transcribe command's checks
that come before any work."""
import os
import re
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
from onnx import TensorProto, helper

from conftest import make_model


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "phoenix_npu.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_info_reports_the_provider_and_its_device():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    assert "provider library:" in r.stdout and "libphoenix_npu_ep.so" in r.stdout
    assert "device: PhoenixNPUExecutionProvider on CPU hardware device" in r.stdout


def test_help_lists_every_command_in_whole_sentences():
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("transcribe", "import", "export", "bench", "plan", "doctor", "info"):
        assert cmd in r.stdout
    text = " ".join(r.stdout.split())
    description = text.split("positional arguments:")[0].split("...", 1)[1].strip()
    assert description.endswith(".") and "PhoenixNPUExecutionProvider" in description, description
    assert "--version" in r.stdout


def test_version():
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"phoenix-npu {metadata.version('phoenix-npu')}"


@pytest.fixture
def mixed_model(tmp_path):
    """LayerNorm -> MatMul (the provider's), then Sin (no provider kernel), and an int64 Add
    (not a node the provider looks at)."""
    rng = np.random.default_rng(3)
    n = helper.make_node
    path = tmp_path / "mixed.onnx"
    make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, name="norm"),
                n("MatMul", ["ln", "w"], ["mm"], name="proj"),
                n("Sin", ["mm"], ["y"], name="wave"),
                n("Add", ["i", "i"], ["s"], name="int_add")],
               [("x", [1, 10, 32]), ("i", [2], TensorProto.INT64)], [("y", [1, 10, 16]), ("s", [2], TensorProto.INT64)],
               {"g": np.ones(32, np.float32), "b": np.zeros(32, np.float32),
                "w": rng.standard_normal((32, 16)).astype(np.float32)}, path=path)
    return path


def test_info_model_prints_every_node_and_why(mixed_model):
    r = _cli("info", str(mixed_model))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "4 nodes; PhoenixNPUExecutionProvider takes 2 in 1 region(s)" in out
    assert re.search(r"region 1\s+LayerNormalization\s+norm\n", out) and re.search(r"region 1\s+MatMul\s+proj\n", out)
    assert re.search(r"Sin\s+wave\s+-- op Sin is not supported", out), out
    assert re.search(r"Add\s+int_add\s+-- \S", out), out  # a reason for a non-float node too


def test_info_model_errors_are_one_line(tmp_path):
    r = _cli("info", str(tmp_path / "missing.onnx"))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "missing.onnx" in r.stderr
    r = _cli("info", str(tmp_path / "missing.onnx"), "--free-dim", "batch")
    assert r.returncode == 1 and "--free-dim wants NAME=VALUE" in r.stderr


# ----------------------------------------------------------------------------------------------
# `phoenix-npu transcribe`: mistakes cost no work and lose nothing

@pytest.mark.parametrize("args, message", [
    (["--beam-size", "0"], "argument --beam-size: must be 1 or more, not 0"),
    (["--beam-size", "-2"], "argument --beam-size: must be 1 or more, not -2"),
    (["--beam-size", "wide"], "argument --beam-size: must be a whole number, not 'wide'"),
    (["--threads", "-5"], "argument --threads: must be 0 (the default) or more, not -5"),
])
def test_transcribe_argument_errors(args, message, capsys):
    from phoenix_npu.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["transcribe", "x.wav", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An input file, an empty model cache, and a model name that would fail if it were
    ever resolved: an output error must come first (exit 2), before any work."""
    monkeypatch.setenv("PHOENIX_NPU_CACHE", str(tmp_path / "cache"))
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    return tmp_path, clip


def _transcribe(*args):
    from phoenix_npu.cli import main

    return main(["transcribe", *map(str, args), "--model", "no-such-model", "--device", "cpu"])


def test_output_errors_come_before_the_work(work, capsys):
    tmp, clip = work
    before = clip.read_bytes()
    (tmp / "notes.txt").write_text("a file")
    cases = [
        ([clip, "-o", f"{tmp / 'notes.txt'}/"], "notes.txt is a file, not a directory"),
        ([clip, "-o", tmp / "missing" / "out.txt"], f"the directory {tmp / 'missing'} does not exist"),
        ([clip, "-o", tmp / "notes.txt" / "out.txt"], "notes.txt is not a directory"),
        ([clip, "-o", clip], "is one of the inputs: writing it would destroy the audio"),
        ([clip, "-o", tmp / "." / "clip.wav"], "is one of the inputs"),
        ([clip, clip, "--format", "srt"], "--format srt with several inputs needs --output DIR/"),
        ([clip, clip, "--format", "vtt", "-o", tmp / "subs.vtt"], "needs --output DIR/"),
    ]
    os.link(clip, tmp / "hardlink.wav")
    cases.append(([clip, "-o", tmp / "hardlink.wav"], "is one of the inputs"))
    for args, message in cases:
        assert _transcribe(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
    assert clip.read_bytes() == before
    assert not (tmp / "cache").exists()  # no model was resolved, imported or exported


def test_full_disk_is_reported_before_the_work(work, capsys):
    """A tmpfs of 256 KiB, filled: the output check sees no free space (root only)."""
    tmp, clip = work
    disk = tmp / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(disk / "filler", "wb") as f:
            with pytest.raises(OSError):
                f.write(b"\0" * (1 << 20))
        assert _transcribe(clip, "-o", disk / "out.txt") == 2
        assert "bytes free" in capsys.readouterr().err
        assert _transcribe(clip, "-o", f"{disk / 'subs'}/") == 2
        assert "no space for the transcripts" in capsys.readouterr().err
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_inputs_with_one_stem_get_one_output_each(tmp_path):
    from phoenix_npu.whisper.transcribe_cli import plan_output

    out = tmp_path / "out"
    out.mkdir()
    (out / "x.txt").write_bytes(b"audio with an odd name")
    inputs = ["a/talk.wav", "b/talk.wav", "c/talk.flac", str(out / "x.txt")]
    plan = plan_output(f"{out}/", inputs, "text")
    assert plan.per_input
    # by construction from each input, not its position: the stem, then the extension kept, then
    # a hash of the input's path; never an input's own name
    names = [p.name for p in plan.targets]
    assert re.fullmatch(r"talk\.wav\.[0-9a-f]{8}\.txt", names[0]) and re.fullmatch(r"talk\.wav\.[0-9a-f]{8}\.txt", names[1])
    assert names[0] != names[1] and names[2:] == ["talk.flac.txt", "x.txt.txt"]
    again = plan_output(f"{out}/", list(reversed(inputs)), "text")
    assert [p.name for p in again.targets] == list(reversed(names))
    assert plan_output(str(tmp_path / "new" / "subs") + "/", ["a.wav"], "srt").targets == [
        tmp_path / "new" / "subs" / "a.srt"]  # a directory that does not exist yet is created
    assert plan_output(None, ["a.wav", "b.wav"], "text").path is None  # several texts on stdout are fine


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    """write_output on a filesystem that fills up mid-write: OSError, the previous file intact,
    no temporary file left behind (root only: a 64 KiB tmpfs)."""
    from phoenix_npu.whisper.transcribe_cli import write_output

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        out = disk / "out.txt"
        write_output(out, "old transcript\n")
        with pytest.raises(OSError):
            write_output(out, "new transcript " * 20_000)
        assert out.read_text() == "old transcript\n"
        assert [p.name for p in disk.iterdir()] == ["out.txt"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_developer_commands_come_from_the_tools_package_and_are_named_when_absent(monkeypatch, capsys):
    """bench and plan are phoenix-npu-tools' commands (entry points of cli.COMMAND_GROUP), not
    the runtime package's; without that package, `phoenix-npu bench` says what to install."""
    from phoenix_npu import cli

    found = cli.commands()
    assert found["bench"][0] == "phoenix_npu_tools.bench" and found["plan"][0] == "phoenix_npu_tools.npu_plan"
    assert not any(module.startswith("phoenix_npu_tools") for module, _ in cli.COMMANDS.values())
    without_tools = {k: v for k, v in found.items() if not v[0].startswith("phoenix_npu_tools")}
    monkeypatch.setattr(cli, "commands", lambda: without_tools)
    assert cli.main(["-q", "bench", "--model", "base"]) == 2
    err = capsys.readouterr().err
    assert "phoenix-npu bench: a developer command" in err and "pip install ./tools" in err
