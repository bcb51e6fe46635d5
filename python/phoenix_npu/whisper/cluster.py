"""Fan-out of batch transcription over Ray (the optional extra: pip install 'phoenix-npu[cluster]').

    --cluster local:N          N worker processes on this machine (a private Ray instance,
                               started for the run and shut down after it)
    --cluster ray://HOST:PORT  an existing Ray cluster (Ray Client); one worker per node
                               unless --workers says otherwise

One actor per worker loads the model once (on an NPU machine: one per NPU) and transcribes
one file at a time; the driver hands each worker its next file when it returns the last one
(dynamic scheduling: long and short files even out) and writes the results itself, into the
same output layout as a single-process run (phoenix_npu.whisper.batch). A worker that dies
(its process killed, its node lost) has its file put back at the front of the queue and is
replaced while the replacement budget (one per worker) lasts; a file during which workers
died twice is reported as failed instead of taking down a third. On a remote cluster the
driver sends each file's bytes with the task, so the workers need no shared filesystem; with
local:N the workers read the files themselves.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .jobs import Factory, Job, Outcome, failure_reason

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'phoenix-npu[cluster]'"
MAX_DEATHS_PER_FILE = 2
LOCAL_OBJECT_STORE = 100 << 20        # bytes; local workers read files themselves
SHIPPED_OBJECT_STORE = 1 << 30


class ClusterError(RuntimeError):
    """The cluster cannot be used (bad --cluster, Ray missing, no worker could start);
    `usage` is True for mistakes found before any work."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed --cluster: local_workers > 0 for local:N, else the address of a cluster."""
    address: str | None = None
    local_workers: int = 0

    @property
    def local(self) -> bool:
        return self.local_workers > 0

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        text = text.strip()
        if text.startswith("local:"):
            n = text[len("local:"):]
            if not n.isdigit() or int(n) < 1:
                raise ClusterError(f"--cluster {text}: local:N needs a number of workers, 1 or more (e.g. local:2)",
                                   usage=True)
            return cls(local_workers=int(n))
        if text.startswith("ray://") and len(text) > len("ray://") or text == "auto":
            return cls(address=text)
        raise ClusterError(f"--cluster {text}: give local:N (N worker processes on this machine) or "
                           "ray://HOST:PORT (an existing Ray cluster's client address, port 10001 by default)",
                           usage=True)

    @staticmethod
    def require_ray():
        try:
            import ray
        except ImportError:
            raise ClusterError(f"--cluster needs Ray, which is not installed: {INSTALL_HINT}", usage=True) from None
        return ray

    def sizing(self, workers: int | None, threads: int) -> tuple[int | None, int]:
        """(workers, threads per worker). local:N: N workers sharing this machine's cores
        (threads = cores // N unless given). A cluster: `workers` (None: one per node, decided
        once connected), threads as given (0: each worker's ORT default)."""
        if self.local:
            if workers not in (None, self.local_workers):
                log.warning("--workers %s ignored: local:%d says how many", workers, self.local_workers)
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            return self.local_workers, threads or max(1, cores // self.local_workers)
        return workers, threads


class Worker:
    """The Ray actor: one loaded model (factory() -> "transcribe one file" callable). Never
    raises out of a method: a file's failure and a failed model load are returned, so that
    any Ray error the driver sees means the worker itself is gone."""

    def __init__(self, factory: Factory):
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.error = None
        try:
            self.fn = factory()
        except Exception as exc:  # noqa: BLE001 - reported to the driver by ready()/transcribe()
            self.fn, self.error = None, failure_reason(exc)

    def ready(self) -> dict:
        return {"worker": self.name, "error": self.error}

    def transcribe(self, path: str, data: bytes | None = None) -> dict:
        if self.fn is None:
            return {"worker": self.name, "setup_error": self.error}
        start = time.monotonic()
        if data is None:
            return self._run(path, path, start)
        # a file sent by the driver: written under its own name into a private temporary
        # folder, transcribed, and reported under the driver's path
        with tempfile.TemporaryDirectory(prefix="phoenix-npu-") as d:
            local = Path(d) / Path(path).name
            local.write_bytes(data)
            return self._run(str(local), path, start)

    def _run(self, local: str, path: str, start: float) -> dict:
        try:
            result = self.fn(local)
        except Exception as exc:  # noqa: BLE001 - a bad file: reported, the worker goes on
            reason = failure_reason(exc).replace(local, path)
            return {"worker": self.name, "error": reason, "seconds": time.monotonic() - start}
        return {"worker": self.name, "result": _with_path(result, path), "seconds": time.monotonic() - start}


def _with_path(result, path: str):
    """The result under the driver's path (a FileResult, or a dict from another factory)."""
    if dataclasses.is_dataclass(result):
        return dataclasses.replace(result, path=path)
    if isinstance(result, dict):
        return {**result, "path": path}
    return result


@dataclass
class _Slot:
    actor: object
    name: str = "?"
    job: Job | None = None
    ref: object = None


def ray_executor(spec: ClusterSpec, factory: Factory, jobs: Iterable[Job], workers: int | None = None,
                 ship_audio: bool | None = None, stats: dict | None = None) -> Iterator[Outcome]:
    """Transcribe `jobs` on Ray workers, yielding each Outcome as it finishes (see the module
    docstring). Starts (local:N) or connects to Ray, and shuts down what it started, also when
    the consumer stops early or is interrupted. `stats` gets workers_lost and rescheduled."""
    ray = spec.require_ray()
    ship = (not spec.local) if ship_audio is None else ship_audio
    stats = stats if stats is not None else {}
    stats.setdefault("workers_lost", 0)
    stats.setdefault("rescheduled", [])
    own = not ray.is_initialized()
    if own:
        _init(ray, spec, workers, ship)
    slots: list[_Slot] = []
    try:
        if workers is None:
            workers = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        actor_cls = ray.remote(Worker)
        opts = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}
        if not spec.local:
            opts["scheduling_strategy"] = "SPREAD"

        def start() -> _Slot:
            return _Slot(actor_cls.options(**opts).remote(factory))

        slots = _ready(ray, [start() for _ in range(workers)])
        log.info("%d Ray worker(s) ready: %s", len(slots), ", ".join(s.name for s in slots))
        replacements = workers
        pending: deque[Job] = deque(jobs)
        deaths: dict[str, int] = {}
        failed_reads: list[Outcome] = []

        def feed(slot: _Slot) -> None:
            while pending and slot.job is None:
                job = pending.popleft()
                data = None
                if ship:
                    try:
                        data = Path(job.path).read_bytes()
                    except OSError as exc:
                        failed_reads.append(Outcome(job, error=f"{job.path}: cannot be read ({exc.strerror or exc})"))
                        continue
                slot.job, slot.ref = job, slot.actor.transcribe.remote(job.path, data)

        for s in slots:
            feed(s)
        while True:
            while failed_reads:
                yield failed_reads.pop(0)
            busy = {s.ref: s for s in slots if s.job is not None}
            if not busy:
                if pending:
                    raise ClusterError(f"no Ray worker left to transcribe the {len(pending)} remaining file(s)")
                break
            [ref], _ = ray.wait(list(busy), num_returns=1)
            slot = busy[ref]
            job, slot.job, slot.ref = slot.job, None, None
            try:
                out = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # not raised by Worker; e.g. a result Ray cannot return
                feed(slot)
                yield Outcome(job, error=f"the worker failed on it: {exc.cause!r}", worker=slot.name)
                continue
            except ray.exceptions.RayError as exc:  # the worker process or its node is gone
                slots.remove(slot)
                stats["workers_lost"] += 1
                deaths[job.path] = deaths.get(job.path, 0) + 1
                why = type(exc).__name__
                if deaths[job.path] >= MAX_DEATHS_PER_FILE:
                    log.warning("worker %s died (%s) on %s, the %s time for that file: reported as failed",
                                slot.name, why, job.path, "second" if deaths[job.path] == 2 else "nth")
                    yield Outcome(job, error=f"{deaths[job.path]} workers died while transcribing it "
                                             "(the file may crash the worker)", worker=slot.name)
                else:
                    log.warning("worker %s died (%s); %s rescheduled", slot.name, why, job.path)
                    stats["rescheduled"].append(job.path)
                    pending.appendleft(job)
                if replacements > 0:
                    replacements -= 1
                    new = start()
                    new.name = "starting"
                    slots.append(new)
                    log.info("starting a replacement worker (%d more allowed)", replacements)
                for s in slots:
                    feed(s)
                continue
            slot.name = out.get("worker", slot.name)
            if "setup_error" in out:  # a replacement that could not load the model
                log.error("worker %s could not load the model: %s", slot.name, out["setup_error"])
                slots.remove(slot)
                ray.kill(slot.actor)
                pending.appendleft(job)
                for s in slots:
                    feed(s)
                continue
            feed(slot)  # its next file first, then the result to the consumer
            if "error" in out:
                yield Outcome(job, error=out["error"], seconds=out.get("seconds", 0.0), worker=slot.name)
            else:
                yield Outcome(job, result=out["result"], seconds=out.get("seconds", 0.0), worker=slot.name)
    finally:
        for s in slots:
            try:
                ray.kill(s.actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if own:
            ray.shutdown()


def _init(ray, spec: ClusterSpec, workers: int | None, ship: bool) -> None:
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": True,
             "logging_level": logging.WARNING}
    try:
        if spec.local:
            ray.init(num_cpus=workers, object_store_memory=SHIPPED_OBJECT_STORE if ship else LOCAL_OBJECT_STORE,
                     **quiet)
        else:
            quiet.pop("include_dashboard")
            ray.init(address=spec.address, **quiet)
    except ConnectionError as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {spec.address}: {exc}") from None


def _ready(ray, slots: list[_Slot]) -> list[_Slot]:
    """Wait for every worker's model; keep the ones that loaded it. None: ClusterError with
    the first worker's reason (the same for all, typically)."""
    refs = {s.actor.ready.remote(): s for s in slots}
    good, errors = [], []
    for ref, slot in refs.items():
        try:
            info = ray.get(ref)
        except ray.exceptions.RayError as exc:
            errors.append(f"a worker died while starting ({type(exc).__name__})")
            continue
        slot.name = info["worker"]
        if info["error"]:
            errors.append(f"{slot.name}: {info['error']}")
            ray.kill(slot.actor)
        else:
            good.append(slot)
    for e in errors:
        log.error("worker not started: %s", e)
    if not good:
        raise ClusterError(f"no Ray worker could load the model: {errors[0] if errors else 'no workers'}")
    return good
