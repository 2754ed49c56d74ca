"""Sealed session ids: they round-trip, survive key rotation, and nothing forged or altered opens."""

from __future__ import annotations

import base64

import pytest

from mcpfleet.router.local import new_session_keys
from mcpfleet.router.sessions import OPENED_CACHE, PREFIX, Sealer, UnknownSession


def test_round_trip() -> None:
    sealer = Sealer(new_session_keys())
    sealed = sealer.seal("http", "notes", "alice", "10.0.0.7:8080", "server-own-id")
    session = sealer.open(sealed)
    assert (session.kind, session.server, session.subject, session.pod, session.inner) == (
        "http", "notes", "alice", "10.0.0.7:8080", "server-own-id",
    )  # fmt: skip
    assert sealed.startswith(PREFIX)
    assert "server-own-id" not in sealed and "alice" not in sealed
    # Visible ASCII only, as MCP requires of a session id.
    assert all(0x21 <= ord(c) <= 0x7E for c in sealed)


def test_each_seal_differs() -> None:
    sealer = Sealer(new_session_keys())
    assert sealer.seal("http", "n", "a", "p:1", "i") != sealer.seal("http", "n", "a", "p:1", "i")


def test_another_replica_with_the_same_keys_opens_it() -> None:
    keys = new_session_keys()
    sealed = Sealer(keys).seal("http", "notes", "alice", "10.0.0.7:8080", "x")
    assert Sealer(list(keys)).open(sealed).subject == "alice"


def test_rotation_old_key_still_opens() -> None:
    old, new = new_session_keys(2)
    sealed = Sealer([old]).seal("http", "notes", "alice", "10.0.0.7:8080", "x")
    assert Sealer([new, old]).open(sealed).inner == "x"
    with pytest.raises(UnknownSession):
        Sealer([new]).open(sealed)


def flip(sealed: str, index: int) -> str:
    body = sealed[len(PREFIX) :]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return PREFIX + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("index", [0, 12, 20, -1])
def test_any_altered_byte_is_refused(index: int) -> None:
    sealer = Sealer(new_session_keys())
    with pytest.raises(UnknownSession):
        sealer.open(flip(sealer.seal("http", "notes", "alice", "10.0.0.7:8080", "x"), index))


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "random-session-id",
        "4f9d2c0e8b7a4c1e9f3d2b1a0c9e8d7f",
        PREFIX,
        PREFIX + "AAAA",
        PREFIX + "A" * 80,
        "mf2." + "A" * 80,
        PREFIX + "A" * 5000,
        PREFIX + "!!!!",
    ],
)
def test_forged_and_random_ids_are_refused(forged: str) -> None:
    with pytest.raises(UnknownSession):
        Sealer(new_session_keys()).open(forged)


def test_padded_or_non_canonical_encoding_refused() -> None:
    sealer = Sealer(new_session_keys())
    sealed = sealer.seal("http", "notes", "alice", "10.0.0.7:8080", "x")
    with pytest.raises(UnknownSession):
        sealer.open(sealed + "=")


def test_an_opened_id_is_refused_once_its_key_is_dropped() -> None:
    """Opened ids are kept opened, but not past a key change: the dropped key's sessions end at once."""
    old, new = new_session_keys(2)
    sealer = Sealer([new, old])
    sealed = Sealer([old]).seal("http", "notes", "alice", "10.0.0.7:8080", "x")
    assert sealer.open(sealed).inner == "x"
    assert sealer.open(sealed).inner == "x"  # kept opened
    sealer.replace([new])
    with pytest.raises(UnknownSession):
        sealer.open(sealed)


def test_kept_opened_ids_stay_bounded_and_forged_ones_are_never_kept() -> None:
    sealer = Sealer(new_session_keys())
    sealed = [
        sealer.seal("http", "notes", "alice", "10.0.0.7:8080", str(i)) for i in range(OPENED_CACHE + 10)
    ]
    for index, token in enumerate(sealed):
        assert sealer.open(token).inner == str(index)
    assert len(sealer._opened) == OPENED_CACHE
    # The oldest made room; they still open (again).
    assert sealer.open(sealed[0]).inner == "0"
    for forged in (flip(sealed[-1], 20), PREFIX + "A" * 60, "random"):
        with pytest.raises(UnknownSession):
            sealer.open(forged)
        assert forged not in sealer._opened
