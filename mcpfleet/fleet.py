"""The fleet for one environment: catalog servers enabled there, with their overrides applied.

Pure data, no Pulumi: the components render what this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcpfleet.catalog.loader import Catalog
from mcpfleet.catalog.models import Image, Resources, Server
from mcpfleet.errors import InputProblem, InvalidInput
from mcpfleet.model import EnvName, RateLimits
from mcpfleet.stacks.models import CONFIG_KEY, Environment


@dataclass(frozen=True)
class FleetServer:
    """A server as it runs in one environment."""

    spec: Server
    namespace: str
    image: Image
    replicas: int
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    resources: Resources
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Fleet:
    """Everything the Pulumi program needs for one environment."""

    environment: EnvName
    settings: Environment
    servers: tuple[FleetServer, ...]

    @property
    def namespaces(self) -> dict[str, str]:
        """Server namespaces and the team each belongs to (`shared` when several teams share it)."""
        teams: dict[str, str] = {}
        for server in self.servers:
            team = server.spec.owner.team
            teams[server.namespace] = team if teams.get(server.namespace, team) == team else "shared"
        return dict(sorted(teams.items()))

    def audience(self, server: str) -> str:
        """The token audience of server: its public URL prefix (RFC 8707 resource indicator style)."""
        return token_audience(self.settings.domain, server)

    @property
    def endpoint_audience(self) -> str:
        """The token audience of the fleet endpoint (`https://<domain>/mcp`): its own, no server's."""
        return fleet_audience(self.settings.domain)

    def rate_limits(self, server: FleetServer) -> RateLimits:
        return server.spec.rate_limits or self.settings.gateway.rate_limits


def audience_prefix(domain: str) -> str:
    """What every server's token audience starts with; the server's name follows."""
    return f"https://{domain}/servers/"


def token_audience(domain: str, server: str) -> str:
    return f"{audience_prefix(domain)}{server}"


# The fleet endpoint: one MCP server over every server of the environment, served by the router
# (docs/router.md, "The fleet endpoint"). Its path is no server's (servers live under /servers/).
FLEET_PATH = "/mcp"


def fleet_audience(domain: str) -> str:
    """The token audience of the fleet endpoint: its public URL."""
    return f"https://{domain}{FLEET_PATH}"


def namespace_for(server: Server, settings: Environment) -> str:
    if settings.namespace_strategy == "per-team":
        return settings.namespace_prefix + server.owner.team
    if settings.namespace_strategy == "per-server":
        return settings.namespace_prefix + server.name
    return settings.namespace_prefix + "servers"


def resolve_fleet(catalog: Catalog, environment: EnvName, settings: Environment, stack_file: str) -> Fleet:
    """Pick the servers for environment and apply their overrides; refuse selections of unknown servers."""
    by_name = catalog.by_name()
    problems = []
    selected: list[Server]
    if "*" in settings.servers:
        selected = [s for s in catalog.servers if s.enabled_in(environment)]
    else:
        selected = []
        for index, name in enumerate(settings.servers):
            field = f"config.{CONFIG_KEY}.servers[{index}]"
            server = by_name.get(name)
            if name in settings.servers[:index]:
                problems.append(InputProblem(stack_file, None, field, f"{name!r} is listed twice"))
            elif server is None:
                problems.append(InputProblem(stack_file, None, field, f"no catalog server is named {name!r}"))
            elif not server.enabled_in(environment):
                problems.append(
                    InputProblem(
                        stack_file,
                        None,
                        field,
                        f"{name!r} is not enabled for {environment} in its catalog entry"
                        f" (environments.{environment})",
                    )
                )
            else:
                selected.append(server)
    problems.extend(_namespace_problems(catalog, selected, settings, stack_file))
    if problems:
        raise InvalidInput(problems)
    servers = tuple(sorted((_resolve(s, environment, settings) for s in selected), key=lambda s: s.name))
    return Fleet(environment, settings, servers)


# Namespaces Kubernetes keeps for itself and those the platform installs into (the mesh, External
# Secrets, cert-manager; the AWS Load Balancer Controller and metrics-server go in kube-system). A
# server namespace or the gateway's on one of these, or on the monitoring namespace, would make the
# program create one Namespace twice, or take over a namespace it does not own.
# The gateway resolves each server's ready pods through a headless Service `<server><suffix>` beside the
# server's own Service (components/manifests/gateway.py, endpoints_service_name).
ENDPOINTS_SUFFIX = "-gateway"
RESERVED_NAMESPACES = (
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
    "external-secrets",
    "cert-manager",
)


def _namespace_problems(
    catalog: Catalog, servers: list[Server], settings: Environment, stack_file: str
) -> list[InputProblem]:
    settings_field = f"config.{CONFIG_KEY}"
    taken = dict.fromkeys(RESERVED_NAMESPACES, "a namespace the platform or Kubernetes owns")
    problems = [
        InputProblem(stack_file, None, f"{settings_field}.{field}", f"{name!r} is {taken[name]}")
        for field, name in (
            ("gatewayNamespace", settings.gateway_namespace),
            ("monitoringNamespace", settings.monitoring_namespace),
        )
        if name in taken
    ]
    if settings.gateway_namespace == settings.monitoring_namespace:
        problems.append(
            InputProblem(
                stack_file,
                None,
                f"{settings_field}.gatewayNamespace",
                f"{settings.gateway_namespace!r} is also the monitoring namespace: give each its own",
            )
        )
    taken[settings.gateway_namespace] = f"the gateway's namespace ({settings_field}.gatewayNamespace)"
    taken[settings.monitoring_namespace] = f"the monitoring namespace ({settings_field}.monitoringNamespace)"
    files = {entry.server.name: entry.file for entry in catalog.entries}
    services = {(namespace_for(server, settings), server.name) for server in servers}
    for server in servers:
        # Each server has a Service named after it and a headless one the gateway resolves its pods by.
        endpoints = f"{server.name}{ENDPOINTS_SUFFIX}"
        if (namespace_for(server, settings), endpoints) in services:
            problems.append(
                InputProblem(
                    files.get(endpoints, endpoints),
                    None,
                    "name",
                    f"{endpoints!r} is the name of the gateway's endpoints Service of server"
                    f" {server.name!r}, in the same namespace: rename it",
                )
            )
    for server in servers:
        namespace = namespace_for(server, settings)
        if namespace not in taken:
            continue
        reason = f"its namespace {namespace!r} ({settings.namespace_strategy}) is {taken[namespace]}"
        if settings.namespace_strategy == "single":
            problems.append(InputProblem(stack_file, None, f"{settings_field}.namespacePrefix", reason))
            break
        field = "owner.team" if settings.namespace_strategy == "per-team" else "name"
        problems.append(
            InputProblem(
                files.get(server.name, server.name),
                None,
                field,
                f"{reason}: rename it, or change the stack's namespace settings",
            )
        )
    return problems


def _resolve(server: Server, environment: EnvName, settings: Environment) -> FleetServer:
    override = server.environments[environment]
    scaling = server.scaling
    if override.scaling is not None:
        scaling = scaling.model_copy(
            update={f: getattr(override.scaling, f) for f in override.scaling.model_fields_set}
        )
    floor = settings.minimum_replicas
    replicas = max(scaling.replicas or settings.default_replicas, floor)
    min_replicas = max(scaling.min_replicas or replicas, floor)
    replicas = max(replicas, min_replicas)
    max_replicas = max(scaling.max_replicas or settings.default_max_replicas, replicas)

    image = server.image
    if override.image is not None:
        image = image.model_copy(
            update={f: getattr(override.image, f) for f in override.image.model_fields_set}
        )

    return FleetServer(
        spec=server,
        namespace=namespace_for(server, settings),
        image=image,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu_utilization=scaling.target_cpu_utilization,
        resources=override.resources or server.resources,
        env={**server.env, **override.env},
    )
