"""The catalog entry format: one MCP server per file, validated before anything is planned.

Names follow the official MCP Registry's `server.json` where it has the same notion (`name`,
`title`, `description`, `version`, `repository`, `websiteUrl`, `packages` with `registryType`,
`identifier`, `runtimeHint`, `transport.type`); the rest is what running the server needs.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from mcpfleet.errors import FieldErrors, field_error
from mcpfleet.model import (
    Cidr,
    CpuQuantity,
    DnsLabel,
    EnvName,
    EnvVarName,
    Hostname,
    HttpsUrl,
    MemoryQuantity,
    Model,
    RateLimits,
    cpu_cores,
    memory_bytes,
)

ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{64}$")]
ImageRepository = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
        max_length=255,
    ),
]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
ImageDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")]
HttpPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=256)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Owner(Model):
    """Who answers for this server."""

    team: DnsLabel = Field(
        description="Owning team, a DNS label; with the per-team namespace strategy it names the namespace."
    )
    contact: str = Field(
        min_length=3,
        max_length=200,
        description="Where to reach the owners: an e-mail address, a chat channel or an on-call URL.",
    )


class Repository(Model):
    """Source repository, as in the MCP Registry's server.json."""

    url: HttpsUrl = Field(description="Repository URL.")
    source: Literal["github", "gitlab", "bitbucket", "other"] = Field(
        description="Hosting service of the repository."
    )
    subfolder: str | None = Field(
        default=None, description="Path of the server inside a monorepo, if it is not at the root."
    )


class Image(Model):
    """The container image that runs the server."""

    repository: ImageRepository = Field(
        description="Image repository with its registry host, e.g. `ghcr.io/github/github-mcp-server`."
    )
    tag: ImageTag | None = Field(default=None, description="Tag as the project publishes it.")
    digest: ImageDigest | None = Field(
        default=None,
        description=(
            "Content digest (`sha256:...`). Pin only a digest the project documents publicly, and say"
            " where it came from in `digestSource`."
        ),
    )
    digest_source: HttpsUrl | None = Field(
        default=None, description="Public page that documents the pinned digest."
    )

    @model_validator(mode="after")
    def _tag_or_digest(self) -> Image:
        if self.tag is None and self.digest is None:
            raise field_error("give a tag, a digest, or both", "tag")
        if self.digest is not None and self.digest_source is None:
            raise field_error("a pinned digest needs `digestSource`: the public page it came from", "digest")
        return self

    @property
    def reference(self) -> str:
        """`repo:tag@digest`, the form Kubernetes pulls (the digest wins when both are given)."""
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class ImageOverride(Model):
    """Per-environment image change: usually a newer tag in dev before it is promoted."""

    tag: ImageTag | None = Field(default=None, description="Tag to use in this environment.")
    digest: ImageDigest | None = Field(default=None, description="Digest to use in this environment.")
    digest_source: HttpsUrl | None = Field(
        default=None, description="Public page that documents the pinned digest."
    )

    @model_validator(mode="after")
    def _digest_has_source(self) -> ImageOverride:
        if self.digest is not None and self.digest_source is None:
            raise field_error("a pinned digest needs `digestSource`: the public page it came from", "digest")
        return self


class Package(Model):
    """A published package of the server, as the MCP Registry's `packages` describe it.

    Used to run the server without a cluster (`mcpfleet dev`)."""

    registry_type: Literal["npm", "pypi", "oci"] = Field(description="Package registry.")
    identifier: str = Field(min_length=1, max_length=255, description="Package name in that registry.")
    version: str = Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$",
        description="Exact published version (never `latest` or a range).",
    )
    runtime_hint: Literal["npx", "uvx", "docker", "node", "python"] | None = Field(
        default=None, description="Runtime that launches the package."
    )
    package_arguments: list[str] = Field(
        default_factory=list, description="Arguments after the package name."
    )


class Transport(Model):
    """How clients speak MCP to the server."""

    type: Literal["streamable-http", "sse", "stdio"] = Field(
        description=(
            "`streamable-http` or `sse` are served by the image itself. `stdio` servers run behind"
            " the Supergateway bridge, which the image must carry as its entrypoint; the workload"
            " then serves Streamable HTTP on `port` and `path`."
        )
    )
    port: Port = Field(default=8080, description="Container port that serves MCP over HTTP.")
    path: HttpPath = Field(default="/mcp", description="HTTP path of the MCP endpoint.")
    command: list[str] = Field(
        default_factory=list,
        description="For `stdio`: the command line of the stdio server, run by the bridge.",
    )

    @model_validator(mode="after")
    def _stdio_needs_command(self) -> Transport:
        if self.type == "stdio" and not self.command:
            raise field_error("`command` is required when type is stdio: the bridge must start it", "command")
        if self.type != "stdio" and self.command:
            raise field_error("`command` is only for stdio servers; use `args` for the container", "command")
        return self


class Probe(Model):
    """A liveness or readiness check. Without `httpPath` the check opens the MCP port (TCP)."""

    http_path: HttpPath | None = Field(
        default=None, description="HTTP path answering 2xx when healthy; TCP check when absent."
    )
    initial_delay_seconds: int = Field(default=5, ge=0, le=600, description="Wait before the first check.")
    period_seconds: int = Field(default=10, ge=1, le=300, description="Seconds between checks.")
    timeout_seconds: int = Field(default=2, ge=1, le=60, description="Seconds before a check fails.")
    failure_threshold: int = Field(default=3, ge=1, le=30, description="Failures in a row before acting.")


class Health(Model):
    """Health checks: liveness restarts a stuck server, readiness keeps traffic off a busy one."""

    liveness: Probe = Field(default_factory=Probe, description="Restart the container when it fails.")
    readiness: Probe = Field(
        default_factory=Probe, description="Take the pod out of the Service when it fails."
    )


class Tool(Model):
    """A tool the server declares. Pinning its hash turns a silent change into drift we report."""

    name: ToolName = Field(description="Tool name exactly as the server lists it.")
    description: str | None = Field(default=None, max_length=4000, description="What the tool does.")
    sha256: Sha256Hex | None = Field(
        default=None,
        description=(
            "sha256 of the canonical JSON of the tool's name, description and inputSchema"
            " (`mcpfleet.catalog.toolhash`)."
        ),
    )


class SecretRef(Model):
    """A secret the server needs, by reference: the value lives in the secret store, never here."""

    key: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/_+=.@-]*$",
        max_length=512,
        description="Key of the secret in the environment's secret store, e.g. `github/pat`.",
    )
    env: EnvVarName = Field(description="Environment variable the server reads it from.")
    description: str | None = Field(default=None, max_length=500, description="What the secret is for.")


def secret_resource_name(server: str, key: str) -> str:
    """The Pulumi name of the Secrets Manager secret a reference creates in the cloud (components/secrets.py).

    Pulumi identifies a resource by its type and this name, not by the server it belongs to, so the
    catalog keeps these unique: `a` with key `b-secret-k` and `a-secret-b` with key `k` would collide.
    """
    return f"{server}-secret-{key}"


class Egress(Model):
    """A destination the server may reach. Anything not declared is blocked."""

    host: Hostname | None = Field(
        default=None,
        description="DNS name; enforced by the mesh, and by the NetworkPolicy on ports to public addresses.",
    )
    cidr: Cidr | None = Field(default=None, description="IPv4 range, enforced by the NetworkPolicy.")
    ports: list[Port] = Field(min_length=1, description="Destination ports.")
    protocol: Literal["TCP", "UDP"] = Field(default="TCP", description="Transport protocol.")

    @model_validator(mode="after")
    def _one_destination(self) -> Egress:
        if self.host is not None and self.cidr is not None:
            raise field_error("give exactly one of `host` or `cidr`", "cidr")
        if self.host is None and self.cidr is None:
            raise field_error("give exactly one of `host` or `cidr`")
        return self


# Resources a server's Kubernetes access never covers, whatever the entry asks: Secrets hold credentials;
# these subresources run commands in or forward into pods and nodes, or mint tokens of other accounts
# (a `get` on some of them is enough: exec and node proxying over a WebSocket start with a GET).
FORBIDDEN_KUBERNETES_RESOURCES = frozenset(
    {
        "secrets",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "pods/proxy",
        "services/proxy",
        "nodes/proxy",
        "serviceaccounts/token",
    }
)
# The verbs a read grant gives, and no other.
KUBERNETES_READ_VERBS = ("get", "list", "watch")
_API_GROUP = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
_RESOURCE = re.compile(r"^[a-z][a-z0-9]*(/[a-z][a-z0-9]*)?$")


class KubernetesReadRule(Model):
    """Resources of some API groups the server may read (get, list, watch), in every namespace."""

    api_groups: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        min_length=1, description='API groups, as RBAC names them: `""` for the core group, `apps`, ...'
    )
    resources: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        min_length=1,
        description="Resources (plural, lower case), or subresources such as `pods/log`; never a wildcard.",
    )

    @model_validator(mode="after")
    def _named_and_never_secrets(self) -> KubernetesReadRule:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, group in enumerate(self.api_groups):
            if "*" in group:
                problems.append((("apiGroups", index), "no wildcard: name each API group"))
            elif not _API_GROUP.match(group):
                problems.append((("apiGroups", index), f"{group!r} is not an API group name"))
        for index, resource in enumerate(self.resources):
            if "*" in resource:
                problems.append((("resources", index), "no wildcard: name each resource"))
            elif not _RESOURCE.match(resource):
                problems.append(
                    (
                        ("resources", index),
                        f"{resource!r} is not a resource name (plural, lower case, or resource/subresource)",
                    )
                )
            elif resource in FORBIDDEN_KUBERNETES_RESOURCES or resource.startswith("secrets/"):
                problems.append(
                    (
                        ("resources", index),
                        f"{resource} is never granted to an MCP server (credentials, or commands run in"
                        " pods or nodes)",
                    )
                )
        if problems:
            raise FieldErrors(problems)
        return self


class KubernetesAccess(Model):
    """Read-only access to the Kubernetes API, for servers whose job is to inspect the cluster."""

    read: list[KubernetesReadRule] = Field(
        min_length=1,
        description=(
            "What the server may get, list and watch, cluster-wide, as its own ServiceAccount (a ClusterRole"
            " bound to it, its token mounted); no other verb, never Secrets, no wildcard."
        ),
    )


class AccessRule(Model):
    """Which caller roles may call which tools."""

    roles: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9:_.-]*$")]] = Field(
        min_length=1, description="Caller roles (token claims) this rule admits."
    )
    tools: list[Annotated[str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9_.-]{1,128})$")]] = Field(
        min_length=1, description="Tools these roles may call; `*` for every declared tool."
    )


class ResourceAmounts(Model):
    """CPU and memory, as Kubernetes quantities."""

    cpu: CpuQuantity = Field(description="CPU, e.g. `250m` or `1`.")
    memory: MemoryQuantity = Field(description="Memory, e.g. `256Mi`.")


class Resources(Model):
    """Requests reserve capacity; limits cap it. Both are always set."""

    requests: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="100m", memory="128Mi"),
        description="Reserved for the container.",
    )
    limits: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="500m", memory="256Mi"),
        description="Most the container may use.",
    )

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if cpu_cores(self.requests.cpu) > cpu_cores(self.limits.cpu):
            raise field_error("requests.cpu is above limits.cpu", "requests", "cpu")
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise field_error("requests.memory is above limits.memory", "requests", "memory")
        return self


class Scaling(Model):
    """Replica counts. Unset values come from the environment's defaults."""

    replicas: int | None = Field(default=None, ge=1, le=1000, description="Replicas at rest.")
    min_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="Fewest replicas the autoscaler keeps."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="Most replicas the autoscaler adds."
    )
    target_cpu_utilization: int = Field(
        default=70, ge=10, le=100, description="Average CPU (% of requests) the autoscaler aims for."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if self.min_replicas and self.max_replicas and self.min_replicas > self.max_replicas:
            raise field_error("minReplicas is above maxReplicas", "minReplicas")
        return self


class EnvironmentOverride(Model):
    """What differs for this server in one environment. Listing an environment enables the server there."""

    enabled: bool = Field(default=True, description="Run the server in this environment.")
    image: ImageOverride | None = Field(default=None, description="Image tag or digest for this environment.")
    scaling: Scaling | None = Field(default=None, description="Replica counts for this environment.")
    resources: Resources | None = Field(default=None, description="Requests and limits for this environment.")
    env: dict[EnvVarName, str] = Field(
        default_factory=dict, description="Non-secret settings added or changed in this environment."
    )


class Decommission(Model):
    """A deliberate, reviewed removal: the entry stays (with this marker) while the environments drain."""

    environments: list[EnvName] = Field(min_length=1, description="Environments the server is removed from.")
    reason: str = Field(min_length=1, max_length=500, description="Why, with the tracking reference.")
    date: datetime.date = Field(strict=False, description="When it was decided (YYYY-MM-DD).")


def _default_environments() -> dict[EnvName, EnvironmentOverride]:
    return {"local": EnvironmentOverride(), "dev": EnvironmentOverride()}


class Server(Model):
    """One MCP server in the fleet."""

    schema_: str | None = Field(
        default=None, alias="$schema", description="Path of catalog/schema.json, for editors."
    )
    name: DnsLabel = Field(
        description="Unique name in the fleet, a DNS label; names the workload and the gateway route."
    )
    registry_name: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$",
        description="The server's name in the official MCP Registry (reverse-DNS), if published there.",
    )
    title: str = Field(min_length=1, max_length=100, description="Human-readable name.")
    description: str = Field(min_length=1, max_length=1000, description="What the server is for.")
    version: str = Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$", max_length=64, description="Server version deployed."
    )
    owner: Owner = Field(description="Owning team and how to reach it.")
    repository: Repository = Field(description="Source repository.")
    website_url: HttpsUrl | None = Field(default=None, description="Project homepage or documentation.")
    image: Image = Field(description="Container image.")
    args: list[str] = Field(default_factory=list, description="Container arguments (not for stdio servers).")
    packages: list[Package] = Field(
        default_factory=list, description="Published packages, for running the server without a cluster."
    )
    transport: Transport = Field(description="MCP transport, port and path.")
    health: Health = Field(default_factory=Health, description="Liveness and readiness checks.")
    metrics_path: HttpPath | None = Field(
        default="/metrics",
        description=(
            "Path of the server's Prometheus metrics on its MCP port; null when it serves none (its"
            " alerts then rest on the gateway's and Kubernetes' metrics alone)."
        ),
    )
    tools: list[Tool] = Field(default_factory=list, description="Tools the server is expected to list.")
    secrets: list[SecretRef] = Field(default_factory=list, description="Secrets by reference; never values.")
    env: dict[EnvVarName, str] = Field(
        default_factory=dict, description="Non-secret settings, delivered through a ConfigMap."
    )
    egress: list[Egress] = Field(default_factory=list, description="Destinations the server may reach.")
    kubernetes_access: KubernetesAccess | None = Field(
        default=None,
        description=(
            "Read access to the cluster's Kubernetes API (servers that inspect the cluster): its"
            " ServiceAccount token is mounted, a ClusterRole grants get/list/watch on exactly these"
            " resources, and egress to the API server is opened. Unset: no token, no RBAC, no API."
        ),
    )
    access: list[AccessRule] = Field(
        default_factory=list, description="Which caller roles may call which tools."
    )
    rate_limits: RateLimits | None = Field(
        default=None, description="Requests per minute at the gateway; the environment's defaults when unset."
    )
    resources: Resources = Field(default_factory=Resources, description="CPU and memory requests and limits.")
    scaling: Scaling = Field(default_factory=Scaling, description="Replica counts.")
    stateless: bool = Field(
        default=False,
        description=(
            "True when any replica can answer any request (no MCP session state), so no session"
            " affinity is needed."
        ),
    )
    run_as_user: int = Field(
        default=65532, ge=1, le=2147483647, description="Non-root user id the container runs as."
    )
    decommissioned: Decommission | None = Field(
        default=None,
        description=(
            "Marks the server's removal from the listed environments (prod removals need it); those"
            " environments must not enable it."
        ),
    )
    environments: dict[EnvName, EnvironmentOverride] = Field(
        default_factory=_default_environments,
        description=(
            "Environments the server runs in, with their overrides. Unlisted environments do not run"
            " it; by default it runs in local and dev only."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Server:
        # Each finding names the field to change, so the message points at its line.
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first_tool: dict[str, int] = {}
        for index, tool in enumerate(self.tools):
            first = first_tool.setdefault(tool.name, index)
            if first != index:
                problems.append(
                    (("tools", index, "name"), f"tool {tool.name} declared twice (also tools[{first}])")
                )
        first_env: dict[str, int] = {}
        for index, secret in enumerate(self.secrets):
            first = first_env.setdefault(secret.env, index)
            if first != index:
                problems.append(
                    (
                        ("secrets", index, "env"),
                        f"secrets[{first}] already feeds the environment variable {secret.env}",
                    )
                )
        for name in sorted(set(first_env) & set(self.env)):
            problems.append((("env", name), f"{name} set both as a secret and as a plain setting"))
        if self.decommissioned is not None:
            for index, env in enumerate(self.decommissioned.environments):
                if self.enabled_in(env):
                    # Enabled by default (local and dev) when the entry lists no environments.
                    where: tuple[str | int, ...] = (
                        ("environments", env)
                        if env in self.environments and "environments" in self.model_fields_set
                        else ("decommissioned", "environments", index)
                    )
                    problems.append((where, f"decommissioned from {env} but still enabled there"))
        if self.transport.type == "stdio" and self.args:
            problems.append((("args",), "stdio servers take `transport.command`, not `args`"))
        if problems:
            raise FieldErrors(problems)
        return self

    def enabled_in(self, environment: EnvName) -> bool:
        override = self.environments.get(environment)
        return override is not None and override.enabled
