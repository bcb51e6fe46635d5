"""Where transcripts go and how they are written: one place for output planning, result names,
which input a result belongs to, and atomic writing.

* Checking an --output before any work (`plan_output`): a writable file or folder with room,
  never one of the inputs.
* Result names in an output folder (`plan_targets`) depend only on the input, never on the
  order of the inputs: its name (the path relative to the folder it was found in, without its
  extension) plus the format's extension; where two inputs of the run share that name, the
  input's own extension is kept too (talk.wav.txt, talk.flac.txt), and where that is taken
  as well, a short hash of the input's absolute path is added. A name already holding another
  input's result (or a file this package did not write) is never reused. Names are kept within
  the file system's limit (255 bytes a name), shortened with a hash where needed.
* Which input a result belongs to: beside each result in an output folder, a record in
  `.phoenix-npu-sources/` (one small JSON file per result, named by a hash of the result's
  path) holds the input's absolute path, size and modification time and the SHA-256 of the
  result's bytes. A rerun skips an input only when its result's record names that input, as it
  is now, and the result's bytes are the ones recorded (`is_result_of`).
* Delivering a finished document (`deliver`): to its file or stdout; when the file cannot be
  written, the error says so and the document goes to stdout instead of being lost.
* Writing (`write_output`, `write_result`): through a temporary file in the same folder, renamed
  into place, so a file is replaced whole or not at all. Temporary files carry the host and
  process id of the run that owns them (`.NAME.pnpu-HOST-PID-RANDOM.tmp`); a run cleans up only
  temporaries whose process is gone (`remove_stale_temporaries`), never another live run's.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_FREE_BYTES = 1 << 20  # transcripts are small; less free space than this is a full disk
NAME_MAX = 255            # bytes in one file name (ext4, xfs, btrfs, tmpfs...)
SUMMARY_NAME = "phoenix-npu-summary.json"
RECORDS_DIR = ".phoenix-npu-sources"
_TMP_NAME_BYTES = 100     # how much of the target's name a temporary file name repeats
_TMP = re.compile(r"\.pnpu-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}\.tmp$")


class OutputError(ValueError):
    """--output cannot be written as asked; the message says why."""


# ----------------------------------------------------------------------------------------------
# checking --output before the work

@dataclass
class OutputPlan:
    """stdout (path None), one file, or a folder with one result per input (per_input)."""
    path: Path | None = None
    per_input: bool = False
    targets: list[Path] = field(default_factory=list)


def plan_output(output: str | None, inputs: list[str], fmt: str) -> OutputPlan:
    """Decide and check where results go, before any work. Raises OutputError. For a folder,
    `targets` are the results' paths (plan_targets)."""
    several_docs = len(inputs) > 1 and fmt in ("srt", "vtt")
    if output is None:
        if several_docs:
            raise OutputError(f"--format {fmt} with several inputs needs --output DIR/ (one file per input); "
                              "several documents on stdout would run together into one invalid file")
        return OutputPlan()
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return _plan_directory(path, inputs, fmt)
    if several_docs:
        raise OutputError(f"--format {fmt} with several inputs needs --output DIR/ (one file per input), "
                          f"not the single file {path}")
    _check_not_an_input(path, inputs)
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        return OutputPlan(path)  # /dev/null, /dev/stdout, a FIFO: written directly at the end
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"--output {path}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"--output {path}: {parent} is not a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"--output {path}: not writable (permission denied)")
    if len(path.name.encode()) > NAME_MAX:
        raise OutputError(f"--output {path}: the file name is longer than {NAME_MAX} bytes")
    _check_writable_dir(parent, f"--output {path}")
    return OutputPlan(path)


def _plan_directory(path: Path, inputs: list[str], fmt: str) -> OutputPlan:
    from .formats import EXTENSIONS

    if path.exists() and not path.is_dir():
        raise OutputError(f"--output {path}/: {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--output {path}/: cannot create the directory ({exc.strerror})") from None
    _check_writable_dir(path, f"--output {path}/")
    targets = plan_targets([(p, Path(p).stem) for p in inputs], path, EXTENSIONS[fmt])
    return OutputPlan(path, per_input=True, targets=targets)


def _key(path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _check_not_an_input(path: Path, inputs: list[str]) -> None:
    for src in inputs:
        same = _key(src) == _key(path)
        if not same and path.exists() and Path(src).exists():
            same = os.path.samefile(src, path)
        if same:
            raise OutputError(f"--output {path} is one of the inputs: writing it would destroy the audio")


def _check_writable_dir(directory: Path, what: str) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: cannot write in {directory} (permission denied)")
    free = shutil.disk_usage(directory).free
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{what}: only {free} bytes free on the device holding {directory}; no space for "
                          "the transcripts")


# ----------------------------------------------------------------------------------------------
# names

def _hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def _truncate(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding fits in `max_bytes` bytes."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) <= max_bytes:
        return text
    return raw[:max(max_bytes, 0)].decode("utf-8", "ignore")


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """`name` (one path component) if it fits in `limit` bytes, else its start, '~', a hash of
    the whole name and its last suffix (the format's extension): the same long name always
    gives the same short one, and two long names sharing their first 200 bytes do not collide."""
    if len(name.encode("utf-8", "surrogateescape")) <= limit:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    tail = f"~{_hash(name, 16)}{suffix}"
    return _truncate(name, limit - len(tail.encode())) + tail


def fit_relpath(rel: str) -> str:
    """A relative path with every component within NAME_MAX bytes."""
    return "/".join(fit_name(part) for part in rel.split("/"))


def plan_targets(inputs: Sequence[tuple[str, str]], out_dir: Path, ext: str) -> list[Path]:
    """The result path in `out_dir` of each (input path, name) (name: relative, no extension),
    by construction from the input, not from its position in the run:

    1. a name that already holds (or is recorded for) this input's result keeps it;
    2. else `name.EXT`, if no other input of the run could also be given that name, it is not an
       input or the run summary, and nothing else's result is there;
    3. else `name.SUFFIX.EXT` (the input's own extension kept: talk.wav.txt), on the same terms;
    4. else `name.SUFFIX.HASH.EXT` (HASH: of the input's absolute path).
    Every component is kept within NAME_MAX bytes."""
    cands = []
    for path, name in inputs:
        suffix = Path(path).suffix
        real = os.path.realpath(path)
        options = [f"{name}.{ext}"]
        if suffix:
            options.append(f"{name}{suffix}.{ext}")
        options.append(f"{name}{suffix}.{_hash(real)}.{ext}")
        cands.append([out_dir / fit_relpath(o) for o in options])
    reserved = {_key(p) for p, _ in inputs} | {_key(out_dir / SUMMARY_NAME)}
    proposed: dict[str, int] = {}
    for options in cands:
        for key in {_key(t) for t in options}:
            proposed[key] = proposed.get(key, 0) + 1
    targets: list[Path | None] = [None] * len(inputs)
    taken: set[str] = set()
    for i, (path, _) in enumerate(inputs):  # 1: results this input already has
        for t in cands[i]:
            if _key(t) not in taken and recorded_input(out_dir, t) == os.path.realpath(path):
                targets[i] = t
                taken.add(_key(t))
                break
    for i, (path, _) in enumerate(inputs):
        if targets[i] is not None:
            continue
        for level, t in enumerate(cands[i]):
            k = _key(t)
            last = level == len(cands[i]) - 1
            shared = proposed[k] > 1 and not last  # the hashed name is this input's alone
            if k in taken or k in reserved or shared or _foreign(out_dir, t, path):
                continue
            targets[i] = t
            break
        if targets[i] is None:  # the hashed name is taken by something else: number it
            base, n = cands[i][-1], 2
            while True:
                t = base.with_name(fit_name(f"{base.stem}-{n}{base.suffix}"))
                if _key(t) not in taken and _key(t) not in reserved and not _foreign(out_dir, t, path):
                    targets[i] = t
                    break
                n += 1
        taken.add(_key(targets[i]))
    return targets  # type: ignore[return-value]


def _foreign(out_dir: Path, target: Path, path: str) -> bool:
    """Whether `target` holds something other than `path`'s result: a file that is there with
    no record, or whose record names another input."""
    if not os.path.lexists(target):
        return False
    return recorded_input(out_dir, target) != os.path.realpath(path)


# ----------------------------------------------------------------------------------------------
# which input a result belongs to

def source_of(path: str | os.PathLike) -> dict:
    """What identifies an input: its absolute path, size and modification time."""
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def record_path(out_dir: Path, target: Path) -> Path:
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(out_dir))
    return out_dir / RECORDS_DIR / f"{_hash(rel, 32)}.json"


def read_record(out_dir: Path, target: Path) -> dict | None:
    try:
        rec = json.loads(record_path(out_dir, target).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("source"), dict) else None


def recorded_input(out_dir: Path, target: Path) -> str | None:
    """The absolute path of the input `target`'s record names (None: no record)."""
    rec = read_record(out_dir, target)
    return rec["source"].get("path") if rec else None


def is_result_of(out_dir: Path, target: Path, path: str | os.PathLike) -> bool:
    """Whether `target` holds a finished result of the input `path` as it is now: its record
    names the input with its present size and modification time, and the result's bytes are
    the ones recorded."""
    rec = read_record(out_dir, target)
    if rec is None:
        return False
    try:
        if rec["source"] != source_of(path):
            return False
        data = Path(target).read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == rec.get("sha256")


def write_result(out_dir: Path, target: Path, text: str, path: str | os.PathLike) -> None:
    """Write the result `text` of the input `path` to `target`, with its record. The record
    goes first (holding the result's hash), so a run killed between the two leaves a result
    that no longer matches its record: redone, never skipped. Raises OSError."""
    data = text.encode("utf-8")
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(out_dir))
    record = {"output": rel, "source": source_of(path), "sha256": hashlib.sha256(data).hexdigest()}
    rp = record_path(out_dir, target)
    rp.parent.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_output(rp, json.dumps(record, ensure_ascii=False) + "\n")
    write_output(target, data)


# ----------------------------------------------------------------------------------------------
# writing

def _owner() -> tuple[str, int]:
    return _hash(socket.gethostname()), os.getpid()


def temp_path(target: Path) -> Path:
    """A temporary file name beside `target`, owned by this process, within NAME_MAX bytes."""
    host, pid = _owner()
    return target.with_name(f".{_truncate(target.name, _TMP_NAME_BYTES)}.pnpu-{host}-{pid}-{secrets.token_hex(4)}.tmp")


def write_output(path: Path, text: str | bytes) -> None:
    """Write `text` to `path`: a regular file through a temporary file of this process renamed
    into place (an existing file is replaced whole or not at all); anything else (a device, a
    FIFO) directly. Raises OSError."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    path = Path(path)
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        with open(path, "wb") as f:
            f.write(data)
        return
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(dirs: Iterable[Path]) -> int:
    """Delete the temporary files in `dirs` whose owning process (on this host) is gone: what a
    killed run left. Another live run's temporaries, and other hosts', are left alone."""
    host, _ = _owner()
    removed = 0
    for d in {Path(x) for x in dirs}:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            m = _TMP.search(entry.name)
            if not (entry.name.startswith(".") and m and m.group(1) == host) or _alive(int(m.group(2))):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                pass
    return removed


__all__ = ["MIN_FREE_BYTES", "NAME_MAX", "OutputError", "OutputPlan", "RECORDS_DIR", "SUMMARY_NAME", "fit_name",
           "is_result_of", "plan_output", "plan_targets", "read_record", "remove_stale_temporaries", "source_of",
           "write_output", "write_result"]


def deliver(path: Path | None, text: str, prog: str = "phoenix-npu transcribe") -> bool:
    """Write `text` to `path` (stdout when None). On failure say why and print the text to
    stdout, so the finished result is not lost. Returns whether `path` was written."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    try:
        write_output(path, text)
    except OSError as exc:
        print(f"{prog}: could not write {path}: {exc.strerror or exc}; "
              "the result follows on stdout so that it is not lost", file=sys.stderr)
        sys.stdout.write(text)
        sys.stdout.flush()
        return False
    return True
