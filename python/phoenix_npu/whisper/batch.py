"""Batch transcription of archives: folders and file lists in, one result per input out,
resumable.

    from phoenix_npu.whisper.batch import transcribe_batch
    for r in transcribe_batch(["archive/"], TranscribeOptions(model="tiny.en"), output="out/",
                              format="json", cluster="local:2"):
        print(r.path, r.error or r.text)          # results.FileResult

Inputs are audio files, folders (searched recursively for AUDIO_EXTENSIONS, hidden files and
folders left out, in sorted order) and `@list.txt` files (one path per line, `#` comments;
relative paths are relative to the list's folder). With an output folder every result is
written as it finishes, through a temporary file renamed into place, under a name that
depends only on the input (a file found in a folder keeps its path relative to that folder),
so a rerun finds what is done: an input is skipped only when its result's record (kept beside
the results, phoenix_npu.whisper.outputs) names that input as it is now (`overwrite=True`
redoes it); a name holding another input's result is never reused. A bad file is reported and the run goes on; a run summary
(done, skipped, failed with the reason, not started) is written beside the results, also when
the run is interrupted (Ctrl-C or SIGTERM). Temporary files a killed run left behind are
removed; those of another run still writing into the same folder are not.

A single file is a batch of one: `phoenix-npu transcribe` runs every command through here.

The work itself is done by an *executor* that takes a factory (called once per worker, where
the worker runs: it loads the model and returns a "transcribe one file" callable, path ->
FileResult, raising for a file that fails) and the files; it yields each file's outcome as
it finishes. `local_executor` runs in this process; `phoenix_npu.whisper.cluster` fans the
files out over Ray actors. Any factory works: the default one (`LocalTranscriber`) loads
phoenix_npu.whisper.WhisperModel (faster-whisper, the encoder on PhoenixNPU) from the run's
TranscribeOptions, which it receives unchanged.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .audio import AUDIO_SUFFIXES, audio_duration
from .formats import EXTENSIONS, format_result
from .jobs import Factory, Job, Outcome, failure_reason  # noqa: F401  (re-exported)
from .options import TranscribeOptions
from .outputs import SUMMARY_NAME, is_result_of, plan_targets, remove_stale_temporaries, write_output, write_result
from .results import FileResult

log = logging.getLogger(__name__)

# what a folder is searched for: what soundfile or FFmpeg (PyAV) reads (audio.load_audio)
AUDIO_EXTENSIONS = AUDIO_SUFFIXES

class InputError(ValueError):
    """An input (folder, list) cannot be used; the message says why."""


# ----------------------------------------------------------------------------------------------
# inputs

def is_batch_input(item: str) -> bool:
    """Whether a command-line input is a folder or an @list (rather than one file)."""
    return Path(item).is_dir() or _list_path(item) is not None


def _list_path(item: str) -> Path | None:
    if item.startswith("@") and not Path(item).exists() and Path(item[1:]).is_file():
        return Path(item[1:])
    return None


def expand_inputs(items: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """[(path, name)]: files as given (name: the stem), folders searched recursively (name:
    the path inside the folder), @lists read line by line. A file reached twice (a folder and
    a list naming it) is kept once. Raises InputError for an unreadable list."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str, name: str) -> None:
        key = os.path.realpath(path)
        if key in seen:
            log.debug("%s given twice; transcribed once", path)
            return
        seen.add(key)
        out.append((path, name))

    for item in map(str, items):
        listed = _list_path(item)
        if listed is not None:
            for path, name in _read_list(listed):
                add(path, name)
        elif Path(item).is_dir():
            found = _walk(Path(item))
            if not found:
                log.warning("%s: no audio files (%s) in this folder", item, ", ".join(sorted(AUDIO_EXTENSIONS)))
            for path, name in found:
                add(path, name)
        else:
            add(item, Path(item).stem)  # a missing or bad file is reported when it is read
    return out


def _walk(folder: Path) -> list[tuple[str, str]]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS:
                p = Path(root) / f
                found.append((str(p), p.relative_to(folder).with_suffix("").as_posix()))
    return found


def _read_list(listed: Path) -> list[tuple[str, str]]:
    try:
        lines = listed.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"@{listed}: cannot read the file list ({getattr(exc, 'strerror', None) or exc})") from None
    base = listed.parent
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        if not p.is_absolute():
            p = base / p
        if p.is_dir():
            out += _walk(p)
            continue
        try:
            name = p.relative_to(base).with_suffix("").as_posix()
        except ValueError:
            name = p.stem
        out.append((str(p), name))
    return out


def plan_jobs(inputs: Sequence[tuple[str, str]], out_dir: Path | None, fmt: str) -> list[Job]:
    """Jobs with their targets in `out_dir`: names built from each input alone
    (outputs.plan_targets), never another input's result."""
    jobs = [Job(path, name) for path, name in inputs]
    if out_dir is None:
        return jobs
    for job, target in zip(jobs, plan_targets(inputs, out_dir, EXTENSIONS[fmt])):
        job.target = target
    return jobs


def is_complete(job: Job, out_dir: Path) -> bool:
    """Whether `job`'s target holds a finished result of its input as the input is now (the
    result's record names it, outputs.is_result_of)."""
    return job.target is not None and is_result_of(out_dir, job.target, job.path)


def _remove_stale_temporaries(jobs: Iterable[Job], out_dir: Path) -> int:
    """Delete the temporary files killed runs left beside our targets (only those whose process
    is gone: another run writing into the same folder keeps its own)."""
    from .outputs import RECORDS_DIR

    dirs = {job.target.parent for job in jobs if job.target is not None} | {out_dir, out_dir / RECORDS_DIR}
    removed = remove_stale_temporaries(dirs)
    if removed:
        log.info("removed %d unfinished temporary file(s) left by an interrupted run", removed)
    return removed


def header_duration(path: str) -> float:
    """Seconds of audio per the file's header (0.0 when it cannot be read: the file then
    fails, with the reason, when it is transcribed)."""
    try:
        return _probe(path)
    except Exception:  # noqa: BLE001 - any unreadable header: unknown duration
        return 0.0


def _probe(path: str) -> float:
    return audio_duration(path)


def precheck(path: str) -> tuple[float, str | None]:
    """(duration, None) for a file whose header this package's reader accepts, else (0, the
    reason it would fail), found without decoding it or loading a model."""
    from .audio import AudioError, load_audio

    try:
        return _probe(path), None
    except Exception:  # noqa: BLE001 - the reader says why, as it would during the run
        try:
            load_audio(path)  # fails at the header, before decoding anything
        except AudioError as exc:
            return 0.0, str(exc)
        except Exception as exc:  # noqa: BLE001
            return 0.0, failure_reason(exc)
        return 0.0, None


# ----------------------------------------------------------------------------------------------
# the work: a model per worker, one file at a time

class LocalTranscriber:
    """The default "transcribe one file" callable: loads the model `options` describe once
    (phoenix_npu.whisper.WhisperModel: faster-whisper with the encoder on PhoenixNPU), then
    `self(path)` -> the file's FileResult, raising AudioError for a file that cannot be read.
    `on_progress(seconds)`, when set, hears how far the decoding is through the audio."""

    def __init__(self, options: TranscribeOptions):
        from .faster import load_model

        self.options = options
        self.model = load_model(options)
        self.on_progress: Callable[[float], None] | None = None

    def __call__(self, path: str) -> FileResult:
        from .audio import load_audio
        from .faster import transcribe_file

        return transcribe_file(self.model, path, load_audio(path), self.options, on_progress=self.on_progress)


def default_factory(options: TranscribeOptions) -> Factory:
    return functools.partial(LocalTranscriber, options)


def local_executor(factory: Factory, jobs: Iterable[Job],
                   on_progress: Callable[[float], None] | None = None) -> Iterator[Outcome]:
    """Transcribe in this process, one file after another. The model is loaded when the first
    file needs it; an error loading it is raised (it would fail every file). on_progress is
    handed to a callable that takes it (LocalTranscriber: seconds of audio decoded)."""
    fn = None
    me = f"{os.uname().nodename}:{os.getpid()}"
    for job in jobs:
        if fn is None:
            fn = factory()
            if on_progress is not None and hasattr(fn, "on_progress"):
                fn.on_progress = on_progress
        start = time.monotonic()
        try:
            result = fn(job.path)
        except Exception as exc:  # noqa: BLE001 - a bad file is reported and the run goes on
            yield Outcome(job, error=failure_reason(exc), seconds=time.monotonic() - start, worker=me)
            continue
        yield Outcome(job, result=result, seconds=time.monotonic() - start, worker=me)


# ----------------------------------------------------------------------------------------------
# a run: plan, skip what is done, execute, write, summarise

@dataclass
class BatchRun:
    """One batch run over `jobs`. Iterate it for the results (FileResults, failed ones with
    their `error`) as they finish; `summary()` says what happened. With `out_dir`, each result is
    written to its job's target as it arrives and the summary to out_dir/SUMMARY_NAME."""
    jobs: list[Job]
    executor: Callable[[Iterable[Job]], Iterator[Outcome]]
    out_dir: Path | None = None
    fmt: str = "json"
    overwrite: bool = False
    progress: bool = False
    meta: dict = field(default_factory=dict)
    precheck: bool = True
    stop: threading.Event = field(default_factory=threading.Event)  # set: stop after the current file
    records: dict[str, dict] = field(default_factory=dict, init=False)
    status: str = field(default="not started", init=False)
    write_failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._started = time.time()
        self._t0 = time.monotonic()
        self._audio_done = 0.0
        self._finished = False
        self._said_encoder = False
        self._bar_obj = None
        self._bar_file_start = 0.0
        self._files_done = self._files_total = 0

    # -- planning
    def pending(self) -> list[Job]:
        """Jobs with no complete result yet (all of them without an output folder or with
        overwrite); the others are recorded as skipped."""
        todo = []
        for job in self.jobs:
            if self.out_dir is not None and not self.overwrite and is_complete(job, self.out_dir):
                self._record(job, "skipped")
            else:
                self._record(job, "not started")
                todo.append(job)
        return todo

    def _record(self, job: Job, status: str, **extra) -> None:
        rec = {"input": job.path, "status": status}
        if job.target is not None:
            rec["output"] = str(job.target)
        rec.update(extra)
        self.records[job.path] = rec

    # -- running
    def __iter__(self) -> Iterator[FileResult]:
        if self.out_dir is not None:
            _remove_stale_temporaries(self.jobs, self.out_dir)
        todo = self.pending()
        skipped = len(self.jobs) - len(todo)
        if skipped:
            log.info("%d of %d file(s) already transcribed in %s: skipped (--overwrite to redo them)",
                     skipped, len(self.jobs), self.out_dir)
        bad: list[Outcome] = []
        for job in todo:
            if self.precheck:  # unreadable files fail now, without a model or a worker
                job.duration, reason = precheck(job.path)
                if reason is not None:
                    bad.append(Outcome(job, error=reason))
            else:
                job.duration = header_duration(job.path)
        failed_early = {id(o.job) for o in bad}
        todo = [j for j in todo if id(j) not in failed_early]
        self.status = "running"
        bar = self._bar(todo + [o.job for o in bad])
        quiet_bar = contextlib.ExitStack()
        if bar is not None:  # log lines above the bar, not through it
            from tqdm.contrib.logging import logging_redirect_tqdm

            quiet_bar.enter_context(logging_redirect_tqdm([logging.getLogger("phoenix_npu")]))
        try:
            for out in bad:
                yield self._finish_one(out, bar)
            if todo:
                run_todo = (functools.partial(self.executor, on_progress=self.on_progress)
                            if self._bar_obj is not None else self.executor)
                for out in run_todo(todo):
                    if self.stop.is_set() and out.error is not None:
                        raise _interrupt(self.stop)  # a failure the interrupt itself likely caused: not recorded
                    yield self._finish_one(out, bar)
                    if self.stop.is_set():  # an interrupt a library swallowed: stop at this file boundary
                        raise _interrupt(self.stop)
            self.status = "complete"
        except KeyboardInterrupt:
            self.status = "interrupted"
            raise
        except GeneratorExit:  # the consumer stopped (it may have said why in self.status)
            if self.status == "running":
                self.status = "stopped by the caller"
            raise
        except BaseException as exc:
            self.status = f"stopped: {failure_reason(exc)}"
            raise
        finally:
            if bar is not None:
                bar.close()
            quiet_bar.close()
            self.finish()

    def _finish_one(self, out: Outcome, bar) -> FileResult:
        job = out.job
        if out.error is not None:
            log.warning("failed: %s", out.error if out.error.startswith(job.path) else f"{job.path}: {out.error}")
            self._record(job, "failed", reason=out.error, worker=out.worker)
            result = FileResult(job.path, duration=job.duration, error=out.error)
            self._advance(bar, job.duration)
        else:
            result = out.result
            encoder = getattr(result, "encoder", "")
            if not self._said_encoder and self.meta.get("cluster", "none") != "none" and encoder:
                self._said_encoder = True  # the workers' own log lines stay on the workers
                log.info("encoder (on the workers): %s", encoder)
            duration = float(getattr(result, "duration", 0.0) or job.duration)
            self._advance(bar, duration)
            self._audio_done += duration
            extra = {"duration": round(duration, 3), "seconds": round(out.seconds, 3), "worker": out.worker}
            if job.target is not None and not self._write(job, result):
                self._record(job, "failed", reason="could not write the result", **extra)
            else:
                self._record(job, "done", **extra)
        if bar is not None:
            self._files_done += 1
            bar.set_postfix_str(self._rate(), refresh=True)
        return result

    def _advance(self, bar, seconds: float) -> None:
        """The bar to the end of the file just finished (on_progress moved it within the file)."""
        if bar is not None:
            self._bar_file_start += seconds
            bar.update(max(0.0, round(self._bar_file_start - bar.n, 1)))

    def on_progress(self, seconds: float) -> None:
        """seconds more of the current file decoded (local_executor's LocalTranscriber)."""
        if self._bar_obj is not None:
            self._bar_obj.update(round(seconds, 1))

    def _write(self, job: Job, result: FileResult) -> bool:
        target = job.target
        try:
            write_result(self.out_dir, target, format_result(result, self.fmt), job.path)
        except OSError as exc:
            self.write_failures += 1
            log.error("could not write %s: %s", target, exc.strerror or exc)
            return False
        log.debug("wrote %s", target)
        return True

    def _bar(self, todo: list[Job]):
        """A bar over the seconds of audio (moving within a file as it is decoded, in this
        process), with the files done and the real-time factor beside it."""
        if not self.progress or not todo:
            return None
        from tqdm import tqdm

        self._files_total = len(todo)
        total = round(sum(j.duration for j in todo), 1)
        self._bar_obj = tqdm(total=total, unit="s", unit_scale=False, desc="transcribing", file=sys.stderr,
                             dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio "
                                                            "[{elapsed}<{remaining}{postfix}]")
        return self._bar_obj

    def _rate(self) -> str:
        wall = time.monotonic() - self._t0
        rtf = f"{wall / self._audio_done:.3f}" if self._audio_done else "-"
        return f"{self._files_done}/{self._files_total} files, RTF {rtf}"

    # -- the summary
    def counts(self) -> dict[str, int]:
        out = {"done": 0, "skipped": 0, "failed": 0, "not started": 0}
        for rec in self.records.values():
            out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out

    def summary(self) -> dict:
        wall = time.monotonic() - self._t0
        return {
            "status": self.status,
            "started": _iso(self._started),
            "finished": _iso(time.time()),
            **self.meta,
            "counts": self.counts(),
            "audio_seconds_done": round(self._audio_done, 3),
            "wall_seconds": round(wall, 3),
            "rtf": round(wall / self._audio_done, 4) if self._audio_done else None,
            "files": list(self.records.values()),
        }

    def finish(self) -> dict:
        """Write the summary (once) and log the totals."""
        s = self.summary()
        if self._finished:
            return s
        self._finished = True
        c = s["counts"]
        # a run into an output folder says what it did; a file or two to stdout only the transcript
        log.log(logging.INFO if self.out_dir is not None else logging.DEBUG,
                "%s: %d done, %d skipped, %d failed%s; %.2f min of audio in %.1f s (real-time factor %s)",
                 s["status"], c["done"], c["skipped"], c["failed"],
                 f", {c['not started']} not started" if c["not started"] else "",
                 s["audio_seconds_done"] / 60, s["wall_seconds"], s["rtf"] if s["rtf"] is not None else "-")
        if self.out_dir is not None:
            path = self.out_dir / SUMMARY_NAME
            try:
                write_output(path, json.dumps(s, indent=2, ensure_ascii=False) + "\n")
                log.info("run summary: %s", path)
            except OSError as exc:
                log.error("could not write the run summary %s: %s", path, exc.strerror or exc)
        return s


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------
# Python API

def transcribe_batch(paths: str | os.PathLike | Sequence[str | os.PathLike], options: TranscribeOptions | None = None,
                     *, output: str | os.PathLike | None = None, format: str = "json", overwrite: bool = False,
                     cluster: str | None = None, workers: int | None = None, progress: bool | None = None,
                     factory: Factory | None = None, run: list | None = None, stop: threading.Event | None = None,
                     _inputs: list[tuple[str, str]] | None = None, **option_fields) -> Iterator[FileResult]:
    """Transcribe files, folders and @lists; yield each result (a FileResult; one with `error`
    for a file that failed) as it finishes.

    options: TranscribeOptions (which model, where the encoder runs, how to decode); its
    fields may also be given as keywords (model="base", device="emulator"), which override
    it. They reach the worker unchanged, except that with local:N and threads=0 each worker
    gets this machine's cores divided among the workers, and with int8 the INT8 encoder is
    quantized once here (options.encoder_model), not in every worker.
    output: a folder: results are written there as they finish (one file per input in
    `format`), inputs already done are skipped (not yielded) unless `overwrite`, and a run
    summary is written. cluster: None (this process), "local:N" (N Ray worker processes on
    this machine) or "ray://HOST:PORT" (an existing Ray cluster; needs phoenix-npu[cluster]).
    workers: Ray actors (default: N for local:N, one per node for a cluster).
    factory: a picklable callable returning a "transcribe one file" callable (default:
    LocalTranscriber with the options). run: pass a list to receive the BatchRun (its
    summary()) when the generator starts. stop: an Event; once set, the run stops (as
    interrupted) when the current file is done."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    fmt = format
    if fmt not in EXTENSIONS:
        raise ValueError(f"format must be one of {', '.join(EXTENSIONS)}, not {fmt!r}")
    options = options or TranscribeOptions()
    if not isinstance(options, TranscribeOptions):
        raise TypeError(f"options must be a TranscribeOptions, not {type(options).__name__} (the model: "
                        "transcribe_batch(paths, model=...) or TranscribeOptions(model=...))")
    if option_fields:
        options = replace(options, **option_fields)
    out_dir = Path(output) if output is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(_inputs if _inputs is not None else expand_inputs(paths), out_dir, fmt)
    executor, meta = make_executor(options, cluster, workers, factory)
    batch = BatchRun(jobs, executor, out_dir, fmt, overwrite, _progress(progress), meta=meta,
                     precheck=factory is None,  # another pipeline may read what soundfile does not
                     stop=stop or threading.Event())
    if run is not None:
        run.append(batch)
    yield from batch


def _progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


def make_executor(options: TranscribeOptions, cluster: str | None, workers: int | None,
                  factory: Factory | None) -> tuple[Callable[..., Iterator[Outcome]], dict]:
    """The executor for `cluster` and what the summary says about the run. Checks the
    cluster spec (and that Ray is installed) now; starts nothing until there is work. The
    executor takes the jobs (and, in this process, a progress callback)."""
    meta: dict[str, Any] = {"model": options.model, "device": options.device, "cluster": cluster or "none"}
    if cluster is None:
        return functools.partial(local_executor, factory or default_factory(options)), meta
    from .cluster import ClusterSpec, ray_executor

    spec = ClusterSpec.parse(cluster)
    spec.require_ray()

    def executor(jobs: Iterable[Job], on_progress=None) -> Iterator[Outcome]:
        opts = options
        if factory is None and spec.local:
            # export (and quantize) the model once here, not in every worker at the same time
            from .faster import resolve_paths

            resolve_paths(opts.model)  # imports and exports into the cache; workers find it there
        if factory is None and opts.int8 and opts.encoder_model is None:
            from .int8 import int8_encoder_path

            opts = replace(opts, encoder_model=str(int8_encoder_path(opts.model)))
        n, threads = spec.sizing(workers, opts.threads)
        opts = replace(opts, threads=threads)
        meta.update(workers=n, threads_per_worker=threads)
        yield from ray_executor(spec, factory or default_factory(opts), jobs, workers=n, stats=meta)

    return executor, meta


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd, docker, `timeout`), handled as Ctrl-C is: what is finished is kept and
    the run summary written; the exit status is 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def exit_on_sigterm(command: Callable[[], int], prog: str) -> int:
    """Run `command` (the work of a CLI run) with SIGINT and SIGTERM handled as interrupts
    (interrupt_on_signals): on SIGTERM, once the command has kept what it finished, say so
    and return 128 + 15 (Ctrl-C's KeyboardInterrupt goes on to the CLI, which returns 130)."""
    try:
        return command()
    except Terminated as exc:
        print(f"{prog}: interrupted (SIGTERM)", file=sys.stderr)
        return 128 + exc.signum


def _interrupt(stop: threading.Event) -> KeyboardInterrupt:
    """What a run stopped by `stop` raises: Terminated when SIGTERM set it (so the CLI exits
    with 143 even when a library swallowed the exception the handler raised), else
    KeyboardInterrupt."""
    signum = getattr(stop, "signum", signal.SIGINT)
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


@contextlib.contextmanager
def interrupt_on_signals(stop: threading.Event | None = None):
    """Ctrl-C (SIGINT) and SIGTERM raise KeyboardInterrupt (Terminated for SIGTERM) and set
    `stop`, so that an interrupt swallowed inside a library (a callback, a destructor) still
    ends the run at the next file. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop is not None:
            stop.signum = signum  # which one, for a run that stops at the file boundary (_interrupt)
            stop.set()
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


__all__ = ["AUDIO_EXTENSIONS", "BatchRun", "Job", "LocalTranscriber", "Outcome", "SUMMARY_NAME", "TranscribeOptions",
           "expand_inputs", "is_complete", "local_executor", "plan_jobs", "transcribe_batch"]
