"""The session keys file, re-read when it changes, so keys rotate without restarting the router.

Kubernetes updates a mounted Secret in place by pointing a symlink at a new directory; other writers
rewrite the file. Reading the file (a few hundred bytes, through any symlinks) every few seconds and
comparing it with the last read sees both, even a same-size rewrite within one tick of a coarse file
clock, which its modification time and inode alone would not show.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.router.config import parse_session_keys
from mcpfleet.router.sessions import Sealer

log = logging.getLogger("mcpfleet.router.keys")

CHECK_SECONDS: Final = 2.0
MAX_FILE_BYTES: Final = 64 * 1024


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as source:
            return source.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None


class KeyFile:
    """Keeps a Sealer's keys those of the file: the new list as a whole once the file changed and reads
    well; a file that is gone or does not read leaves the last good keys in use (and says so)."""

    def __init__(self, path: Path, sealer: Sealer) -> None:
        self.path = path
        self.sealer = sealer
        self.seen = _read(path)

    def check(self) -> bool:
        """Re-read the file if it changed since the last look; True when the keys were replaced."""
        data = _read(self.path)
        if data == self.seen:
            return False
        self.seen = data
        if data is None:
            log.warning("session keys file %s is gone; keeping the last keys read", self.path)
            return False
        name = display_path(self.path)
        try:
            if len(data) > MAX_FILE_BYTES:
                raise InvalidInput([InputProblem(name, None, None, "too large for a key file")])
            keys = parse_session_keys(data.decode("ascii"), name)
        except UnicodeDecodeError:
            log.warning("session keys not reloaded, keeping the last keys read: %s: not ASCII", name)
            return False
        except InvalidInput as error:  # names the file and line, never a key
            log.warning("session keys not reloaded, keeping the last keys read: %s", error)
            return False
        self.sealer.replace(keys)
        log.warning("session keys reloaded from %s: %d in all, the first seals", name, len(keys))
        return True

    async def watch(self, seconds: float = CHECK_SECONDS) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                self.check()
            except Exception:  # keep watching whatever one look raised
                log.exception("checking the session keys file failed")
