"""ChildProcess: lines, output cap, timeout → TERM → KILL, cancellation — on a fake reactor (no time
passes), and once for real."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import CancelledError, Deferred

from asud.build.process import MAX_LINE_BYTES, ChildProcess, ProcessResult, ProcessSpec, run_process
from tests.build.fake_reactor import FakeProcess, FakeProcessReactor


def start(reactor: FakeProcessReactor, *, timeout: float = 60, limit: int = 1 << 20, grace: float = 5,
          lines: list[tuple[str, str]] | None = None,
          spec: ProcessSpec | None = None) -> tuple[ChildProcess, Deferred[ProcessResult], FakeProcess]:
    child = ChildProcess(
        spec or ProcessSpec(["make", "image"], {"PATH": "/usr/bin"}, "/ws"),
        reactor=reactor, timeout=timeout, output_limit=limit, kill_grace=grace, step="make image",
        on_line=(lambda step, text: lines.append((step, text))) if lines is not None else None,
    )
    deferred = child.start()
    return child, deferred, reactor.spawned[-1]


def result_of(deferred: Deferred[ProcessResult]) -> ProcessResult:
    results: list[ProcessResult] = []
    deferred.addCallback(lambda result: results.append(result) or result)
    assert results, "the Deferred has not fired"
    return results[0]


def test_spawns_the_exact_spec_and_closes_stdin() -> None:
    reactor = FakeProcessReactor()
    spec = ProcessSpec(["bwrap", "--", "make"], {"PATH": "/x"}, "/ws", uid=65534, gid=65534)
    _, deferred, child = start(reactor, spec=spec)
    assert (child.argv, child.env, child.path, child.uid, child.gid) == (
        ["bwrap", "--", "make"], {"PATH": "/x"}, "/ws", 65534, 65534)
    assert child.stdin_closed
    child.exit(0)
    assert result_of(deferred).ok


def test_whole_lines_with_the_step_and_progress_collapsed() -> None:
    reactor = FakeProcessReactor()
    lines: list[tuple[str, str]] = []
    _, deferred, child = start(reactor, lines=lines)
    child.stdout(b"first li")
    assert lines == []
    child.stdout(b"ne\nsecond\r\n 10%\r 50%")
    child.stderr(b"warn\xff\n")
    child.stdout(b"\r100%\ndone")
    child.exit(0)
    assert lines == [
        ("make image", "first line"),
        ("make image", "second"),
        ("make image", "warn\ufffd"),
        ("make image", "100%"),
        ("make image", "done"),
    ]
    result = result_of(deferred)
    # The text is kept as printed, stdout and stderr apart.
    assert result.stdout == "first line\nsecond\r\n 10%\r 50%\r100%\ndone"
    assert result.stderr == "warn\ufffd\n"
    assert result.returncode == 0 and result.ok and not result.timed_out


def test_endless_progress_without_newline_keeps_only_its_last_state() -> None:
    reactor = FakeProcessReactor()
    lines: list[tuple[str, str]] = []
    _, deferred, child = start(reactor, lines=lines)
    for percent in range(100):
        child.stdout(f"\r{percent}%".encode())
    child.stdout(b"x" * (MAX_LINE_BYTES + 10))
    child.stdout(b"\n")
    child.exit(0)
    assert lines[0] == ("make image", "99%" + "x" * (MAX_LINE_BYTES - 3))
    assert lines[1] == ("make image", "x" * 13)
    result_of(deferred)


def test_exit_codes_and_signals() -> None:
    reactor = FakeProcessReactor()
    _, deferred, child = start(reactor)
    child.exit(2)
    assert result_of(deferred).returncode == 2 and not result_of(deferred).ok
    _, deferred, child = start(reactor)
    child.exit(signal="KILL")
    assert result_of(deferred).returncode == -9


def test_timeout_sends_term_then_kill_and_cancels_every_timer() -> None:
    reactor = FakeProcessReactor()
    _, deferred, child = start(reactor, timeout=600, grace=5)
    reactor.advance(599)
    assert child.signals == []
    reactor.advance(1)
    assert child.signals == ["TERM"]
    reactor.advance(4.9)
    assert child.signals == ["TERM"]
    reactor.advance(0.1)
    assert child.signals == ["TERM", "KILL"]
    assert child.lost  # pipes a lingering grandchild holds are let go
    assert not deferred.called
    child.exit(signal="KILL")
    result = result_of(deferred)
    assert result.timed_out and not result.ok and result.duration == 605
    assert reactor.getDelayedCalls() == []


def test_a_child_that_obeys_term_is_not_killed() -> None:
    reactor = FakeProcessReactor()
    _, deferred, child = start(reactor, timeout=10, grace=5)
    reactor.advance(10)
    child.exit(signal="TERM")
    assert reactor.getDelayedCalls() == []
    reactor.advance(100)
    assert child.signals == ["TERM"]
    assert result_of(deferred).timed_out


def test_a_normal_end_cancels_the_timeout() -> None:
    reactor = FakeProcessReactor()
    _, deferred, child = start(reactor, timeout=10)
    assert len(reactor.getDelayedCalls()) == 1
    child.exit(0)
    assert reactor.getDelayedCalls() == []
    assert not result_of(deferred).timed_out


def test_output_cap_drops_the_rest_and_stops_the_child() -> None:
    reactor = FakeProcessReactor()
    lines: list[tuple[str, str]] = []
    _, deferred, child = start(reactor, limit=10, lines=lines)
    child.stdout(b"12345\n")
    child.stderr(b"67890\nabc\n")
    assert child.signals == ["TERM"]
    child.stdout(b"more\n")  # after the cap: dropped
    reactor.advance(5)
    assert child.signals == ["TERM", "KILL"]
    child.exit(signal="KILL")
    result = result_of(deferred)
    assert result.output_truncated and not result.ok
    assert result.stdout == "12345\n" and result.stderr == "6789"
    assert len(result.stdout) + len(result.stderr) <= 10
    assert lines == [("make image", "12345"), ("make image", "6789")]
    assert reactor.getDelayedCalls() == []


def test_cancel_stops_the_child_and_fires_only_when_it_is_gone() -> None:
    reactor = FakeProcessReactor()
    process, deferred, child = start(reactor, grace=5)
    failures: list[object] = []
    deferred.addErrback(failures.append)
    ended = process.ended()
    deferred.cancel()
    assert child.signals == ["TERM"]
    assert failures == [] and not ended.called  # still running: nobody may clean up yet
    reactor.advance(5)
    assert child.signals == ["TERM", "KILL"]
    child.exit(signal="KILL")
    assert len(failures) == 1 and failures[0].check(CancelledError)  # type: ignore[attr-defined]
    assert ended.called
    assert process.ended().called  # after the end: at once
    assert reactor.getDelayedCalls() == []


def test_cancel_after_the_end_changes_nothing() -> None:
    reactor = FakeProcessReactor()
    _, deferred, child = start(reactor)
    child.exit(0)
    deferred.cancel()
    assert result_of(deferred).ok
    assert child.signals == []


def test_spawn_failure_is_an_errback() -> None:
    reactor = FakeProcessReactor()
    reactor.spawn_error = FileNotFoundError(2, "No such file", "make")
    deferred = ChildProcess(ProcessSpec(["make"]), reactor=reactor, timeout=1, output_limit=1,
                            kill_grace=1).start()
    failures: list[object] = []
    deferred.addErrback(failures.append)
    assert failures and failures[0].check(FileNotFoundError)  # type: ignore[attr-defined]
    assert reactor.getDelayedCalls() == []


def test_signals_after_the_end_are_ignored() -> None:
    reactor = FakeProcessReactor()
    process, deferred, child = start(reactor)
    child.exit(0)
    process.stop()
    assert child.signals == []
    result_of(deferred)


@pytest_twisted.inlineCallbacks
def test_a_real_child() -> None:
    lines: list[tuple[str, str]] = []
    result = yield run_process(
        ["sh", "-c", "echo one; printf 'a\\rb\\n' >&2; echo two; exit 3"], reactor=global_reactor,
        timeout=30, output_limit=1 << 20, kill_grace=1, step="probe",
        on_line=lambda step, text: lines.append((step, text)),
    )
    assert result.returncode == 3
    assert result.stdout == "one\ntwo\n" and result.stderr == "a\rb\n"
    assert sorted(lines) == [("probe", "b"), ("probe", "one"), ("probe", "two")]


@pytest_twisted.inlineCallbacks
def test_a_real_timeout_and_cancel() -> None:
    result = yield run_process(["sleep", "30"], reactor=global_reactor, timeout=0.3, output_limit=1024,
                               kill_grace=1)
    assert result.timed_out and result.returncode == -15 and result.duration < 5
    deferred = run_process(["sleep", "30"], reactor=global_reactor, timeout=30, output_limit=1024,
                           kill_grace=1)
    global_reactor.callLater(0.2, deferred.cancel)
    with pytest.raises(CancelledError):
        yield deferred
