"""The router's configuration (`router.json`, docs/router.md, and the server files it names) and the key
files beside it, read strictly.

Every problem found is reported at once, each naming the file and the field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from mcpfleet.errors import InputProblem, InvalidInput, display_path
from mcpfleet.router import strictjson

# Asymmetric algorithms only: with a shared secret the router could mint tokens, and a pinned public key
# must never double as an HMAC secret (HS/RS confusion).
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
ServerName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
ToolName = Annotated[str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9_.-]{1,128})$")]
Role = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9:_.-]*$")]
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$")]
# A tool's catalog pin: the hex sha256 of mcpfleet.catalog.toolhash.canonical_tool, as the catalog writes it.
ToolPin = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
UnpinnedTools = Literal["serve", "withhold"]
DEFAULT_REFRESH_SECONDS = 300
DEFAULT_PAGE_SIZE = 500
DEFAULT_MAX_TOOLS_PER_SERVER = 1000
SESSION_KEY_BYTES = 32
DEFAULT_SESSION_MAX_AGE_SECONDS = 24 * 60 * 60
CONFIG_FILE = "router.json"
# A fleet too large for one ConfigMap has its servers in server files beside router.json, which names
# each with the sha256 of its bytes (docs/router.md, "Server files").
SERVER_FILES_KEY = "serverFiles"
SERVER_FILE_GLOB = "router-servers-*.json"
SERVER_FILE_NAME = re.compile(r"router-servers-[a-z0-9]+(-[a-z0-9]+)*\.json")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
SSE_MESSAGE_SEGMENT = "message"
"""`/servers/<name>/message`: where an SSE server's clients post, whatever the server itself announced."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Auth(Model):
    issuer: str = Field(min_length=1)
    algorithm: Algorithm
    audience_prefix: str = Field(alias="audiencePrefix", min_length=1)
    roles_claim: str = Field(alias="rolesClaim", default="roles", min_length=1)
    subject_claim: str = Field(alias="subjectClaim", default="sub", min_length=1)


class Upstream(Model):
    host: str | None = Field(default=None, min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    addresses: list[str] | None = Field(default=None, min_length=1)
    path: UrlPath

    @model_validator(mode="after")
    def one_source(self) -> Upstream:
        if (self.host is None) == (self.addresses is None):
            raise ValueError("give either host (with port) or addresses, not both or neither")
        if self.host is not None and self.port is None:
            raise ValueError("host needs a port")
        for address in self.addresses or []:
            split_address(address)
        return self


class AccessRule(Model):
    tools: list[ToolName] = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)


class RateLimits(Model):
    """Messages per minute (docs/router.md, "Rate limits on /mcp")."""

    per_caller_per_minute: int = Field(alias="perCallerPerMinute", ge=1, le=1_000_000)
    per_server_per_minute: int = Field(alias="perServerPerMinute", ge=1, le=10_000_000)


class Server(Model):
    public_path: UrlPath = Field(alias="publicPath")
    transport: Literal["streamable-http", "sse"]
    upstream: Upstream
    stateless: bool = False
    tools: list[ToolName] = Field(default_factory=list)
    access: list[AccessRule] = Field(default_factory=list)
    # Declared tool -> its catalog sha256; a declared tool without one is unpinned (docs/router.md).
    tool_pins: dict[ToolName, ToolPin] = Field(alias="toolPins", default_factory=dict)
    # The server's own limits on /mcp; absent: the fleet endpoint's.
    rate_limits: RateLimits | None = Field(alias="rateLimits", default=None)

    @model_validator(mode="after")
    def declared(self) -> Server:
        if "*" in self.tools:
            raise ValueError("tools lists tool names; `*` belongs in access rules only")
        unknown = sorted({t for rule in self.access for t in rule.tools} - {"*", *self.tools})
        if unknown:
            raise ValueError(f"access names tools the server does not declare: {', '.join(unknown)}")
        unpinnable = sorted(set(self.tool_pins) - set(self.tools))
        if unpinnable:
            raise ValueError(f"toolPins pins tools the server does not declare: {', '.join(unpinnable)}")
        return self


class FleetEndpoint(Model):
    """`fleet`: the unified endpoint over every server (docs/router.md, "The fleet endpoint")."""

    public_path: UrlPath = Field(alias="publicPath", default="/mcp")
    audience: str = Field(min_length=1, max_length=2048)
    refresh_seconds: int = Field(alias="refreshSeconds", default=DEFAULT_REFRESH_SECONDS, ge=5, le=86400)
    page_size: int = Field(alias="pageSize", default=DEFAULT_PAGE_SIZE, ge=1, le=10000)
    max_tools_per_server: int = Field(
        alias="maxToolsPerServer", default=DEFAULT_MAX_TOOLS_PER_SERVER, ge=1, le=100000
    )
    # The environment's limits per caller of a server and per server, for servers without their own;
    # absent (and no server's own): messages on /mcp are not counted.
    rate_limits: RateLimits | None = Field(alias="rateLimits", default=None)

    @field_validator("audience")
    @classmethod
    def url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            raise ValueError(f"{value!r} holds user info, a query or a fragment; give scheme, host and path")
        if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
            raise ValueError(f"{value!r} holds spaces, control or non-ASCII characters")
        return value


class RouterConfig(Model):
    environment: str = Field(min_length=1)
    auth: Auth
    max_body_bytes: int = Field(alias="maxBodyBytes", ge=1, le=64 * 1024 * 1024)
    # A sealed session id older than this is refused (404: the client starts a new session), so a copied
    # id is not good forever. At most 30 days: a bound, not a way to turn expiry off.
    session_max_age_seconds: int = Field(
        alias="sessionMaxAgeSeconds", default=DEFAULT_SESSION_MAX_AGE_SECONDS, ge=60, le=30 * 24 * 60 * 60
    )
    # Whether a declared tool without a catalog pin is listed and callable (dev, local) or not (prod,
    # staging). Absent: withheld, the safe side.
    unpinned_tools: UnpinnedTools = Field(alias="unpinnedTools", default="withhold")
    fleet: FleetEndpoint | None = None
    servers: dict[ServerName, Server]

    @model_validator(mode="after")
    def paths(self) -> RouterConfig:
        owners: dict[str, str] = {}
        if self.fleet is not None:
            if self.fleet.public_path.startswith("/servers/"):
                raise ValueError("fleet.publicPath must not lie under /servers/, where server routes live")
            # A per-server token must not open /mcp: its audience is audiencePrefix + a server name.
            if self.fleet.audience.startswith(self.auth.audience_prefix):
                raise ValueError(
                    "fleet.audience must not start with auth.audiencePrefix (a server's audience)"
                )
        for name, server in self.servers.items():
            prefix = f"/servers/{name}/"
            if not server.public_path.startswith(prefix):
                raise ValueError(f"servers.{name}.publicPath must start with {prefix}")
            if server.transport == "sse" and server.public_path == prefix + SSE_MESSAGE_SEGMENT:
                raise ValueError(f"servers.{name}.publicPath is the SSE message path {prefix}message")
            if server.public_path in owners:
                raise ValueError(f"servers.{name}.publicPath is also servers.{owners[server.public_path]}'s")
            owners[server.public_path] = name
        return self


def split_address(address: str) -> tuple[str, int]:
    """`ip:port` or `[ipv6]:port` -> (ip, port); ValueError naming the address otherwise."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", address)
    if match is None:
        raise ValueError(f"address {address!r} is not ip:port or [ipv6]:port")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"address {address!r} does not hold an IP address") from None
    if not 0 < port < 65536:
        raise ValueError(f"address {address!r} has port {port} out of range")
    return host, port


def _field(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_config(
    document: Any, file: str = CONFIG_FILE, server_files: Mapping[str, str] | None = None
) -> RouterConfig:
    """Validate an already parsed configuration (a dict, as tests build it).

    server_files: server name -> the file its entry came from, so a problem in it names that file."""
    try:
        return RouterConfig.model_validate(document)
    except ValidationError as error:
        problems = []
        for e in error.errors(include_url=False):
            location = tuple(e["loc"])
            source = file
            if len(location) >= 2 and location[0] == "servers" and server_files:
                source = server_files.get(str(location[1]), file)
            problems.append(InputProblem(source, None, _field(location) if location else None, e["msg"]))
        raise InvalidInput(problems) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput(
            [InputProblem(display_path(path), None, None, error.strerror or str(error))]
        ) from None


def _parse_json(data: bytes, path: Path) -> Any:
    try:
        document = strictjson.loads(data)
        strictjson.dumps(document)
    except strictjson.NotStrictJson as error:
        raise InvalidInput([InputProblem(display_path(path), None, None, str(error))]) from None
    return document


def config_file(path: Path) -> Path:
    """`--config` names router.json or the directory holding it (the router's ConfigMap volume)."""
    return path / CONFIG_FILE if path.is_dir() else path


def _named_files(named: Any, shown: str, problems: list[InputProblem]) -> dict[str, str]:
    """router.json's serverFiles: file name -> sha256 of its bytes; problems for anything else."""
    if not isinstance(named, dict) or not named:
        problems.append(
            InputProblem(shown, None, SERVER_FILES_KEY, "must map server file names to their sha256")
        )
        return {}
    files = {}
    for name, digest in named.items():
        field = f"{SERVER_FILES_KEY}.{name}"
        if not SERVER_FILE_NAME.fullmatch(name):
            problems.append(
                InputProblem(shown, None, field, "a server file is named router-servers-<id>.json, beside it")
            )
        elif not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            problems.append(InputProblem(shown, None, field, "must be the file's sha256, 64 lowercase hex"))
        else:
            files[name] = digest
    return files


def _server_file(
    path: Path, digest: str, shown_config: str, origin: dict[str, str], problems: list[InputProblem]
) -> dict[str, Any]:
    """One server file's servers, once it reads, is the file router.json names and holds `servers` only;
    origin gains each server's file, and a server already in another file is a problem."""
    shown = display_path(path)
    try:
        data = _read(path)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            # The kubelet updates one ConfigMap at a time: a half-updated set of files is refused rather
            # than merged, and the container's restart reads it again.
            raise InvalidInput(
                [
                    InputProblem(
                        shown,
                        None,
                        None,
                        f"its sha256 is {actual[:12]}..., {shown_config} names {digest[:12]}...: a file of"
                        " another version of the configuration",
                    )
                ]
            )
        document = _parse_json(data, path)
    except InvalidInput as error:
        problems.extend(error.problems)
        return {}
    if not isinstance(document, dict):
        problems.append(InputProblem(shown, None, None, 'must be an object: {"servers": {...}}'))
        return {}
    for key in sorted(set(document) - {"servers"}):
        problems.append(InputProblem(shown, None, key, "a server file holds `servers` and nothing else"))
    servers = document.get("servers")
    if not isinstance(servers, dict):
        problems.append(InputProblem(shown, None, "servers", "must be an object of servers by name"))
        return {}
    for name in servers:
        if name in origin:
            problems.append(
                InputProblem(
                    shown, None, f"servers.{name}", f"also in {origin[name]}: a server is in one file"
                )
            )
        else:
            origin[name] = shown
    return servers


def load_config(path: Path) -> RouterConfig:
    """router.json (path, or router.json in the directory path), parsed as strictly as the messages it
    governs (duplicate keys refused), with the servers of every server file it names merged in.

    A server in two files, a file that does not read, is not the one named (its sha256), or holds more than
    `servers`, and a `router-servers-*.json` beside router.json that it does not name: each is refused."""
    main = config_file(path)
    shown = display_path(main)
    document = _parse_json(_read(main), main)
    origin: dict[str, str] = {}
    problems: list[InputProblem] = []
    files: dict[str, str] = {}
    if isinstance(document, dict):
        servers = document.get("servers")
        if isinstance(servers, dict):
            origin.update(dict.fromkeys(servers, shown))
        if SERVER_FILES_KEY in document:
            files = _named_files(document.pop(SERVER_FILES_KEY), shown, problems)
            merged = dict(servers) if isinstance(servers, dict) else {}
            for name, digest in sorted(files.items()):
                merged.update(_server_file(main.parent / name, digest, shown, origin, problems))
            if isinstance(servers, dict):
                document["servers"] = merged
    for stray in sorted(main.parent.glob(SERVER_FILE_GLOB)):
        if stray.name not in files:
            problems.append(
                InputProblem(
                    display_path(stray),
                    None,
                    None,
                    f"not named in {shown}'s {SERVER_FILES_KEY}: a server file of another configuration",
                )
            )
    if problems:
        raise InvalidInput(problems)
    return parse_config(document, shown, origin)


def load_jwt_key(path: Path) -> bytes:
    """The issuer's public key (PEM); checked against the algorithm when the verifier is built."""
    data = _read(path)
    if b"-----BEGIN" not in data:
        raise InvalidInput([InputProblem(display_path(path), None, None, "not a PEM public key")])
    if b"PRIVATE KEY" in data:
        raise InvalidInput(
            [InputProblem(display_path(path), None, None, "holds a private key; give the public key only")]
        )
    return data


def parse_session_keys(text: str, file: str = "session keys") -> list[bytes]:
    """One base64 32-byte key per line (blank lines ignored); the first seals, all open."""
    keys: list[bytes] = []
    problems: list[InputProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            key = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            problems.append(InputProblem(file, number, None, "not base64"))
            continue
        if len(key) != SESSION_KEY_BYTES:
            problems.append(
                InputProblem(file, number, None, f"a key is {SESSION_KEY_BYTES} bytes, not {len(key)}")
            )
            continue
        keys.append(key)
    if not keys and not problems:
        problems.append(InputProblem(file, None, None, "holds no key"))
    if problems:
        raise InvalidInput(problems)
    return keys


def load_session_keys(path: Path) -> list[bytes]:
    try:
        text = _read(path).decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput([InputProblem(display_path(path), None, None, "not ASCII base64 lines")]) from None
    return parse_session_keys(text, display_path(path))
