"""Bad configuration: the router says which file and field, exits 1, and prints no traceback."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcpfleet.errors import InvalidInput
from mcpfleet.router.config import load_config, parse_config, parse_session_keys
from mcpfleet.router.local import free_port, new_session_keys, session_keys_text
from tests.router.support import (
    AUDIENCE_PREFIX,
    NOTES_ACCESS,
    NOTES_TOOLS,
    Issuer,
    router_config,
    server_entry,
)

FLEET_AUDIENCE = "https://mcp.test.example/mcp"
GOOD = router_config({"notes": server_entry("notes", ["127.0.0.1:9"], NOTES_TOOLS, NOTES_ACCESS)})


def changed(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return document


DELETE = object()

BAD = {
    "issuer missing": ("auth.issuer", DELETE, "auth.issuer"),
    "HMAC algorithm": ("auth.algorithm", "HS256", "auth.algorithm"),
    "none algorithm": ("auth.algorithm", "none", "auth.algorithm"),
    "body limit a string": ("maxBodyBytes", "1048576", "maxBodyBytes"),
    "body limit zero": ("maxBodyBytes", 0, "maxBodyBytes"),
    "session age under a minute": ("sessionMaxAgeSeconds", 59, "sessionMaxAgeSeconds"),
    "session age over 30 days": ("sessionMaxAgeSeconds", 30 * 86400 + 1, "sessionMaxAgeSeconds"),
    "session age a string": ("sessionMaxAgeSeconds", "86400", "sessionMaxAgeSeconds"),
    "unknown field": ("extra", 1, "extra"),
    "port a string": ("servers.notes.upstream", {"host": "notes", "port": "8080", "path": "/mcp"}, "port"),
    "host and addresses": (
        "servers.notes.upstream",
        {"host": "notes", "port": 8080, "addresses": ["127.0.0.1:1"], "path": "/mcp"},
        "servers.notes.upstream",
    ),
    "address not an IP": ("servers.notes.upstream.addresses", ["notes:8080"], "servers.notes.upstream"),
    "undeclared tool in access": (
        "servers.notes.access",
        [{"tools": ["get_env"], "roles": ["support"]}],
        "servers.notes",
    ),
    "public path of another server": ("servers.notes.publicPath", "/servers/units/mcp", "publicPath"),
    "transport unknown": ("servers.notes.transport", "websocket", "servers.notes.transport"),
    "pin not hex": ("servers.notes.toolPins", {"add_note": "z" * 64}, "servers.notes.toolPins.add_note"),
    "pin in capitals": ("servers.notes.toolPins", {"add_note": "A" * 64}, "servers.notes.toolPins.add_note"),
    "pin too short": ("servers.notes.toolPins", {"add_note": "a" * 63}, "servers.notes.toolPins.add_note"),
    "pin of an undeclared tool": ("servers.notes.toolPins", {"get_env": "a" * 64}, "toolPins pins tools"),
    "pin not a string": ("servers.notes.toolPins", {"add_note": 1}, "servers.notes.toolPins.add_note"),
    "unpinned tools neither served nor withheld": ("unpinnedTools", "allow", "unpinnedTools"),
    "fleet without audience": ("fleet", {"publicPath": "/mcp"}, "fleet.audience"),
    "fleet audience not a URL": ("fleet", {"audience": "mcp.test.example/mcp"}, "fleet.audience"),
    "fleet audience with a query": (
        "fleet",
        {"audience": "https://mcp.test.example/mcp?x=1"},
        "fleet.audience",
    ),
    "fleet audience with user info": (
        "fleet",
        {"audience": "https://u@mcp.test.example/mcp"},
        "fleet.audience",
    ),
    "fleet audience with a space": ("fleet", {"audience": "https://mcp.test.example/m cp"}, "fleet.audience"),
    # A per-server token (audience: the prefix and a server name) must not open /mcp.
    "fleet audience a server's": ("fleet", {"audience": AUDIENCE_PREFIX + "notes"}, "fleet.audience"),
    "fleet path under the server routes": (
        "fleet",
        {"audience": "https://mcp.test.example/mcp", "publicPath": "/servers/notes/mcp"},
        "fleet.publicPath",
    ),
    "fleet refresh under 5 s": ("fleet", {"audience": FLEET_AUDIENCE, "refreshSeconds": 1}, "refreshSeconds"),
    "fleet page size 0": ("fleet", {"audience": FLEET_AUDIENCE, "pageSize": 0}, "pageSize"),
    "fleet tools per server 0": ("fleet", {"audience": FLEET_AUDIENCE, "maxToolsPerServer": 0}, "maxTools"),
    "fleet unknown field": ("fleet", {"audience": FLEET_AUDIENCE, "ttl": 5}, "fleet.ttl"),
    "fleet rate limit 0": (
        "fleet",
        {"audience": FLEET_AUDIENCE, "rateLimits": {"perCallerPerMinute": 0, "perServerPerMinute": 10}},
        "fleet.rateLimits.perCallerPerMinute",
    ),
    "server rate limit missing a count": (
        "servers.notes.rateLimits",
        {"perCallerPerMinute": 5},
        "servers.notes.rateLimits.perServerPerMinute",
    ),
    "server rate limit not a number": (
        "servers.notes.rateLimits",
        {"perCallerPerMinute": "many", "perServerPerMinute": 10},
        "servers.notes.rateLimits.perCallerPerMinute",
    ),
}


@pytest.mark.parametrize(("path", "value", "field"), BAD.values(), ids=list(BAD))
def test_bad_configuration_names_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config(changed(path, value), "router.json")
    assert field in str(caught.value)
    assert str(caught.value).startswith("router.json: ")


def test_session_max_age_defaults_to_a_day() -> None:
    assert parse_config(GOOD).session_max_age_seconds == 86400
    assert parse_config(changed("sessionMaxAgeSeconds", 3600)).session_max_age_seconds == 3600


def test_fleet_pins_and_unpinned_tools_default_as_documented() -> None:
    unset = copy.deepcopy(GOOD)
    unset.pop("unpinnedTools", None)
    config = parse_config(unset)
    assert config.fleet is None and config.unpinned_tools == "withhold"
    assert config.servers["notes"].tool_pins == {}
    fleet = parse_config(changed("fleet", {"audience": FLEET_AUDIENCE})).fleet
    assert fleet is not None
    assert (fleet.public_path, fleet.audience) == ("/mcp", FLEET_AUDIENCE)
    assert (fleet.refresh_seconds, fleet.page_size, fleet.max_tools_per_server) == (300, 500, 1000)
    pins = {"add_note": "0123456789abcdef" * 4}
    document = changed("servers.notes.toolPins", pins)
    document["unpinnedTools"] = "serve"
    config = parse_config(document)
    assert config.servers["notes"].tool_pins == pins and config.unpinned_tools == "serve"


def test_bad_server_name() -> None:
    document = copy.deepcopy(GOOD)
    document["servers"]["Notes!"] = document["servers"].pop("notes")
    with pytest.raises(InvalidInput, match="servers"):
        parse_config(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [("not base64!\n", ":1: not base64"), ("AAAA\n", ":1: a key is 32 bytes"), ("\n\n", "holds no key")],
)
def test_bad_session_keys(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_session_keys(text, "keys")


def run(tmp_path: Path, config: str | None = None, key: bytes | None = None, keys: str | None = None) -> Any:
    issuer = Issuer()
    (tmp_path / "router.json").write_text(config if config is not None else json.dumps(GOOD))
    (tmp_path / "issuer.pem").write_bytes(key if key is not None else issuer.public_pem)
    (tmp_path / "keys").write_text(keys if keys is not None else session_keys_text(new_session_keys()))
    command = [sys.executable, "-m", "mcpfleet.router", "--config", "router.json", "--jwt-key", "issuer.pem"]
    # Files are read before any port is bound: a bad one stops the router whatever the ports.
    command += ["--session-keys", "keys", "--port", str(free_port()), "--metrics-port", str(free_port())]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"config": '{"environment":"a","environment":"b"}'}, "router.json: duplicate key"),
        ({"config": "{"}, "router.json: invalid JSON"),
        ({"config": json.dumps(changed("auth.algorithm", "HS256"))}, "router.json: auth.algorithm"),
        ({"key": b"not a key"}, "issuer.pem: not a PEM public key"),
        ({"keys": "AAAA\n"}, "keys:1: a key is 32 bytes"),
    ],
    ids=["duplicate key", "not JSON", "bad field", "bad jwt key", "bad session key"],
)
def test_command_line_refuses_bad_files(tmp_path: Path, files: dict[str, Any], expected: str) -> None:
    result = run(tmp_path, **files)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_command_line_refuses_a_key_of_the_wrong_algorithm(tmp_path: Path) -> None:
    result = run(tmp_path, key=Issuer("ES256").public_pem)
    assert result.returncode == 1
    assert "issuer.pem: the key is not an RS256 public key" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_missing_file(tmp_path: Path) -> None:
    (tmp_path / "issuer.pem").write_bytes(Issuer().public_pem)
    (tmp_path / "keys").write_text(session_keys_text(new_session_keys()))
    command = [sys.executable, "-m", "mcpfleet.router", "--config", "router.json", "--jwt-key", "issuer.pem"]
    command += ["--session-keys", "keys"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "router.json: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        (tmp_path / "router.json").write_text(json.dumps(GOOD))
        (tmp_path / "issuer.pem").write_bytes(Issuer().public_pem)
        (tmp_path / "keys").write_text(session_keys_text(new_session_keys()))
        command = [
            sys.executable,
            "-m",
            "mcpfleet.router",
            "--config",
            "router.json",
            "--jwt-key",
            "issuer.pem",
        ]
        command += ["--session-keys", "keys", "--port", str(port), "--metrics-port", str(free_port())]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


# A configuration directory: router.json naming server files beside it (docs/router.md, "Server files")

TEXT = server_entry("text", ["127.0.0.1:10"], ["word_count"], [{"tools": ["*"], "roles": ["engineer"]}])
UNITS = server_entry("units", ["127.0.0.1:11"], ["convert"], [{"tools": ["*"], "roles": ["engineer"]}])


def server_file(servers: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"servers": servers, **extra}).encode()


def write_directory(
    directory: Path, files: dict[str, bytes], named: dict[str, str] | None = None, servers: Any = None
) -> Path:
    """router.json (GOOD without its servers, or with servers given) naming files by their sha256 (or as
    named says), and the files themselves."""
    document = copy.deepcopy(GOOD)
    document["servers"] = {} if servers is None else servers
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    document["serverFiles"] = digests if named is None else named
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "router.json").write_text(json.dumps(document))
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def refusal(path: Path) -> str:
    """The refusal of loading path, its files named from their directory (as paths relative to the working
    directory are)."""
    with contextlib.chdir(path if path.is_dir() else path.parent), pytest.raises(InvalidInput) as caught:
        load_config(path)
    return str(caught.value)


def test_a_directory_merges_the_server_files_router_json_names(tmp_path: Path) -> None:
    directory = write_directory(
        tmp_path / "config",
        {
            "router-servers-01.json": server_file({"notes": GOOD["servers"]["notes"], "text": TEXT}),
            "router-servers-02.json": server_file({"units": UNITS}),
        },
    )
    config = load_config(directory)
    assert sorted(config.servers) == ["notes", "text", "units"]
    # What one router.json holding every server gives, field for field.
    whole = changed("servers", {"notes": GOOD["servers"]["notes"], "text": TEXT, "units": UNITS})
    assert config == parse_config(whole)
    # router.json itself names the same directory.
    assert load_config(directory / "router.json") == config


def test_router_json_alone_still_loads_from_its_directory(tmp_path: Path) -> None:
    (tmp_path / "router.json").write_text(json.dumps(GOOD))
    assert load_config(tmp_path) == load_config(tmp_path / "router.json") == parse_config(GOOD)


def test_servers_of_router_json_and_of_its_files_are_merged(tmp_path: Path) -> None:
    directory = write_directory(
        tmp_path, {"router-servers-01.json": server_file({"units": UNITS})}, servers={"text": TEXT}
    )
    assert sorted(load_config(directory).servers) == ["text", "units"]


def test_a_server_in_two_files_is_refused(tmp_path: Path) -> None:
    directory = write_directory(
        tmp_path,
        {
            "router-servers-01.json": server_file({"text": TEXT}),
            "router-servers-02.json": server_file({"text": TEXT, "units": UNITS}),
        },
    )
    assert (
        refusal(directory)
        == "router-servers-02.json: servers.text: also in router-servers-01.json: a server is in one file"
    )


def test_a_server_of_router_json_again_in_a_file_is_refused(tmp_path: Path) -> None:
    directory = write_directory(
        tmp_path, {"router-servers-01.json": server_file({"text": TEXT})}, servers={"text": TEXT}
    )
    assert "router-servers-01.json: servers.text: also in router.json" in refusal(directory)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            server_file({"units": UNITS}, environment="other"),
            "router-servers-01.json: environment: a server file holds `servers` and nothing else",
        ),
        (
            server_file({"units": UNITS}, serverFiles={}),
            "router-servers-01.json: serverFiles: a server file holds `servers`",
        ),
        (
            json.dumps({"servers": []}).encode(),
            "router-servers-01.json: servers: must be an object of servers by name",
        ),
        (b"[]", 'router-servers-01.json: must be an object: {"servers": {...}}'),
        (b'{"servers": {"units": {}}, "servers": {}}', "router-servers-01.json: duplicate key"),
        (b'{"servers": ', "router-servers-01.json: invalid JSON"),
        (b"\xff\xfe", "router-servers-01.json: not UTF-8"),
    ],
    ids=[
        "other key",
        "nested serverFiles",
        "servers a list",
        "not an object",
        "duplicate key",
        "not JSON",
        "not UTF-8",
    ],
)
def test_a_server_file_holding_anything_but_servers_is_refused(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    assert expected in refusal(write_directory(tmp_path, {"router-servers-01.json": data}))


def test_a_server_file_that_does_not_read_is_refused(tmp_path: Path) -> None:
    directory = write_directory(
        tmp_path, {}, named={"router-servers-01.json": "a" * 64, "router-servers-02.json": "b" * 64}
    )
    (directory / "router-servers-02.json").mkdir()
    message = refusal(directory)
    assert "router-servers-01.json: No such file or directory" in message
    assert "router-servers-02.json: Is a directory" in message


def test_a_server_file_of_another_version_is_refused(tmp_path: Path) -> None:
    # What the kubelet may show while it updates one ConfigMap after the other: never merged.
    directory = write_directory(tmp_path, {"router-servers-01.json": server_file({"text": TEXT})})
    (directory / "router-servers-01.json").write_bytes(server_file({"text": TEXT, "units": UNITS}))
    message = refusal(directory)
    assert message.startswith("router-servers-01.json: its sha256 is ")
    assert "router.json names" in message and "another version of the configuration" in message


def test_a_server_file_router_json_does_not_name_is_refused(tmp_path: Path) -> None:
    directory = write_directory(tmp_path, {"router-servers-01.json": server_file({"text": TEXT})})
    (directory / "router-servers-09.json").write_bytes(server_file({"units": UNITS}))
    assert refusal(directory) == (
        "router-servers-09.json: not named in router.json's serverFiles:"
        " a server file of another configuration"
    )
    # Beside a router.json naming none, too.
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "router.json").write_text(json.dumps(GOOD))
    (tmp_path / "alone" / "router-servers-01.json").write_bytes(server_file({"units": UNITS}))
    assert "router-servers-01.json: not named in" in refusal(tmp_path / "alone")


@pytest.mark.parametrize(
    ("named", "field"),
    [
        ({"../router-servers-01.json": "a" * 64}, "serverFiles.../router-servers-01.json"),
        ({"/etc/passwd": "a" * 64}, "serverFiles./etc/passwd"),
        ({"router.json": "a" * 64}, "serverFiles.router.json"),
        ({"router-servers-01.json": "A" * 64}, "serverFiles.router-servers-01.json"),
        ({"router-servers-01.json": 1}, "serverFiles.router-servers-01.json"),
        ([], "serverFiles"),
        ({}, "serverFiles"),
    ],
    ids=[
        "parent directory",
        "absolute path",
        "router.json itself",
        "digest in capitals",
        "digest a number",
        "a list",
        "empty",
    ],
)
def test_server_files_are_named_plainly_beside_router_json(tmp_path: Path, named: Any, field: str) -> None:
    assert refusal(write_directory(tmp_path, {}, named=named)).startswith(f"router.json: {field}: ")


def test_a_problem_in_a_server_files_entry_names_that_file(tmp_path: Path) -> None:
    bad = {**UNITS, "transport": "websocket"}
    directory = write_directory(
        tmp_path,
        {
            "router-servers-01.json": server_file({"text": TEXT}),
            "router-servers-02.json": server_file({"units": bad}),
        },
    )
    assert refusal(directory).startswith("router-servers-02.json: servers.units.transport: ")


def test_router_json_naming_server_files_still_needs_its_servers_field(tmp_path: Path) -> None:
    directory = write_directory(tmp_path, {"router-servers-01.json": server_file({"units": UNITS})})
    document = json.loads((directory / "router.json").read_text())
    del document["servers"]
    (directory / "router.json").write_text(json.dumps(document))
    assert refusal(directory).startswith("router.json: servers: Field required")


def test_command_line_refuses_a_bad_directory_naming_file_and_field(tmp_path: Path) -> None:
    write_directory(
        tmp_path / "config",
        {
            "router-servers-01.json": server_file({"text": TEXT}),
            "router-servers-02.json": server_file({"text": TEXT}),
        },
    )
    (tmp_path / "issuer.pem").write_bytes(Issuer().public_pem)
    (tmp_path / "keys").write_text(session_keys_text(new_session_keys()))
    command = [sys.executable, "-m", "mcpfleet.router", "--config", "config", "--jwt-key", "issuer.pem"]
    command += ["--session-keys", "keys", "--port", str(free_port()), "--metrics-port", str(free_port())]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert (
        "config/router-servers-02.json: servers.text: also in config/router-servers-01.json" in result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout
