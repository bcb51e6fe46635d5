"""Batch transcription (issue 17): folders and @lists, resumable runs into an output folder,
a corrupt file among real clips, a run killed mid-way and restarted, and the fan-out over a
local Ray instance with a worker killed during the run. Real tiny.en, real clips, the encoder
on PhoenixNPU's emulated device, real Ray processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _whisper import (
    clips,
    needs_speech,
    needs_tiny_en,
    needs_whisper,
    provider_available,
    speech_dir,
    tiny_en_onnx,
)

pytestmark = [pytest.mark.whisper, needs_whisper, needs_tiny_en, needs_speech(),
              pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")]

needs_ray = pytest.mark.skipif(
    __import__("importlib").util.find_spec("ray") is None,
    reason="Ray missing: pip install 'phoenix-npu[cluster]' (scripts/setup.sh installs it)")

# short real clips (1.5-3.3 s): (file, where it goes in the archive)
ARCHIVE = {
    "ls_test-clean_1089-134691-0000.wav": "a.wav",
    "ls_test-clean_2830-3980-0043.wav": "talks/b.wav",
    "ls_test-clean_8455-210777-0068.wav": "talks/day2/c.wav",
    "ljspeech_LJ002-0020.wav": "talks/day2/d.wav",
}


def _archive(root: Path, n: int = len(ARCHIVE), corrupt: bool = True) -> dict[str, str]:
    """A folder of real clips in subfolders, a corrupt WAV (a RIFF header with a malformed
    fmt chunk and random bytes), a text file and a hidden file (neither is audio). Returns
    {output name: reference transcript}."""
    refs = {Path(c["path"]).name: c["reference"] for c in clips(tuple(ARCHIVE))}
    out = {}
    for src, dst in list(ARCHIVE.items())[:n]:
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(speech_dir() / src, root / dst)
        out[str(Path(dst).with_suffix(""))] = refs[src]
    (root / "talks").mkdir(parents=True, exist_ok=True)
    if corrupt:
        (root / "talks" / "broken.wav").write_bytes(
            b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00not a format chunk" + os.urandom(2048))
    (root / "talks" / "notes.txt").write_text("not audio")
    (root / "talks" / ".hidden.wav").write_bytes(b"RIFF")
    return out


def _results(out: Path) -> dict[str, dict]:
    """{output name: JSON result} for every result in `out` (the summary left out)."""
    return {p.relative_to(out).with_suffix("").as_posix(): json.loads(p.read_text())
            for p in sorted(out.rglob("*.json")) if p.name != "phoenix-npu-summary.json" and not _hidden(p, out)}


def _hidden(p: Path, out: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(out).parts)


def _leftovers(out: Path) -> list[str]:
    """Files a run left that are neither results, the summary nor the source records."""
    from phoenix_npu.whisper.outputs import RECORDS_DIR

    return sorted(p.name for p in out.rglob(".*") if p.name != RECORDS_DIR and p.parent.name != RECORDS_DIR)


def _summary(out: Path) -> dict:
    return json.loads((out / "phoenix-npu-summary.json").read_text())


def _cli(*args) -> list[str]:
    return ["transcribe", *map(str, args), "--model", str(tiny_en_onnx()), "--device", "emulator", "--no-progress"]


def test_folder_with_a_corrupt_file_then_rerun_skips_everything(tmp_path, capsys):
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize, word_error_rate

    archive, out = tmp_path / "archive", tmp_path / "out"
    refs = _archive(archive, n=3)
    assert main(_cli(archive, "--output", out, "--format", "json")) == 1  # a file failed
    err = capsys.readouterr().err
    assert "broken.wav: looks like WAV but could not be decoded" in err
    got = _results(out)
    assert sorted(got) == sorted(refs)  # one result per clip, folders kept, nothing for the bad file
    names = sorted(refs)
    assert word_error_rate([refs[n] for n in names], [got[n]["text"] for n in names]) <= 0.10
    assert normalize(got["a"]["text"]) == normalize(refs["a"])
    assert all(r["chunks"] and r["duration"] > 1 for r in got.values())
    s = _summary(out)
    assert s["status"] == "complete" and s["counts"] == {"done": 3, "skipped": 0, "failed": 1, "not started": 0}
    [bad] = [f for f in s["files"] if f["status"] == "failed"]
    assert bad["input"].endswith("broken.wav") and "corrupt or truncated" in bad["reason"]
    assert s["audio_seconds_done"] > 5 and s["rtf"] > 0
    assert _leftovers(out) == []
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.json") if p.name != "phoenix-npu-summary.json"}

    # the same command again: everything done is skipped, no model is loaded, the bad file is
    # reported again (it has no result)
    assert main(_cli(archive, "--output", out, "--format", "json")) == 1
    err = capsys.readouterr().err
    assert "3 of 4 file(s) already transcribed" in err and "encoder:" not in err
    assert _summary(out)["counts"] == {"done": 0, "skipped": 3, "failed": 1, "not started": 0}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    # a file list naming the same files (relative to the list) maps to the same results
    (archive / "talks" / "broken.wav").unlink()
    listing = archive / "list.txt"
    listing.write_text("# the archive\n" + "".join(f"{n}.wav\n" for n in names) + "\n")
    assert main(_cli(f"@{listing}", "--output", out, "--format", "json")) == 0
    assert _summary(out)["counts"] == {"done": 0, "skipped": 3, "failed": 0, "not started": 0}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes and sorted(_results(out)) == names


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", "phoenix_npu.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=log, start_new_session=True)  # the installed package, as users run it


def _wait_for_results(out: Path, n: int, proc, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(_results(out)) < n:
        assert proc.poll() is None, "the run ended before it was stopped"
        assert time.monotonic() < deadline, "no result in time"
        time.sleep(0.05)


def test_a_killed_run_resumes_with_no_duplicate_or_partial_output(tmp_path):
    """`phoenix-npu transcribe` stopped with SIGINT (Ctrl-C) after its first result, then
    killed with SIGKILL after its next one, then run to the end: every clip has exactly one
    whole result, equal to what an uninterrupted run writes."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    refs = _archive(archive, corrupt=False)
    args = _cli(archive, "--output", out, "--format", "json")
    log = open(tmp_path / "log.txt", "w")

    p = _start(args, log)
    try:
        _wait_for_results(out, 1, p)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=120)
        assert rc == 130, (rc, (tmp_path / "log.txt").read_text()[-3000:])
    finally:
        p.kill()
    first = _results(out)  # parses: nothing half-written
    s = _summary(out)
    assert s["status"] == "interrupted" and s["counts"]["done"] == len(first) >= 1
    assert s["counts"]["not started"] == len(refs) - len(first)

    p = _start(args, log)
    try:
        _wait_for_results(out, len(first) + 1, p)
        os.killpg(p.pid, signal.SIGKILL)  # no chance to clean up
        p.wait(timeout=30)
    finally:
        p.kill()
    second = _results(out)
    assert len(second) > len(first) and all(second[k] == v for k, v in first.items())

    p = _start(args, log)
    assert p.wait(timeout=300) == 0
    log.close()
    final = _results(out)
    assert sorted(final) == sorted(refs)
    assert all(final[k] == v for k, v in second.items())  # finished results were kept, not redone
    assert _leftovers(out) == []  # no temporary file left by the killed run
    s = _summary(out)
    assert s["status"] == "complete"
    assert s["counts"] == {"done": len(refs) - len(second), "skipped": len(second), "failed": 0, "not started": 0}
    outputs = [f["output"] for f in s["files"]]
    assert len(outputs) == len(set(outputs)) == len(refs)


# ----------------------------------------------------------------------------------------------
# Ray

def _descendants() -> dict[int, str]:
    """{pid: command line} of this process's descendants (from /proc)."""
    parent, cmd = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = {}, {os.getpid()}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in out}
        out.update({p: cmd[p] for p in frontier})
    return out


def _alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


@needs_ray
def test_cluster_local_2_same_transcripts_and_a_killed_worker_is_redone(tmp_path, capsys):
    from phoenix_npu.cli import main
    from phoenix_npu.whisper.batch import transcribe_batch

    archive = tmp_path / "archive"
    refs = _archive(archive)
    single, fleet = tmp_path / "single", tmp_path / "fleet"
    for r in transcribe_batch([archive], tiny_en_onnx(), output=single, device="emulator", progress=False):
        pass

    runs, killed, ray_procs = [], None, {}
    results = []
    for r in transcribe_batch([archive], tiny_en_onnx(), output=fleet, device="emulator", cluster="local:2",
                              progress=False, run=runs):
        results.append(r)
        if killed is None and not r.get("error"):
            # the worker that returned the first clip already has its next one: kill it
            worker = runs[0].records[r["path"]]["worker"]
            killed = int(worker.rsplit(":", 1)[1])
            ray_procs = {p: c for p, c in _descendants().items() if "ray" in c}
            assert killed in ray_procs and _alive(killed)  # a Ray worker process this test started
            os.kill(killed, signal.SIGKILL)
    assert killed is not None
    s = runs[0].summary()
    assert s["workers"] == 2 and s["threads_per_worker"] >= 1
    assert s["workers_lost"] == 1 and len(s["rescheduled"]) == 1, s
    assert s["counts"] == {"done": len(refs), "skipped": 0, "failed": 1, "not started": 0}
    workers = {f["worker"] for f in s["files"] if f["status"] == "done"}
    assert len(workers) >= 2  # the work was shared (and the replacement worker took some)
    rescheduled = [f for f in s["files"] if f["input"] in s["rescheduled"]]
    assert rescheduled[0]["status"] == "done" and not rescheduled[0]["worker"].endswith(f":{killed}")
    # same transcripts, same layout as the single-process run; nothing half-written
    a, b = _results(single), _results(fleet)
    assert sorted(a) == sorted(b) == sorted(refs)
    for name in refs:
        assert (a[name]["text"], a[name]["chunks"]) == (b[name]["text"], b[name]["chunks"]), name
    assert _leftovers(fleet) == []
    assert len(results) == len(refs) + 1  # each file once, the bad one as an error

    # the Ray processes this run started are gone
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in ray_procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_procs and not [c for p, c in ray_procs.items() if _alive(p)]

    # the same command from the CLI: everything done is skipped, no Ray is started
    capsys.readouterr()
    assert main(_cli(archive, "--output", fleet, "--format", "json", "--cluster", "local:2")) == 1
    err = capsys.readouterr().err
    assert f"{len(refs)} of {len(refs) + 1} file(s) already transcribed" in err and "Ray worker" not in err
    assert _summary(fleet)["counts"]["skipped"] == len(refs)


def test_cluster_errors_come_before_the_work(tmp_path, capsys):
    """A bad --cluster, and --cluster without Ray installed (a fresh interpreter in which
    `import ray` fails), are usage errors that say what to do."""
    from phoenix_npu.cli import main

    archive = tmp_path / "archive"
    _archive(archive, n=1, corrupt=False)
    for spec, message in [("local:0", "local:N needs a number of workers, 1 or more"),
                          ("tcp://h:1", "give local:N (N worker processes on this machine) or ray://HOST:PORT")]:
        assert main(_cli(archive, "-o", tmp_path / "out", "--cluster", spec)) == 2
        assert message in capsys.readouterr().err
    code = ("import sys; sys.modules['ray'] = None\n"
            "from phoenix_npu.cli import main\n"
            f"sys.exit(main({_cli(archive, '-o', tmp_path / 'out', '--cluster', 'local:2')!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       )
    assert r.returncode == 2, r.stderr
    assert "--cluster needs Ray, which is not installed: pip install 'phoenix-npu[cluster]'" in r.stderr
    assert "Traceback" not in r.stderr and not list((tmp_path / "out").glob("*.json"))


# ----------------------------------------------------------------------------------------------
# an output belongs to its input (reliability issue): names from the input, a record of the
# source beside each result, a rerun that checks it before it skips

A, B, C = "ls_test-clean_1089-134691-0000.wav", "ls_test-clean_2830-3980-0043.wav", "ls_test-clean_8455-210777-0068.wav"


def _copy_as(src: str, dst: Path) -> str:
    """The clip `src` written to `dst` (WAV copied, FLAC / MP3 converted); its reference."""
    import soundfile as sf

    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.suffix == ".wav":
        shutil.copy(speech_dir() / src, dst)
    else:
        data, sr = sf.read(speech_dir() / src)
        sf.write(dst, data, sr, format=dst.suffix[1:].upper())
    return {Path(c["path"]).name: c["reference"] for c in clips((A, B, C))}[src]


def _texts(out: Path) -> dict[str, str]:
    """{result path relative to out: normalised text} of the text results in `out`."""
    from phoenix_npu_tools.wer import normalize

    return {p.relative_to(out).as_posix(): normalize(p.read_text()) for p in sorted(out.rglob("*.txt"))
            if not _hidden(p, out)}


def test_inputs_sharing_a_stem_keep_their_own_results_across_reruns(tmp_path):
    """talk.wav and talk.flac, run once; talk.mp3 added, run again: talk.mp3 gets its own
    transcript (it was "skipped" with talk.wav's under its name), the other two are skipped."""
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    folder, out = tmp_path / "talks", tmp_path / "out"
    ref_wav = _copy_as(A, folder / "talk.wav")
    ref_flac = _copy_as(B, folder / "talk.flac")
    assert main(_cli(folder, "--output", out)) == 0
    first = _texts(out)
    assert first == {"talk.flac.txt": normalize(ref_flac), "talk.wav.txt": normalize(ref_wav)}

    ref_mp3 = _copy_as(C, folder / "talk.mp3")
    assert main(_cli(folder, "--output", out)) == 0
    assert _texts(out) == {**first, "talk.mp3.txt": normalize(ref_mp3)}
    assert _summary(out)["counts"] == {"done": 1, "skipped": 2, "failed": 0, "not started": 0}


def test_a_rerun_over_part_of_the_inputs_never_takes_another_inputs_result(tmp_path, capsys):
    """One run over a/ and b/ (both holding x.wav), the next over b/ only: b/x.wav gets its own
    transcript and a/x.wav's result is kept. A changed input is transcribed again."""
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    out = tmp_path / "out"
    ref_a = _copy_as(A, tmp_path / "a" / "x.wav")
    ref_b = _copy_as(B, tmp_path / "b" / "x.wav")
    assert main(_cli(tmp_path / "a", tmp_path / "b", "--output", out)) == 0
    both = _texts(out)
    assert sorted(both.values()) == sorted([normalize(ref_a), normalize(ref_b)]) and len(both) == 2

    assert main(_cli(tmp_path / "b", "--output", out)) == 0
    s = _summary(out)
    [rec] = s["files"]
    assert rec["status"] == "skipped" and both[Path(rec["output"]).relative_to(out).as_posix()] == normalize(ref_b)
    assert _texts(out) == both  # nothing overwritten, nothing added

    ref_c = _copy_as(C, tmp_path / "b" / "x.wav")  # the same name, other audio
    assert main(_cli(tmp_path / "b", "--output", out)) == 0
    assert _summary(out)["counts"]["done"] == 1
    assert normalize(Path(_summary(out)["files"][0]["output"]).read_text()) == normalize(ref_c)
    assert normalize(ref_a) in _texts(out).values()  # a/x.wav's result still there


def test_a_file_in_the_output_folder_that_is_not_this_inputs_result_is_kept(tmp_path):
    """A transcript the user put (or an older run left) where the input's result would go is
    never overwritten or taken for the result: the input gets another name."""
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    out = tmp_path / "out"
    out.mkdir()
    (out / "x.txt").write_text("my own notes\n")
    ref = _copy_as(A, tmp_path / "in" / "x.wav")
    assert main(_cli(tmp_path / "in", "--output", out)) == 0
    assert (out / "x.txt").read_text() == "my own notes\n"
    assert _texts(out) == {"x.txt": "my own notes", "x.wav.txt": normalize(ref)}


# ----------------------------------------------------------------------------------------------
# hostile names

HOSTILE = ["語" * 82 + ".wav",                  # 246 + 4 bytes: the result's temporary name went past 255
           "音" * 83 + ".wav", "音" * 83 + ".flac",  # one stem: the results keep the extension, past 255
           "-rf --help.wav", " spaced  out .wav", "new\nline.wav", "ünïcødé ✓.wav", "semi;colon$(x).wav"]


def test_inputs_with_hostile_names_get_their_results(tmp_path):
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    folder, out = tmp_path / "in", tmp_path / "out"
    refs = {name: _copy_as([A, B, C][i % 3], folder / name) for i, name in enumerate(HOSTILE)}
    assert main(_cli(folder, "--output", out)) == 0
    s = _summary(out)
    assert s["counts"] == {"done": len(HOSTILE), "skipped": 0, "failed": 0, "not started": 0}
    for rec in s["files"]:
        result = Path(rec["output"])
        assert len(result.name.encode()) <= 255
        assert normalize(result.read_text()) == normalize(refs[Path(rec["input"]).name]), rec
    assert len({f["output"] for f in s["files"]}) == len(HOSTILE)
    assert not [p for p in out.rglob("*.tmp")]
    assert main(_cli(folder, "--output", out)) == 0  # and a rerun finds them all
    assert _summary(out)["counts"]["skipped"] == len(HOSTILE)


# ----------------------------------------------------------------------------------------------
# concurrent runs and signals

def test_a_run_leaves_the_temporaries_of_a_live_run_alone(tmp_path):
    """A second run on the same output folder deleted the first run's in-flight temporary file
    at start-up (the first then failed to write its result). Now a run removes only temporaries
    whose process is gone."""
    from phoenix_npu.cli import main
    from phoenix_npu.whisper.outputs import temp_path

    out = tmp_path / "out"
    out.mkdir()
    _copy_as(A, tmp_path / "in" / "x.wav")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        # an in-flight temporary of the live process `other`, named as that process names it
        live = temp_path(out / "x.txt").with_name(
            temp_path(out / "x.txt").name.replace(f"-{os.getpid()}-", f"-{other.pid}-"))
        live.write_text("half a transcript")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
        stale = live.with_name(live.name.replace(f"-{other.pid}-", f"-{dead}-"))
        stale.write_text("left by a killed run")
        assert main(_cli(tmp_path / "in", "--output", out)) == 0
        assert live.read_text() == "half a transcript"
        assert not stale.exists()
    finally:
        other.kill()
        other.wait()


def test_two_runs_into_one_output_folder_both_finish(tmp_path):
    """Two resumable runs at once into one output folder, over the same inputs in opposite
    orders (the same command started twice): both exit 0 and every input has its result."""
    from phoenix_npu_tools.wer import normalize

    out = tmp_path / "out"
    refs = {}
    for i, src in enumerate((A, B, C, A)):
        refs[f"one/{i}.wav"] = _copy_as(src, tmp_path / "one" / f"{i}.wav")
        refs[f"two/{i}.wav"] = _copy_as(src, tmp_path / "two" / f"t{i}.wav")
    logs = [open(tmp_path / f"log{i}.txt", "w") for i in (1, 2)]
    procs = [_start(_cli(*(tmp_path / d for d in dirs), "--output", out), log)
             for dirs, log in zip((("one", "two"), ("two", "one")), logs)]
    try:
        rcs = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert rcs == [0, 0], [(tmp_path / f"log{i}.txt").read_text()[-2000:] for i in (1, 2)]
    got = _texts(out)
    assert len(got) == 8 and sorted(got.values()) == sorted(normalize(r) for r in refs.values())
    assert not [p for p in out.rglob("*.tmp")]


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path):
    """systemd, docker and `timeout` stop with SIGTERM: the run stops after the file in hand,
    keeps what is finished and writes its summary, as on Ctrl-C."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    refs = _archive(archive, corrupt=False)
    log = open(tmp_path / "log.txt", "w")
    p = _start(_cli(archive, "--output", out, "--format", "json"), log)
    try:
        _wait_for_results(out, 1, p)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
    finally:
        p.kill()
    assert rc == 128 + signal.SIGTERM, (rc, (tmp_path / "log.txt").read_text()[-3000:])
    done = _results(out)
    s = _summary(out)
    assert s["status"] == "interrupted" and s["counts"]["done"] == len(done) >= 1
    assert s["counts"]["not started"] == len(refs) - len(done)
    assert "interrupted" in (tmp_path / "log.txt").read_text()
