"""The session keys file is re-read when it changes, as the kubelet updates a mounted Secret; a file that
is gone or does not read keeps the last good keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mcpfleet.router.keyfile import KeyFile
from mcpfleet.router.local import new_session_keys, session_keys_text
from mcpfleet.router.sessions import Sealer, UnknownSession
from tests.router.secret_volume import SecretVolume


def sealed_with(keys: list[bytes]) -> str:
    return Sealer(keys).seal("http", "notes", "alice", "127.0.0.1:1", "inner")


def test_a_swapped_secret_replaces_the_keys_as_a_whole(tmp_path: Path) -> None:
    old, new = new_session_keys(2)
    volume = SecretVolume(tmp_path, "session-keys")
    volume.keys([old])
    sealer = Sealer([old])
    watched = KeyFile(volume.path, sealer)
    assert not watched.check()  # unchanged
    volume.keys([new, old])
    assert watched.check()
    # The new key seals, the old one still opens.
    assert Sealer([new]).open(sealer.seal("http", "notes", "alice", "127.0.0.1:1", "x")).inner == "x"
    assert sealer.open(sealed_with([old])).inner == "inner"
    assert not watched.check()
    volume.keys([new])
    assert watched.check()
    with pytest.raises(UnknownSession):
        sealer.open(sealed_with([old]))
    assert sealer.open(sealed_with([new])).inner == "inner"


def test_a_file_rewritten_in_place_is_seen_even_within_one_clock_tick(tmp_path: Path) -> None:
    """Same size, same inode, written microseconds apart: the content tells."""
    old, new = new_session_keys(2)
    path = tmp_path / "keys"
    path.write_text(session_keys_text([old]), encoding="ascii")
    sealer = Sealer([old])
    watched = KeyFile(path, sealer)
    path.write_text(session_keys_text([new]), encoding="ascii")
    assert watched.check()
    assert sealer.open(sealed_with([new])).inner == "inner"


def test_a_bad_or_missing_file_keeps_the_last_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (old,) = new_session_keys()
    volume = SecretVolume(tmp_path, "session-keys")
    volume.keys([old])
    sealer = Sealer([old])
    watched = KeyFile(volume.path, sealer)
    caplog.set_level(logging.WARNING, logger="mcpfleet.router.keys")
    volume.write("not base64!\n")
    assert not watched.check()
    assert "session-keys:1: not base64" in caplog.text and "keeping the last keys" in caplog.text
    assert sealer.open(sealed_with([old])).inner == "inner"
    (tmp_path / "..data").unlink()
    assert not watched.check()
    assert "is gone" in caplog.text
    assert sealer.open(sealed_with([old])).inner == "inner"
