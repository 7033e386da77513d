"""The build pool: ``[build] workers`` builds at once, taken from the shared queue, recorded in Redis.

A slot is a ``DeferredSemaphore`` token. One taker loop holds the queue's blocking read: it waits for a
free slot, then for an entry (``BuildQueue.take``: a lapsed lease of a dead daemon first, else the next
new entry), and starts the build in that slot. A build is a chain of Deferreds:

    entry → ``BuildRecords.started`` (the job; ``None``: nothing to build, the entry is dropped)
          → ``BuildPipeline.build`` (first line ``asud <version> on node <node>``; stages to the record
            as they come, lines to the log sink)
          → ``BuildRecords.done`` / ``failed`` → ``build.json`` into the files store → ``BuildQueue.ack``

While it runs, a ``LoopingCall`` renews the entry's lease every ``[build] lease_renew_interval``; when the
renewal says another daemon claimed the entry (this one was presumed dead), the build is cancelled and
left to the new owner. An entry delivered more than ``[build] max_attempts`` times (it crashed a daemon
each time) is failed instead of built again.

``stopService()`` stops taking, cancels every running build (its ``make`` gets TERM, then KILL; its
workspace is removed), hands each back to the queue (``BuildRecords.requeue``: queued again at its old
place with a fresh entry, the old one acknowledged) and fires when all that is done: a build is never lost
and never left "started" by a daemon that stopped cleanly.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, DeferredSemaphore, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud import __version__
from asud.build.logsink import BuildLog, LogSink, TeeSink
from asud.build.pipeline import BuildOutcome, BuildPipeline, StoreCheck
from asud.build.queue import BuildQueue, QueueEntry
from asud.build.stages import BuildStage, BuildStatus
from asud.build.workspace import remove_stale_workspaces
from asud.config import Config
from asud.errors import AsudError, BuildError, Unavailable
from asud.store.build_record import BuildRecord
from asud.store.files import Store
from asud.store.logstream import RedisLogSink
from asud.store.records import BuildRecords
from asud.store.reindex import write_build_json
from asud.upstream.fetch import Fetcher

__all__ = ["BuildPool", "Builder", "log_header"]

log = Logger()

#: Seconds one blocking read of the queue waits for a new entry (a stopping pool waits at most this).
TAKE_BLOCK = 2.0
#: Seconds the taker waits after the queue failed (Redis away) before it asks again.
RETRY_AFTER = 1.0
#: Longest wait between two tries to record a finished build while Redis is away.
MAX_RECORD_RETRY = 10.0

_T = TypeVar("_T")


def log_header(node: str) -> str:
    """The first line of every build's log: which asud, on which node of a cluster, built it."""
    return f"asud {__version__} on node {node}"


class FinishedBuilds(Protocol):
    """What the pool needs of the statistics (``asud.store.stats.StatsRecorder``)."""

    def record_finished(self, record: BuildRecord) -> Deferred[bool]: ...


class Builder(Protocol):
    """What the pool needs of a pipeline (:class:`BuildPipeline`)."""

    def build(self, job: dict[str, Any], *, sink: LogSink | None = None,
              may_store: StoreCheck | None = None) -> Deferred[BuildOutcome]: ...

    def check(self) -> Deferred[None]: ...

    def close(self) -> Deferred[None]: ...


class _StageWriter:
    """A log sink that writes each stage to the build record, in order (lines go elsewhere)."""

    def __init__(self, records: BuildRecords, node: str) -> None:
        self.records = records
        self.node = node
        self.written: Deferred[None] = succeed(None)

    def line(self, image_key: str, step: str, text: str) -> None:
        pass

    def status(self, image_key: str, stage: BuildStage) -> None:
        def write(_: object) -> Deferred[Any]:
            return self.records.stage(image_key, stage, node=self.node)

        def failed(failure: Any) -> None:
            log.warn("build {key}: stage {stage} not recorded: {error}", key=image_key, stage=stage.value,
                     error=failure.getErrorMessage())

        self.written = self.written.addCallback(write).addErrback(failed).addCallback(lambda _: None)


class _Running:
    """One build in a slot: its entry, the pipeline's Deferred, and why it may be stopped."""

    def __init__(self, entry: QueueEntry) -> None:
        self.entry = entry
        self.build: Deferred[BuildOutcome] | None = None
        self.finished: Deferred[None] | None = None
        self.lost = False

    def cancel(self) -> None:
        if self.build is not None:
            self.build.cancel()


class BuildPool(Service):
    """See the module docstring. ``node`` names this daemon in the queue and on the records."""

    name = "build-pool"

    def __init__(
        self,
        config: Config,
        queue: BuildQueue,
        records: BuildRecords,
        files: Store,
        fetcher: Fetcher,
        *,
        reactor: Any = None,
        node: str,
        pipeline: Builder | None = None,
        sink: LogSink | None = None,
        block: float = TAKE_BLOCK,
        stats: FinishedBuilds | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.queue = queue
        self.records = records
        self.files = files
        self.reactor = reactor
        self.node = node
        self.pipeline: Builder = pipeline or BuildPipeline.from_config(config, files, fetcher,
                                                                       reactor=reactor)
        #: Every build's lines, stages, start and end besides ``build.log``: the live log in Redis unless
        #: the caller gives another sink.
        self.sink: LogSink = sink if sink is not None else RedisLogSink(records.redis, clock=reactor)
        self.block = block
        #: Counts every finished build (``StatsRecorder``: durations, ``/api/manifest/<hash>``).
        self.stats = stats
        self.slots = DeferredSemaphore(max(1, config.build.workers))
        #: image key → the build running in a slot
        self.builds: dict[str, _Running] = {}
        #: Called whenever a build starts or ends here (``STATUS=`` lines for systemd, for instance).
        self.changed: list[Callable[[], object]] = []
        self._loop: Deferred[None] | None = None
        self._stopping = False

    # -- service ----------------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Check the sandbox once (``SandboxError``: this daemon must not build), then start taking work.
        With ``[build] workers = 0`` the daemon builds nothing and takes nothing."""
        Service.startService(self)
        if self.config.build.workers == 0:
            log.info("build pool: workers = 0, this daemon takes no builds")
            return succeed(None)
        return self.pipeline.check().addCallback(lambda _: self._remove_stale_workspaces()).addCallback(
            lambda _: self._begin())

    def _remove_stale_workspaces(self) -> Deferred[None]:
        """Workspaces of a daemon that was killed mid-build (nobody holds their locks) go before any build
        here starts; ones another live daemon on this data directory uses stay (``asud.build.workspace``)."""

        def removed(count: int) -> None:
            if count:
                log.info("build pool: removed {count} workspace(s) left by a daemon that did not stop "
                         "cleanly", count=count)

        def failed(failure: Failure) -> None:
            log.failure("build pool: could not remove stale workspaces", failure)

        root = self.config.workspace_dir
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), remove_stale_workspaces,
                                 root).addCallbacks(removed, failed)

    def startService(self) -> None:
        self.start().addErrback(lambda failure: log.failure("the build pool did not start", failure))

    def _begin(self) -> None:
        if not self.running:  # stopped while the sandbox was being checked
            return
        self._stopping = False
        self._loop = Deferred.fromCoroutine(self._take_loop())
        log.info("build pool: {workers} slot(s) on node {node}", workers=self.config.build.workers,
                 node=self.node)

    def stopService(self) -> Deferred[None]:
        """Stop taking, cancel the running builds and hand them back; fires when every slot is empty."""
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(CancelledError):
                await loop
        running = list(self.builds.values())
        for build in running:
            build.cancel()
        await DeferredList([build.finished for build in running if build.finished is not None])
        flushed = getattr(self.sink, "flushed", None)
        if flushed is not None:
            # The last lines of a handed-back build ("build handed back …") reach its log before Redis closes.
            await DeferredList([flushed(build.entry.image_key) for build in running])
        await self.pipeline.close()

    def idle(self) -> Deferred[None]:
        """Fires when no build is running (for tests and the command line)."""
        finished = [build.finished for build in self.builds.values() if build.finished is not None]
        return DeferredList(finished).addCallback(lambda _: None)

    # -- taking work ----------------------------------------------------------------------------------

    async def _take_loop(self) -> None:
        while not self._stopping:
            await self.slots.acquire()
            try:
                entry = await self.queue.take(self.node, block=self.block)
            except CancelledError:
                self.slots.release()
                raise
            except Exception as error:
                self.slots.release()
                log.warn("build pool: cannot take from the queue ({error}); retrying", error=error)
                await deferLater(self.reactor, RETRY_AFTER, lambda: None)
                continue
            if entry is None:
                self.slots.release()
                continue
            self._start_build(entry)

    def _tell_changed(self) -> None:
        for observer in list(self.changed):
            try:
                observer()
            except Exception:
                log.failure("build pool: a change observer failed")

    def _start_build(self, entry: QueueEntry) -> None:
        running = _Running(entry)
        self.builds[entry.image_key] = running
        self._tell_changed()

        def done(result: object) -> None:
            self.builds.pop(entry.image_key, None)
            self.slots.release()
            self._tell_changed()

        running.finished = Deferred.fromCoroutine(self._run(running))
        running.finished.addErrback(
            lambda failure: log.failure("build {key}: the pool failed", failure, key=entry.image_key)
        ).addBoth(done)

    # -- one build --------------------------------------------------------------------------------------

    async def _run(self, running: _Running) -> None:
        entry, node = running.entry, self.node
        key = entry.image_key
        if entry.deliveries > self.config.build.max_attempts:
            record = await self.records.give_up(key, entry.deliveries - 1)
            await self._finish(entry, record, ack=True)
            return
        job = await self.records.started(key, node, entry.id)
        if job is None:  # finished meanwhile, or this entry no longer stands for the build
            await self.queue.ack(entry)
            return
        if self._stopping:
            await self._hand_back(entry)
            return
        if isinstance(self.sink, BuildLog):
            self.sink.begin(key, node)
        job = {**job, "log_header": log_header(node)}
        stages = _StageWriter(self.records, node)
        sink = TeeSink(stages, self.sink)
        renewal = LoopingCall(lambda: Deferred.fromCoroutine(self._renew(running)))
        renewal.clock = self.reactor
        renewal.start(self.config.build.lease_renew_interval, now=False)
        record: BuildRecord | None
        try:
            running.build = self.pipeline.build(
                job, sink=sink, may_store=lambda: self.records.holds(key, node)
            )
            outcome = await running.build
        except CancelledError:
            if running.lost:
                log.warn("build {key}: another daemon took it over; stopped here", key=key)
                return
            await stages.written
            self.sink.line(key, "asud", "the daemon stopped: build handed back to the queue")
            await self._hand_back(entry)
            return
        except Unavailable as error:
            # Redis was away when the build asked it something (may it store its files?): not the build's
            # fault, so no failure is recorded. The record stays started and the entry pending; after the
            # lease a daemon (this one too) claims the entry and builds it again. Nothing is lost.
            log.warn("build {key}: Redis unavailable ({error}); left to be taken again after the lease",
                     key=key, error=error)
            return
        except AsudError as error:
            await stages.written
            record = await self._recorded(key, partial(self.records.failed, key, error, node=node))
        except Exception as error:
            await stages.written
            internal = BuildError(f"Error: internal server error ({type(error).__name__})",
                                  stderr=traceback.format_exc())
            record = await self._recorded(key, partial(self.records.failed, key, internal, node=node))
        else:
            await stages.written
            record = await self._recorded(key, partial(
                self.records.done, key, outcome.result, outcome.bin_dir, outcome.stdout, outcome.stderr,
                node=node))
        finally:
            if renewal.running:
                renewal.stop()
        await self._finish(entry, record, ack=record is not None)

    async def _finish(self, entry: QueueEntry, record: BuildRecord | None, *, ack: bool) -> None:
        """The end to the live log, ``build.json`` beside the files (when the record was ours to finish),
        then drop the entry.

        A record that was not ours any more (``None``: another daemon took the build over after our lease
        lapsed) keeps its entry: the new owner holds it and acknowledges it."""
        if record is not None and isinstance(self.sink, BuildLog):
            self.sink.end(entry.image_key, None if record.status is BuildStatus.DONE else record.detail)
        if record is not None and self.stats is not None:
            self.stats.record_finished(record)  # never fails; not waited for
        if record is not None and record.bin_dir:
            try:
                await deferToThreadPool(self.reactor, self.reactor.getThreadPool(), write_build_json,
                                        self.files, record.bin_dir, record)
            except Exception:
                log.failure("build {key}: build.json not written", key=entry.image_key)
        if ack:
            await self._recorded(entry.image_key, partial(self.queue.ack, entry))

    async def _recorded(self, key: str, write: Callable[[], Deferred[_T]]) -> _T:
        """``write`` (a finished build's record, its acknowledgement), retried while Redis is away: a build
        that finished during an outage is recorded once Redis is back, not built again. A stopping daemon
        gives up (the entry stays pending; after the lease the build is taken again)."""
        delay, warned = RETRY_AFTER, False
        while True:
            try:
                return await write()
            except Unavailable as error:
                if self._stopping:
                    raise
                if not warned:
                    log.warn("build {key}: finished while Redis is unavailable ({error}); recording it when "
                             "Redis is back", key=key, error=error)
                    warned = True
                await deferLater(self.reactor, delay, lambda: None)
                delay = min(delay * 2, MAX_RECORD_RETRY)

    async def _hand_back(self, entry: QueueEntry) -> None:
        """Queue the build again (at its old place); the old entry goes once the new one exists."""
        new_entry = await self.records.requeue(entry.image_key, node=self.node)
        if new_entry is not None:
            await self.queue.ack(entry)
            log.info("build {key} handed back to the queue", key=entry.image_key)

    async def _renew(self, running: _Running) -> None:
        try:
            renewed = await self.queue.renew(running.entry)
        except Exception as error:  # Redis briefly away: keep building, try at the next interval
            log.warn("build {key}: lease renewal failed ({error}); retrying", key=running.entry.image_key,
                     error=error)
            return
        if not renewed and not running.lost:
            running.lost = True
            running.cancel()
