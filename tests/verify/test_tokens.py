"""Token files: one shared token or a mapping per server; every refusal names the file, never a token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpfleet.verify.tokens import TokenFileError, load_tokens

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ1bml0cyJ9.c2lnbmF0dXJlLW9mLXVuaXRz"
OTHER = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ0ZXh0In0.c2lnbmF0dXJlLW9mLXRleHQ"


def write(tmp_path: Path, text: str, name: str = "tokens") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_token_serves_every_server(tmp_path: Path) -> None:
    tokens = load_tokens(write(tmp_path, f"{JWT}\n"))
    assert tokens.for_server("units") == tokens.for_server("text") == JWT


def test_a_yaml_mapping_gives_each_server_its_own(tmp_path: Path) -> None:
    tokens = load_tokens(write(tmp_path, f"units: {JWT}\ntext: '{OTHER}'\n", "tokens.yaml"))
    assert (tokens.for_server("units"), tokens.for_server("text"), tokens.for_server("notes")) == (
        JWT,
        OTHER,
        None,
    )


def test_a_json_mapping_too(tmp_path: Path) -> None:
    tokens = load_tokens(write(tmp_path, json.dumps({"units": JWT}), "tokens.json"))
    assert tokens.per_server == {"units": JWT}


def test_tokens_stay_out_of_repr(tmp_path: Path) -> None:
    tokens = load_tokens(write(tmp_path, f"units: {JWT}\n"))
    assert JWT not in repr(tokens) and JWT not in str(tokens)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the token file is empty"),
        ("   \n", "the token file is empty"),
        (f"{JWT} {OTHER}\n", "expected one bearer token, or a mapping"),
        (f"- {JWT}\n", "expected one bearer token, or a mapping"),
        (f"units: [{JWT}]\n", "the token of server 'units' is not a bearer token string"),
        (f"units: {JWT} trailing words\n", "the token of server 'units' is not a bearer token string"),
        (f"units: {JWT}\n  bad: indent: here\n", "neither one token nor a YAML/JSON mapping (line 2)"),
        ("{}", "the mapping names no server"),
    ],
)
def test_unusable_files_are_refused_without_quoting_them(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TokenFileError) as refused:
        load_tokens(path)
    assert str(path) in str(refused.value) or path.name in str(refused.value)
    assert message in str(refused.value)
    assert JWT not in str(refused.value) and OTHER not in str(refused.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"nope\.txt: cannot read the token file \(No such file"):
        load_tokens(tmp_path / "nope.txt")


def test_a_folder_is_not_a_token_file(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        load_tokens(tmp_path)


def test_unreadable_file_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads any file whatever its mode, so the refusal is the operating system's, simulated.
    path = write(tmp_path, JWT)

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(TokenFileError, match=r"tokens: cannot read the token file \(Permission denied\)"):
        load_tokens(path)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.bin"
    path.write_bytes(b"\xff\xfe\x00token")
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        load_tokens(path)
