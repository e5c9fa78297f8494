"""kombu's filesystem transport (the embedded default broker), with reads that wait for writers.

kombu's writer creates a message file, then locks it and writes; its reader takes the file
without the lock. A reader that comes between the two (a worker polling while another process
publishes to it: a control broadcast, a step for the other worker of `make run`) reads an
empty or partial message, and the JSON error stops the worker. This reader takes the file the
same way, then waits for the writer's lock and for a whole message.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import loads

# How long a reader waits for a message's writer to finish.
WRITER_WAIT_S = 5.0


def read_message(path: Path, wait_s: float = WRITER_WAIT_S) -> Any:
    """The decoded message in `path`, once its writer is done with it."""
    deadline = time.monotonic() + wait_s
    while True:
        with path.open("rb") as file:
            # Shared: waits while the writer holds its exclusive lock.
            filesystem.lock(file, filesystem.LOCK_SH)  # type: ignore[no-untyped-call]
            try:
                payload = file.read()
            finally:
                filesystem.unlock(file)  # type: ignore[no-untyped-call]
        try:
            return loads(payload.decode())  # type: ignore[no-untyped-call]
        except ValueError:
            # Created, but the writer has not taken its lock yet.
            if time.monotonic() > deadline:
                raise ChannelError(f"message file {path!r} is not a whole message") from None
            time.sleep(0.005)


class Channel(filesystem.Channel):
    def _get(self, queue: Any, timeout: Any = None) -> Any:
        """The next message of `queue` (as kombu's reader, but see read_message)."""
        wanted = f"{queue}.msg"
        for name in sorted(p.name for p in Path(self.data_folder_in).iterdir()):
            if name.partition(".")[2] != wanted:  # kombu's naming: <time>_<uuid>.<queue>.msg
                continue
            # Moved within the broker's folder, a rename (kombu moves it to the temporary
            # folder, which may be on another file system: a copy, of what is written so far).
            folder = self.processed_folder
            try:
                shutil.move(Path(self.data_folder_in) / name, folder)
            except OSError:
                continue  # another consumer took it
            path = Path(folder) / name
            try:
                return read_message(path)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(path)!r} from queue.") from exc
            finally:
                if not self.store_processed:
                    path.unlink(missing_ok=True)
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
