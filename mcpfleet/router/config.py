"""The router's configuration (`router.json`, docs/router.md) and the key files beside it, read strictly.

Every problem found is reported at once, each naming the file and the field.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
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


class Server(Model):
    public_path: UrlPath = Field(alias="publicPath")
    transport: Literal["streamable-http", "sse"]
    upstream: Upstream
    stateless: bool = False
    tools: list[ToolName] = Field(default_factory=list)
    access: list[AccessRule] = Field(default_factory=list)
    # Declared tool -> its catalog sha256; a declared tool without one is unpinned (docs/router.md).
    tool_pins: dict[ToolName, ToolPin] = Field(alias="toolPins", default_factory=dict)

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


def parse_config(document: Any, file: str = "router.json") -> RouterConfig:
    """Validate an already parsed configuration (a dict, as tests build it)."""
    try:
        return RouterConfig.model_validate(document)
    except ValidationError as error:
        problems = [
            InputProblem(file, None, _field(tuple(e["loc"])) if e["loc"] else None, e["msg"])
            for e in error.errors(include_url=False)
        ]
        raise InvalidInput(problems) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput(
            [InputProblem(display_path(path), None, None, error.strerror or str(error))]
        ) from None


def load_config(path: Path) -> RouterConfig:
    """`router.json`, parsed as strictly as the messages it governs (duplicate keys refused)."""
    try:
        document = strictjson.loads(_read(path))
        strictjson.dumps(document)
    except strictjson.NotStrictJson as error:
        raise InvalidInput([InputProblem(display_path(path), None, None, str(error))]) from None
    return parse_config(document, display_path(path))


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
