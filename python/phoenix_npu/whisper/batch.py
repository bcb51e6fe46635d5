"""Batch transcription of archives: folders and file lists in, one result per input out,
resumable.

    from phoenix_npu.whisper.batch import transcribe_batch
    for r in transcribe_batch(["archive/"], model="tiny.en", output="out/", format="json",
                              cluster="local:2"):
        print(r["path"], r.get("error") or r["text"])

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

The work itself is done by an *executor* that takes a factory (called once per worker, where
the worker runs: it loads the model and returns a "transcribe one file" callable, path ->
result dict, raising for a file that fails) and the files; it yields each file's outcome as
it finishes. `local_executor` runs in this process; `phoenix_npu.whisper.cluster` fans the
files out over Ray actors. Any factory works: the default one (`LocalTranscriber`) uses this
package's Optimum pipeline.
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
from .formats import EXTENSIONS, format_result, format_results
from .jobs import Factory, Job, Outcome, failure_reason  # noqa: F401  (re-exported)
from .outputs import SUMMARY_NAME, is_result_of, plan_targets, remove_stale_temporaries, write_output, write_result
from .transcribe import DEFAULT_MODEL

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

@dataclass(frozen=True)
class Options:
    """How to load the model and decode (the arguments of transcribe.load_model /
    iter_transcribe); picklable, so it can be sent to Ray workers."""
    model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: str = "bf16"
    bf16: bool = False
    decoder_device: str = "cpu"
    threads: int = 0
    return_timestamps: bool = False
    language: str | None = None
    num_beams: int = 1
    engine: str = "optimum"       # or "faster-whisper" (phoenix_npu.whisper.faster)
    task: str = "transcribe"      # the faster-whisper engine's options
    word_timestamps: bool = False
    vad_filter: bool = False
    int8: str | None = None       # a QDQ encoder .onnx (int8.int8_encoder_path) instead of the FP32 one


class LocalTranscriber:
    """The default "transcribe one file" callable: loads the model once (the engine's: this
    package's Optimum pipeline or faster-whisper, encoder on PhoenixNPU either way), then
    `self(path)` -> the file's result dict, raising AudioError for a file that cannot be read."""

    def __init__(self, options: Options):
        self.options = options
        if options.engine == "faster-whisper":
            from .faster import WhisperModel
            from .int8 import INT8_DECODER

            self.model = WhisperModel(options.model, encoder_device=options.device, precision=options.precision,
                                      cpu_threads=options.threads, encoder_model=options.int8,
                                      compute_type=INT8_DECODER if options.int8 else "default")
        else:
            from .transcribe import load_model

            self.model = load_model(options.model, device=options.device, bf16=options.bf16,
                                    decoder_device=options.decoder_device, threads=options.threads,
                                    precision=options.precision, int8=options.int8 or False)

    def __call__(self, path: str) -> dict:
        o = self.options
        if o.engine == "faster-whisper":
            from .faster import iter_transcribe as fw_iter_transcribe

            return next(fw_iter_transcribe([path], language=o.language, task=o.task, beam_size=o.num_beams,
                                           word_timestamps=o.word_timestamps, vad_filter=o.vad_filter,
                                           errors="raise", whisper_model=self.model,
                                           timestamps=o.return_timestamps))
        from .transcribe import transcribe

        [result] = transcribe([path], transcriber=self.model, return_timestamps=o.return_timestamps,
                              language=o.language, num_beams=o.num_beams, progress=False, errors="raise")
        return result


def default_factory(options: Options) -> Factory:
    return functools.partial(LocalTranscriber, options)


def local_executor(factory: Factory, jobs: Iterable[Job]) -> Iterator[Outcome]:
    """Transcribe in this process, one file after another. The model is loaded when the first
    file needs it; an error loading it is raised (it would fail every file)."""
    fn = None
    me = f"{os.uname().nodename}:{os.getpid()}"
    for job in jobs:
        if fn is None:
            fn = factory()
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
    """One batch run over `jobs`. Iterate it for the results (dicts, failed ones with an
    "error") as they finish; `summary()` says what happened. With `out_dir`, each result is
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
    def __iter__(self) -> Iterator[dict]:
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
                for out in self.executor(todo):
                    if self.stop.is_set() and out.error is not None:
                        raise KeyboardInterrupt  # a failure the interrupt itself likely caused: not recorded
                    yield self._finish_one(out, bar)
                    if self.stop.is_set():  # an interrupt a library swallowed: stop at this file boundary
                        raise KeyboardInterrupt
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

    def _finish_one(self, out: Outcome, bar) -> dict:
        job = out.job
        if out.error is not None:
            log.warning("failed: %s", out.error if out.error.startswith(job.path) else f"{job.path}: {out.error}")
            self._record(job, "failed", reason=out.error, worker=out.worker)
            result = {"path": job.path, "text": "", "chunks": [], "duration": job.duration, "error": out.error}
        else:
            result = out.result
            if not self._said_encoder and self.meta.get("cluster", "none") != "none" and result.get("encoder"):
                self._said_encoder = True  # the workers' own log lines stay on the workers
                log.info("encoder (on the workers): %s", result["encoder"])
            duration = float(result.get("duration") or job.duration)
            self._audio_done += duration
            extra = {"duration": round(duration, 3), "seconds": round(out.seconds, 3), "worker": out.worker}
            if job.target is not None and not self._write(job, result):
                self._record(job, "failed", reason="could not write the result", **extra)
            else:
                self._record(job, "done", **extra)
        if bar is not None:
            bar.set_postfix_str(self._rate(), refresh=False)
            bar.update(1)
        return result

    def _write(self, job: Job, result: dict) -> bool:
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
        if not self.progress or not todo:
            return None
        from tqdm import tqdm

        self._audio_total = sum(j.duration for j in todo)
        return tqdm(total=len(todo), unit="file", desc="transcribing", file=sys.stderr, dynamic_ncols=True)

    def _rate(self) -> str:
        wall = time.monotonic() - self._t0
        rtf = f"{wall / self._audio_done:.3f}" if self._audio_done else "-"
        total = getattr(self, "_audio_total", 0.0)
        if total >= 3600:
            return f"audio {self._audio_done / 3600:.2f}/{total / 3600:.2f} h, RTF {rtf}"
        return f"audio {self._audio_done / 60:.1f}/{total / 60:.1f} min, RTF {rtf}"

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
        log.info("%s: %d done, %d skipped, %d failed%s; %.2f min of audio in %.1f s (real-time factor %s)",
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

def transcribe_batch(paths: str | os.PathLike | Sequence[str | os.PathLike], model: str | os.PathLike = DEFAULT_MODEL,
                     *, output: str | os.PathLike | None = None, format: str = "json", overwrite: bool = False,
                     cluster: str | None = None, workers: int | None = None, device: str = "auto",
                     precision: str = "bf16", bf16: bool = False, decoder_device: str = "cpu", threads: int = 0,
                     return_timestamps: bool | None = None, language: str | None = None, num_beams: int = 1,
                     engine: str = "optimum", task: str = "transcribe", word_timestamps: bool = False,
                     vad_filter: bool = False, int8: str | os.PathLike | None = None,
                     progress: bool | None = None, factory: Factory | None = None,
                     run: list | None = None, stop: threading.Event | None = None,
                     _inputs: list[tuple[str, str]] | None = None) -> Iterator[dict]:
    """Transcribe files, folders and @lists; yield each result (a dict as from
    transcribe.transcribe, or {"path", "error"} for a file that failed) as it finishes.

    output: a folder: results are written there as they finish (one file per input in
    `format`), inputs already done are skipped (not yielded) unless `overwrite`, and a run
    summary is written. cluster: None (this process), "local:N" (N Ray worker processes on
    this machine) or "ray://HOST:PORT" (an existing Ray cluster; needs phoenix-npu[cluster]).
    workers: Ray actors (default: N for local:N, one per node for a cluster). threads: per
    worker (default for local:N: this machine's cores divided among the workers).
    factory: a picklable callable returning a "transcribe one file" callable (default: this
    package's pipeline with the options above; engine "faster-whisper" takes task,
    word_timestamps and vad_filter too). int8: a QDQ encoder .onnx (int8.int8_encoder_path)
    for the encoder. run: pass a list to receive the BatchRun
    (its summary()) when the generator starts. stop: an Event; once set, the run stops (as
    interrupted) when the current file is done."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    fmt = format
    if fmt not in EXTENSIONS:
        raise ValueError(f"format must be one of {', '.join(EXTENSIONS)}, not {fmt!r}")
    if return_timestamps is None:
        return_timestamps = fmt in ("srt", "vtt", "json")
    out_dir = Path(output) if output is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(_inputs if _inputs is not None else expand_inputs(paths), out_dir, fmt)
    options = Options(model=str(model), device=device, precision=precision, bf16=bf16, decoder_device=decoder_device,
                      threads=threads, return_timestamps=return_timestamps, language=language, num_beams=num_beams,
                      engine=engine, task=task, word_timestamps=word_timestamps, vad_filter=vad_filter,
                      int8=str(int8) if int8 else None)
    executor, meta = make_executor(options, cluster, workers, factory)
    batch = BatchRun(jobs, executor, out_dir, fmt, overwrite, _progress(progress), meta=meta,
                     precheck=factory is None,  # another pipeline may read what soundfile does not
                     stop=stop or threading.Event())
    if run is not None:
        run.append(batch)
    yield from batch


def _progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


def make_executor(options: Options, cluster: str | None, workers: int | None,
                  factory: Factory | None) -> tuple[Callable[[Iterable[Job]], Iterator[Outcome]], dict]:
    """The executor for `cluster` and what the summary says about the run. Checks the
    cluster spec (and that Ray is installed) now; starts nothing until there is work."""
    meta: dict[str, Any] = {"model": options.model, "device": options.device, "engine": options.engine,
                            "cluster": cluster or "none"}
    if cluster is None:
        f = factory or default_factory(options)
        return functools.partial(local_executor, f), meta
    from .cluster import ClusterSpec, ray_executor

    spec = ClusterSpec.parse(cluster)
    spec.require_ray()

    def executor(jobs: Iterable[Job]) -> Iterator[Outcome]:
        opts = options
        if factory is None and spec.local:
            # export the model once here, not in every worker at the same time
            from .export import ensure_exported

            if opts.engine == "faster-whisper":
                from .faster import resolve_paths

                resolve_paths(opts.model)  # imports and exports into the cache; workers find it there
            else:
                opts = replace(opts, model=str(ensure_exported(opts.model, bf16=opts.bf16)))
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
            stop.set()
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


__all__ = ["AUDIO_EXTENSIONS", "BatchRun", "Job", "LocalTranscriber", "Options", "Outcome", "SUMMARY_NAME",
           "expand_inputs", "is_complete", "local_executor", "plan_jobs", "transcribe_batch"]
