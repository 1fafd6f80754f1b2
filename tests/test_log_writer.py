"""The batched log handler: every line written, in order, once, also across a fork."""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.observability import log_writer
from portal.observability.log_writer import BatchedStreamHandler

from .support.processes import wait_for


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    found = logging.getLogger(f"test.batched.{id(object())}")
    found.propagate = False
    found.setLevel(logging.INFO)
    yield found
    for handler in found.handlers:
        found.removeHandler(handler)
        handler.close()


def _attach(logger: logging.Logger, stream: io.TextIOBase) -> BatchedStreamHandler:
    handler = BatchedStreamHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return handler


def test_lines_from_many_threads_are_all_written_in_order(logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = _attach(logger, stream)

    def log(thread: int) -> None:
        for n in range(500):
            logger.info("t%d-%d", thread, n)

    threads = [threading.Thread(target=log, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 500
    for t in range(8):
        assert [line for line in lines if line.startswith(f"t{t}-")] == [f"t{t}-{n}" for n in range(500)]


def test_info_lines_wait_for_the_writer_and_a_warning_takes_them_along(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_writer, "INTERVAL", 3600)  # the writer thread stays out of the way
    stream = io.StringIO()
    _attach(logger, stream)
    logger.info("first")
    logger.info("second")
    assert stream.getvalue() == ""  # queued: the logging thread made no write
    logger.warning("third")
    assert stream.getvalue() == "first\nsecond\nthird\n"  # at once, in order


def test_the_writer_thread_writes_queued_lines_by_itself(logger: logging.Logger) -> None:
    stream = io.StringIO()
    _attach(logger, stream)
    logger.info("queued")
    wait_for(lambda: stream.getvalue() == "queued\n", timeout=10, what="the writer thread's batch")


def test_a_stalled_stream_slows_the_logger_down_instead_of_filling_memory(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_writer, "MAX_PENDING", 10)
    monkeypatch.setattr(log_writer, "INTERVAL", 3600)
    stream = io.StringIO()
    _attach(logger, stream)
    for n in range(11):
        logger.info("line %d", n)
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(11)]


def test_a_fork_writes_each_line_once(logger: logging.Logger, tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    with path.open("w") as stream:
        handler = _attach(logger, stream)
        logger.info("before the fork")
        with warnings.catch_warnings():  # Python 3.12+ warns of forking with threads: the case here
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child
            logger.info("in the child")
            handler.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        logger.info("in the parent")
        handler.flush()
    lines = path.read_text().splitlines()
    assert sorted(lines) == ["before the fork", "in the child", "in the parent"]


def test_the_portal_logs_through_it() -> None:
    from portal.observability.logs import configure_logging

    configure_logging()
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_portal", False)]
    assert len(ours) == 1 and isinstance(ours[0], BatchedStreamHandler)
