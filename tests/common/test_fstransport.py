"""The embedded broker's reader waits for a message's writer instead of reading half of it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

from common.fstransport import read_message

MESSAGE = {"body": "x" * 100_000, "headers": {"task": "pipeline.step.image.fit@v1"}}


def test_a_message_created_but_not_yet_written_is_read_once_written(tmp_path: Path) -> None:
    path = tmp_path / "1_a.pipeline.msg"
    path.touch()  # kombu's writer: the file exists, the lock and the bytes come after

    def write() -> None:
        time.sleep(0.1)
        with path.open("wb", buffering=0) as file:
            filesystem.lock(file, filesystem.LOCK_EX)
            file.write(dumps(MESSAGE).encode())
            filesystem.unlock(file)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read_message(path) == MESSAGE
    finally:
        writer.join()


def test_a_message_being_written_under_its_lock_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "1_b.pipeline.msg"
    encoded = dumps(MESSAGE).encode()
    locked = threading.Event()

    def write() -> None:
        with path.open("wb", buffering=0) as file:
            filesystem.lock(file, filesystem.LOCK_EX)
            locked.set()
            file.write(encoded[:1000])
            time.sleep(0.2)
            file.write(encoded[1000:])
            filesystem.unlock(file)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert locked.wait(5)
        assert read_message(path) == MESSAGE
    finally:
        writer.join()


def test_a_message_that_never_completes_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "1_c.pipeline.msg"
    path.write_bytes(dumps(MESSAGE).encode()[:500])

    with pytest.raises(ChannelError, match="not a whole message"):
        read_message(path, wait_s=0.2)
