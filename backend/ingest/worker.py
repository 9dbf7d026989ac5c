"""The job worker: one named thread that claims durable jobs and runs their handlers.

Claiming, finishing and retrying are single writes through the store's writer, so every
state change is durable before the worker acts on it. Handlers get a :class:`JobContext`
(cancellation + progress); progress goes to the jobs table (throttled) and to the event bus
with an ETA. ``pause()`` stops claiming new jobs (the running one finishes), persisted in
``kv`` so a paused ingest stays paused across restarts.

``gates`` hold back job kinds whose prerequisite is not there yet (ingest waits while the
embedding model loads): such jobs stay ``queued`` instead of being claimed and bounced, so a
crash during model loading costs them no attempt.

A full disk (:mod:`backend.maintenance.diskspace`) holds back every kind the same way: a job
that failed on it is re-queued without counting an attempt, and the worker claims nothing
while ``store.disk`` says the disk is full. A state change that cannot be written then (the
disk is full) is kept and written first once space is back; the thread never dies of it.
Schedules (claiming due jobs, backoff) read the wall clock through ``clock``
(:mod:`backend.maintenance.clock`).

Every end of a job run is counted in :attr:`JobWorker.outcomes` and told to ``on_outcome(kind,
outcome)`` (metrics): ``done``, ``retried`` (failed, queued again with backoff), ``failed``
(gave up: attempts used up), ``cancelled``, ``deferred`` (put back without counting an attempt:
the model is loading, the disk is full) and ``interrupted`` (shutdown; runs at the next start).
Jobs a crash left running count as ``retried`` or ``failed`` when :meth:`JobWorker.start`
recovers them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import apsw

from backend.components import ComponentState, StatusCell
from backend.errors import SidecarError, Unavailable
from backend.events import EventBus
from backend.ingest.pipeline import JobCancelled, JobContext, JobInterrupted, Transient, WaitForModel
from backend.maintenance.clock import SYSTEM_CLOCK, Clock
from backend.maintenance.diskspace import is_disk_full
from backend.store import Store, jobs, kv
from backend.store import documents as doc_repo

log = logging.getLogger("docsidecar.jobs")

Handler = Callable[[JobContext], None]
Gate = Callable[[], bool]
OutcomeObserver = Callable[[str, str], object]
OUTCOMES = ("done", "retried", "failed", "cancelled", "deferred", "interrupted")
PAUSED_KEY = "ingest.paused"
PROGRESS_EVERY_S = 0.25
GATED_POLL_S = 0.2
DISK_FULL_REASON = "waiting for disk space"


@dataclass
class _Running:
    job: jobs.Job
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    last_event: float = 0.0
    last_db: float = 0.0


class JobWorker:
    name = "jobs"

    def __init__(
        self,
        store: Store,
        events: EventBus,
        handlers: dict[str, Handler],
        *,
        gates: dict[str, Gate] | None = None,
        retry_base_s: float = jobs.DEFAULT_RETRY_BASE_S,
        thread_name: str = "job-worker",
        clock: Clock = SYSTEM_CLOCK,
        on_outcome: OutcomeObserver | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.handlers = handlers
        self.gates = gates or {}
        self.retry_base_s = retry_base_s
        self.thread_name = thread_name
        self.clock = clock
        self.status = StatusCell()
        self._wake = threading.Condition()
        self._stopping = False
        self._paused = False
        self._thread: threading.Thread | None = None
        self._running: _Running | None = None
        self._deferred: list[Callable[[apsw.Connection], object]] = []  # worker thread only
        self.held_for: str | None = None
        """Why no job is claimed although some may be due (``"disk space"``), else None."""
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._on_outcome = on_outcome

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        with self.store.read() as conn:
            self._paused = kv.get(conn, PAUSED_KEY) == "1"
        try:
            recovered = self.store.write(self._recover)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            log.error("cannot recover interrupted jobs now (disk full); will once space is back")
            self._deferred.append(self._recover)
            recovered = []
        for job, state in recovered:
            self._count(job, "failed" if state == "failed" else "retried")
        if recovered:
            log.warning("recovered %d job(s) interrupted by a restart", len(recovered))
        self._thread = threading.Thread(target=self._main, name=self.thread_name)
        self._thread.start()
        self.status.set(ComponentState.READY, {"paused": self._paused})

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            if self._running is not None:
                self._running.stop.set()  # interrupted, not cancelled: it runs again next start
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.status.set(ComponentState.STOPPED)

    # -- control --------------------------------------------------------------------------
    def notify(self) -> None:
        """Wake the worker: a job was enqueued."""
        with self._wake:
            self._wake.notify_all()

    def pause(self) -> None:
        self.store.write(lambda c: kv.put(c, PAUSED_KEY, "1"))
        with self._wake:
            self._paused = True
        self.status.set(ComponentState.READY, {"paused": True})
        self.events.publish("ingest.paused", {})

    def resume(self) -> None:
        self.store.write(lambda c: kv.put(c, PAUSED_KEY, "0"))
        with self._wake:
            self._paused = False
            self._wake.notify_all()
        self.status.set(ComponentState.READY, {"paused": False})
        self.events.publish("ingest.resumed", {})

    @property
    def paused(self) -> bool:
        with self._wake:
            return self._paused

    def queue_depth(self) -> dict[tuple[str, str], int]:
        """Jobs by ``(kind, where)`` now: ``running``, ``ready`` (queued and claimable now) or why
        a queued job waits — ``paused``, ``disk_full``, ``prerequisite`` (its kind's gate is
        closed: ingest while the model loads), ``backoff`` (its retry delay is not over).
        Each job is counted once, under the first of these that applies."""
        held = "paused" if self.paused else "disk_full" if self.held_for is not None else None
        open_kinds = set(self._open_kinds()[0])
        with self.store.read() as conn:
            rows = jobs.queue_depth(conn, self.clock.time())
        out: dict[tuple[str, str], int] = {}
        for kind, state, due, n in rows:
            if state == "running":
                where = "running"
            elif held is not None:
                where = held
            elif kind not in open_kinds and kind in self.handlers:
                where = "prerequisite"
            else:
                where = "ready" if due else "backoff"
            out[kind, where] = out.get((kind, where), 0) + n
        return out

    def cancel_running(self, job_id: int) -> bool:
        with self._wake:
            if self._running is not None and self._running.job.id == job_id:
                self._running.cancel.set()
                return True
        return False

    @property
    def current_job(self) -> jobs.Job | None:
        with self._wake:
            return self._running.job if self._running else None

    def _recover(self, conn: apsw.Connection) -> list[tuple[jobs.Job, str]]:
        recovered = jobs.recover_interrupted(conn)
        for job, state in recovered:
            if state == "failed":
                _mark_document_failed(conn, job, f"{jobs.INTERRUPTED} (gave up after {job.attempts + 1} attempts)")
        return recovered

    def _count(self, job: jobs.Job, outcome: str) -> None:
        self.outcomes[outcome] += 1
        if self._on_outcome is not None:
            try:
                self._on_outcome(job.kind, outcome)
            except Exception:  # metrics must never break the worker
                log.exception("job outcome hook failed")

    # -- the thread -----------------------------------------------------------------------
    def _open_kinds(self) -> tuple[tuple[str, ...], bool]:
        """Kinds that may be claimed now, and whether some are held back by their gate."""
        kinds = []
        for kind in self.handlers:
            gate = self.gates.get(kind)
            if gate is None or gate():
                kinds.append(kind)
        return tuple(kinds), len(kinds) < len(self.handlers)

    def _main(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                paused = self._paused
            if not self._writable():
                self.held_for = DISK_FULL_REASON.removeprefix("waiting for ")
                self._idle((), paused, True)
                continue
            self.held_for = None
            kinds, gated = self._open_kinds()
            job = None if paused else self._claim(kinds)
            if job is None:
                self._idle(kinds, paused, gated)
                continue
            self._execute(job)

    def _writable(self) -> bool:
        """The disk has room and every state change held back by a full disk is written."""
        if not self.store.disk.writable():
            return False
        while self._deferred:
            try:
                self.store.write(self._deferred[0])
            except Exception as exc:
                if not is_disk_full(exc):
                    log.exception("dropping a job state change that cannot be written")
                    self._deferred.pop(0)
                    continue
                return False
            self._deferred.pop(0)
        return True

    def _write(self, fn: Callable[[apsw.Connection], object]) -> object | None:
        """Write a job state change; on a full disk keep it for later (returns None)."""
        try:
            return self.store.write(fn)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            log.warning("disk full: the job state change is written once space is back")
            self._deferred.append(fn)
            return None

    def _claim(self, kinds: tuple[str, ...]) -> jobs.Job | None:
        try:
            return self.store.write(lambda c: jobs.claim_next(c, kinds, self.clock.time()))
        except Exception as exc:
            if not isinstance(exc, SidecarError) and not is_disk_full(exc):
                raise
            log.warning("cannot claim jobs: %s", exc)
            return None

    def _idle(self, kinds: tuple[str, ...], paused: bool, gated: bool) -> None:
        timeout = GATED_POLL_S if gated and not paused else 1.0
        if not paused:
            with self.store.read() as conn:
                due = jobs.next_due_in(conn, kinds, self.clock.time())
            if due is not None:
                timeout = min(timeout, max(0.01, due))
        with self._wake:
            if not self._stopping:
                self._wake.wait(timeout)

    def _execute(self, job: jobs.Job) -> None:
        running = _Running(job)
        with self._wake:
            self._running = running
            if self._stopping:  # stop() came between the claim and now
                running.stop.set()
        ctx = JobContext(job, running.cancel.is_set, lambda *a: self._progress(running, *a), running.stop.is_set)
        self.events.publish("job.started", {"job_id": job.id, "kind": job.kind, "document_id": job.document_id})
        try:
            self.handlers[job.kind](ctx)
        except JobInterrupted:
            self.store.write(lambda c: jobs.requeue(c, job.id))
            self._count(job, "interrupted")
            log.info("job %d (%s) interrupted by shutdown; it runs again at the next start", job.id, job.kind)
        except JobCancelled:
            self._finish(job, "cancelled", None)
        except WaitForModel as exc:
            message, delay, now = exc.message, exc.retry_after, self.clock.time()
            self._write(lambda c: jobs.retry_later(c, job, message, count_attempt=False, delay=delay, now=now))
            self._count(job, "deferred")
        except (Transient, Unavailable, OSError) as exc:
            if is_disk_full(exc):
                self._disk_full(job, exc)
            else:
                self._retry(job, str(getattr(exc, "message", exc)))
        except Exception as exc:
            if is_disk_full(exc):
                self._disk_full(job, exc)
            else:
                log.exception("job %d (%s) failed", job.id, job.kind)
                self._retry(job, f"{type(exc).__name__}: {exc}")
        else:
            self._finish(job, "done", None)
        finally:
            with self._wake:
                self._running = None

    def _disk_full(self, job: jobs.Job, exc: Exception) -> None:
        """No space to commit the job's work: back to the queue without counting an attempt;
        it runs again once the disk guard sees space (the document says why meanwhile)."""
        self.store.disk.report(exc)
        error = f"disk full: {exc}; {DISK_FULL_REASON}"
        now = self.clock.time()

        def write(conn: apsw.Connection) -> None:
            jobs.retry_later(conn, job, error, count_attempt=False, delay=1.0, now=now)
            if job.kind == "ingest" and job.document_id and doc_repo.get(conn, job.document_id) is not None:
                doc_repo.update(conn, job.document_id, sync=False, status_reason=DISK_FULL_REASON)

        self._write(write)
        self._count(job, "deferred")
        self.events.publish(
            "job.waiting", {"job_id": job.id, "document_id": job.document_id, "reason": DISK_FULL_REASON}
        )

    def _retry(self, job: jobs.Job, error: str) -> None:
        now = self.clock.time()

        def write(conn: apsw.Connection) -> str:
            state = jobs.retry_later(conn, job, error, base=self.retry_base_s, now=now)
            if state == "failed":  # the document says why, in the same transaction
                _mark_document_failed(conn, job, error)
            return state

        state = self._write(write) or "queued"
        if state == "failed":
            self._count(job, "failed")
            self.events.publish(
                "job.failed",
                {
                    "job_id": job.id,
                    "kind": job.kind,
                    "document_id": job.document_id,
                    "error": error,
                },
            )
        else:
            self._count(job, "retried")
            self.events.publish("job.retrying", {"job_id": job.id, "document_id": job.document_id, "error": error})

    def _finish(self, job: jobs.Job, state: str, error: str | None) -> None:
        self._write(lambda c: jobs.finish(c, job.id, state, error))
        self._count(job, state)
        self.events.publish(f"job.{state}", {"job_id": job.id, "kind": job.kind, "document_id": job.document_id})

    def _progress(self, running: _Running, stage: str, done: int, total: int, nbytes: int) -> None:
        now = time.monotonic()
        final = stage == "done"
        if not final and now - running.last_event < PROGRESS_EVERY_S:
            return
        running.last_event = now
        elapsed = now - running.started
        eta = (elapsed / done) * (total - done) if done and total >= done and not final else None
        self.events.publish(
            "job.progress",
            {"job_id": running.job.id, "document_id": running.job.document_id, "stage": stage,
             "done": done, "total": total, "bytes": nbytes, "eta_s": round(eta, 2) if eta is not None else None},
        )  # fmt: skip
        if final or now - running.last_db >= 1.0:
            running.last_db = now
            self.store.submit(lambda c: jobs.progress(c, running.job.id, done, total))


def _mark_document_failed(conn: apsw.Connection, job: jobs.Job, error: str) -> None:
    """An ingest job gave up: its document says why (its old chunks, if any, stay searchable)."""
    if job.kind == "ingest" and job.document_id and doc_repo.get(conn, job.document_id) is not None:
        doc_repo.set_status(conn, job.document_id, "failed", error)
