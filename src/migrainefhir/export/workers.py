"""Worker processes: each runs tasks one at a time; the answers come back in task order.

Why not multiprocessing.Pool: when a worker dies without answering (the kernel's out-of-memory
killer, a signal, a crash in native code) Pool waits for its answer forever, so a nightly export
would hang instead of failing; and Pool's helper threads make every later fork a fork of a
multi-threaded process. Here the parent forks all its workers up front from its only thread and
watches, for every busy worker, both its pipe and its process sentinel: a lost worker is an
error (WorkerLost) as soon as it is gone, and every worker is stopped before any error reaches
the caller, or when the caller stops reading early. A worker never outlives the parent: on
Linux the kernel kills it when the parent dies (PR_SET_PDEATHSIG), and everywhere it stops at
the end of its pipe, which it sees because it holds no copy of the parent's end (_die_with).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from migrainefhir.errors import WorkerLost

Task = TypeVar("Task")
Answer = TypeVar("Answer")

# Tasks sent ahead to each worker, so it never waits for the parent between two tasks.
IN_FLIGHT = 2

_DONE, _FAILED = "done", "failed"


def run_in_order(
    tasks: Sequence[Task],
    jobs: int,
    start: Callable[[], Callable[[Task], Answer]],
    describe: Callable[[Task], str],
) -> Iterator[Answer]:
    """Each task's answer, in task order, computed by `jobs` worker processes.

    `start` runs once in each worker and returns the function that answers one task (where
    fork is not available it must be picklable: a module-level function or a partial of one).
    An exception raised by a task is raised here; a worker that dies raises WorkerLost, which
    names the task (`describe`). Either way, and when the caller closes this iterator early,
    every worker has been stopped by the time control returns to the caller.
    """
    workers: list[_Worker[Task]] = []
    finished = False
    try:
        context = _context()
        for _ in range(min(jobs, len(tasks))):
            with _signals_held():  # a SIGTERM now: the new worker is in `workers`, to be stopped
                workers.append(_start_worker(context, start, workers))
        yield from _answers_in_order(tasks, workers, describe)
        for worker in workers:
            _no_more_tasks(worker)
        finished = True
    finally:
        _stop(workers, finished)


@dataclass
class _Worker(Generic[Task]):
    process: BaseProcess
    conn: Connection
    sent: deque[int] = field(default_factory=deque)  # tasks sent and not yet answered


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered at the end) while a worker is forked: the child
    starts with the parent's Python handlers, which must not run in it; it sets its own and
    then takes the signals (_serve)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _start_worker(
    context: Any, start: Callable[[], Any], started: list[_Worker[Any]]
) -> _Worker[Any]:
    mine, theirs = context.Pipe()
    # A fork copies every pipe end the parent holds: the other workers' and the parent's end
    # of this worker's own pipe. The worker closes them, so that when the parent is gone its
    # pipe reads as ended (a copy of the parent's end held by the worker itself would keep
    # it open forever).
    inherited = [worker.conn for worker in started] + [mine]
    args = (theirs, start, inherited, os.getpid())
    process = context.Process(target=_serve, args=args, daemon=True)
    process.start()
    theirs.close()  # the parent keeps only its own end
    return _Worker(process, mine)


def _answers_in_order(
    tasks: Sequence[Task], workers: list[_Worker[Task]], describe: Callable[[Task], str]
) -> Iterator[Any]:
    unsent = iter(range(len(tasks)))
    answers: dict[int, Any] = {}
    for worker in workers:
        _send_more(worker, tasks, unsent, describe)
    for wanted in range(len(tasks)):
        while wanted not in answers:
            for worker, index, answer in _next_answers(workers, tasks, describe):
                answers[index] = answer
                _send_more(worker, tasks, unsent, describe)
        yield answers.pop(wanted)


def _send_more(
    worker: _Worker[Task],
    tasks: Sequence[Task],
    unsent: Iterator[int],
    describe: Callable[[Task], str],
) -> None:
    while len(worker.sent) < IN_FLIGHT:
        index = next(unsent, None)
        if index is None:
            return
        worker.sent.append(index)
        try:
            worker.conn.send(tasks[index])
        except OSError:  # the worker is gone
            raise _lost(worker, tasks, describe) from None


def _no_more_tasks(worker: _Worker[Any]) -> None:
    """Tell the worker to return. One that died after its last answer lost nothing."""
    with contextlib.suppress(OSError):
        worker.conn.send(None)


def _next_answers(
    workers: list[_Worker[Task]], tasks: Sequence[Task], describe: Callable[[Task], str]
) -> list[tuple[_Worker[Task], int, Any]]:
    """The answers ready now (waiting for at least one); raises what a task raised."""
    busy = [worker for worker in workers if worker.sent]
    ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
    answers = []
    for worker in busy:
        if worker.conn not in ready and worker.process.sentinel not in ready:
            continue
        try:
            kind, value = worker.conn.recv()  # an answer sent just before dying still counts
        except (EOFError, OSError):  # OSError: it died with a task unread in its pipe
            raise _lost(worker, tasks, describe) from None
        index = worker.sent.popleft()
        if kind == _FAILED:
            raise value
        answers.append((worker, index, value))
    return answers


def _lost(
    worker: _Worker[Task], tasks: Sequence[Task], describe: Callable[[Task], str]
) -> WorkerLost:
    """The error for a dead worker, naming the oldest task it had not answered: the one it
    was working on (a task sent to it after its death would be the wrong one to name)."""
    task = describe(tasks[worker.sent[0]])
    worker.process.join(timeout=5)
    code = worker.process.exitcode
    if code is not None and code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
        if -code == signal.SIGKILL:
            how += " (the system may have run out of memory)"
    else:
        how = f"stopped with exit code {code}"
    return WorkerLost(f"a worker process {how} while working on {task}")


def _stop(workers: list[_Worker[Any]], finished: bool) -> None:
    """Every worker ended and reaped: after an error or an early stop, terminated at once."""
    if not finished:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
    for worker in workers:
        worker.process.join()
        worker.conn.close()


# --- in the worker process ----------------------------------------------------------------


def _serve(
    conn: Connection,
    start: Callable[[], Callable[[Any], Any]],
    inherited: list[Connection],
    parent: int,
) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent's SIGTERM handler (cli.py) is not the worker's: terminate() must end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # held while it was forked
    _die_with(parent)
    for other in inherited:
        other.close()  # so a worker sees the end of its own pipe when the parent is gone
    try:
        run = start()
    except Exception as exc:  # every task is then answered with the failure
        run = _failing(exc)
    try:
        while (task := conn.recv()) is not None:
            conn.send(_answer(run, task))
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone: nobody is waiting for an answer


def _die_with(parent: int) -> None:
    """A worker must not outlive its parent (killed with SIGKILL, or by a signal it does not
    handle): it would go on writing health data into the staging folder and hold the parent's
    standard output and error open, so a pipe reading them (`| tee log`, a supervisor) would
    never end. On Linux the kernel kills the worker when the parent dies (PR_SET_PDEATHSIG);
    elsewhere the worker stops at its next read of the pipe (end of file). A parent that died
    before this point is noticed here (the worker was handed to another process)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the end of the pipe still stops the worker
    if os.getppid() != parent:
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _answer(run: Callable[[Any], Any], task: Any) -> tuple[str, Any]:
    try:
        return _DONE, run(task)
    except Exception as exc:
        return _FAILED, _picklable(exc)


def _picklable(exc: Exception) -> Exception:
    """The exception itself when it survives the pipe, else its text in a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _failing(exc: Exception) -> Callable[[Any], Any]:
    def run(_task: Any) -> Any:
        raise exc

    return run
