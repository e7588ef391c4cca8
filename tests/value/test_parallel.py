"""``parallel.stream_from_child`` (D69): work done in a forked process, its items received here."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from valuetrack.value.parallel import stream_from_child


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A call that would wait forever on its child fails the test instead."""
    def stuck(*_: object) -> None:
        raise TimeoutError("stream_from_child did not return")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_items_arrive_in_order_after_what_runs_meanwhile() -> None:
    parent, got, order = os.getpid(), [], []

    def work(send) -> None:  # noqa: ANN001
        for i in range(3000):  # more than a pipe holds (≈ 3 MB) while ``meanwhile`` runs
            send((os.getpid(), i, "x" * 1000))

    complete = stream_from_child(work, on_item=lambda item: got.append(item) or order.append("item"),
                                 meanwhile=lambda: order.append("meanwhile"))
    assert complete
    assert [i for _, i, _ in got] == list(range(3000))
    assert {pid for pid, _, _ in got} != {parent}  # sent from the child
    assert order[0] == "meanwhile" and order.count("meanwhile") == 1


def test_an_item_whose_equality_is_not_a_bool_arrives_as_sent() -> None:
    got = []
    assert stream_from_child(lambda send: send(np.arange(3)), on_item=got.append)
    assert len(got) == 1 and got[0].tolist() == [0, 1, 2]


def test_a_child_that_raises_delivers_what_it_sent_and_logs_no_message(caplog: pytest.LogCaptureFixture,
                                                                         capfd: pytest.CaptureFixture[str]) -> None:
    got, to_stderr = [], logging.StreamHandler(sys.stderr)  # the child's log lines reach capfd
    logging.getLogger("valuetrack").addHandler(to_stderr)
    try:
        _raise_in_child(got)
    finally:
        logging.getLogger("valuetrack").removeHandler(to_stderr)
    assert got == [1, 2]
    assert "ended before its work was done" in caplog.text
    child = capfd.readouterr().err
    assert "a forked process stopped: RuntimeError" in child and "hunter2" not in child + caplog.text


def _raise_in_child(got: list) -> None:

    def work(send) -> None:  # noqa: ANN001
        send(1)
        send(2)
        raise RuntimeError("connection to postgresql://ana:hunter2@db failed")

    assert stream_from_child(work, on_item=got.append) is False


def test_a_child_that_dies_delivers_what_it_sent() -> None:
    got = []

    def work(send) -> None:  # noqa: ANN001
        send("stored")
        os.kill(os.getpid(), signal.SIGKILL)

    assert stream_from_child(work, on_item=got.append) is False
    assert got == ["stored"]


def test_when_meanwhile_fails_the_child_is_not_left_waiting(tmp_path: Path) -> None:
    """The child ends (its next send fails once nobody reads) and is reaped; the error is raised."""
    def work(send) -> None:  # noqa: ANN001
        (tmp_path / "pid").write_text(str(os.getpid()))
        for _ in range(100_000):
            send("y" * 1000)

    def fails() -> None:
        raise ValueError("meanwhile failed")

    with pytest.raises(ValueError, match="meanwhile failed"):
        stream_from_child(work, on_item=lambda item: None, meanwhile=fails)
    with pytest.raises(ChildProcessError):
        os.waitpid(int((tmp_path / "pid").read_text()), os.WNOHANG)  # reaped: no longer this process's child
