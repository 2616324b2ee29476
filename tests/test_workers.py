"""Worker processes: answers in task order, failures raised, and no worker left behind."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from migrainefhir.errors import WorkerLost
from migrainefhir.export.workers import IN_FLIGHT, run_in_order
from tests.process_helpers import children_of, wait_until_gone

TASKS = list(range(12))  # more than two workers hold at once


def answers(tasks: list[int], run: Callable[[int], Any], jobs: int = 2) -> Iterator[Any]:
    return run_in_order(tasks, jobs, lambda: run, lambda task: f"task {task}")


def slower_first(task: int) -> tuple[int, int]:
    time.sleep(0.01 * (len(TASKS) - task))  # later tasks finish first
    return task, os.getpid()


def failing_on_5(task: int) -> int:
    if task == 5:
        raise ValueError("task 5 is bad")
    return task


def test_there_are_more_tasks_than_the_workers_hold_at_once() -> None:
    assert len(TASKS) > 2 * IN_FLIGHT


def test_answers_come_in_task_order_whatever_order_they_finish_in() -> None:
    assert [task for task, _pid in answers(TASKS, slower_first)] == TASKS


def test_tasks_run_in_as_many_worker_processes_as_jobs() -> None:
    pids = {pid for _task, pid in answers(TASKS, slower_first)}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_every_worker_has_returned_when_the_answers_are_all_read() -> None:
    assert list(answers(TASKS, abs)) == TASKS
    assert multiprocessing.active_children() == []


def test_a_task_that_raises_raises_the_same_error_in_the_caller() -> None:
    with pytest.raises(ValueError, match=r"^task 5 is bad$"):
        list(answers(TASKS, failing_on_5))
    assert multiprocessing.active_children() == []


class Unpicklable(Exception):
    def __init__(self, handle: Any) -> None:
        super().__init__("cannot cross a pipe")
        self.handle = handle

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


def raises_unpicklable(_task: int) -> int:
    raise Unpicklable(object())


def test_an_error_that_cannot_cross_the_pipe_arrives_as_its_text() -> None:
    with pytest.raises(RuntimeError, match=r"^Unpicklable: cannot cross a pipe$"):
        list(answers(TASKS, raises_unpicklable))


def test_a_worker_that_cannot_start_fails_its_first_task() -> None:
    def start() -> Callable[[int], int]:
        raise OSError(13, "Permission denied")

    with pytest.raises(PermissionError, match="Permission denied"):
        list(run_in_order(TASKS, 2, start, str))
    assert multiprocessing.active_children() == []


def killed_on_3(task: int) -> int:
    if task == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return task


def read_slowly(value: int) -> int:
    time.sleep(0.3)  # runs in the parent, as the answer is unpickled
    return value


class SlowAnswer:
    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> Any:
        return read_slowly, (self.value,)


def slow_answer_then_killed_on_1(task: int) -> Any:
    if task == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return SlowAnswer(task)


def exits_on_3(task: int) -> int:
    if task == 3:
        os._exit(7)
    return task


def test_a_killed_worker_raises_worker_lost_naming_its_task_and_signal() -> None:
    expected = (
        "a worker process was killed by SIGKILL (the system may have run out of memory) "
        "while working on task 3"
    )
    with pytest.raises(WorkerLost, match=f"^{re.escape(expected)}$"):
        list(answers(TASKS, killed_on_3))
    assert multiprocessing.active_children() == []


def test_a_worker_lost_while_more_tasks_are_sent_is_named_by_the_task_it_was_on() -> None:
    # One worker: its answer to task 0 takes the parent a while to read, and meanwhile it dies
    # on task 1; the parent then finds it gone when it sends task 2, and must name task 1.
    with pytest.raises(WorkerLost, match=r"while working on task 1$"):
        list(answers(TASKS, slow_answer_then_killed_on_1, jobs=1))
    assert multiprocessing.active_children() == []


def test_a_worker_that_exits_raises_worker_lost_naming_its_exit_code() -> None:
    with pytest.raises(WorkerLost, match=r"^a worker process stopped with exit code 7 while "):
        list(answers(TASKS, exits_on_3))
    assert multiprocessing.active_children() == []


def test_a_caller_that_stops_reading_early_stops_every_worker() -> None:
    answered = answers(TASKS, slower_first)
    next(answered)
    answered.close()  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []


def interrupts_itself(task: int) -> int:
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches every process of the group
    return task


def test_workers_leave_ctrl_c_to_the_parent() -> None:
    assert list(answers(TASKS, interrupts_itself)) == TASKS


def test_no_tasks_start_no_workers() -> None:
    def start() -> Callable[[int], int]:
        raise AssertionError("no worker should start")

    assert list(run_in_order([], 2, start, str)) == []


_KILLED_PARENT = """
import sys, time
from migrainefhir.export import workers
if sys.argv[1] == "pipe-only":
    workers._PR_SET_PDEATHSIG = 0  # no such prctl option: only the end of the pipe stops them

def slow(task):
    time.sleep(0.3)
    return task

for answer in workers.run_in_order(list(range(1000)), 2, lambda: slow, str):
    print(answer, flush=True)
"""


@pytest.mark.parametrize("how", ["death-signal", "pipe-only"])
def test_workers_end_when_their_parent_is_killed(how: str) -> None:
    """A parent killed with SIGKILL: its workers are gone within seconds, and its standard
    output (which they inherited) reaches end of file."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PARENT, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert parent.stdout is not None
    parent.stdout.readline()  # the workers are answering
    workers = children_of(parent.pid)
    assert len(workers) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert wait_until_gone(workers, 3) == set()
    ended = threading.Event()
    threading.Thread(target=lambda: (parent.communicate(), ended.set()), daemon=True).start()
    assert ended.wait(3), "a pipe of the killed parent is still held open"
