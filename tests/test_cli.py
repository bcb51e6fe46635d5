"""The `phoenix-npu` command's pieces that need no Whisper extras."""
import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "phoenix_npu.cli", *args], capture_output=True, text=True, timeout=120)


def test_info_reports_the_provider_and_its_device():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    assert "provider library:" in r.stdout and "libphoenix_npu_ep.so" in r.stdout
    assert "device: PhoenixNPUExecutionProvider on CPU hardware device" in r.stdout


def test_help_lists_every_command():
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("transcribe", "import", "export", "bench", "plan", "doctor", "info"):
        assert cmd in r.stdout
