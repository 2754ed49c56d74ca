"""The Pulumi program: settings and catalog in, one environment's resources out.

`__main__.py` runs it under `pulumi up`; `mcpfleet plan` runs the very same function in-process
under a recording mock engine.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.cluster.eks import EksCluster
from components.cluster.existing import existing_cluster_provider
from components.fleet import Fleet
from components.manifests.secrets import LOCAL_SECRETS_CONFIG_KEY, missing_value_message
from components.secrets import check_store_keys
from components.server import ServerPlatform
from mcpfleet.catalog.loader import load_catalog
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import FLEET_PATH, resolve_fleet
from mcpfleet.fleet import Fleet as FleetModel
from mcpfleet.stacks.loader import check_env_name, environment_from_config, router_image_problem
from mcpfleet.stacks.models import CONFIG_KEY

PROJECT = "mcpfleet"
# Set by the offline plan only, as "<index>/<count>": that process registers the McpServer components
# of every count-th server from index on (everything else as usual), so the per-server work can run in
# parallel processes. `pulumi up` never sets it and registers every server.
PLAN_SHARD_KEY = "planShard"
GRAFANA_ADMIN_PASSWORD_KEY = "grafanaAdminPassword"
# PEM public key of the environment's token issuer (stacks: gateway.auth), which the gateway verifies
# tokens with: `pulumi config set mcpfleet:gatewayJwtPublicKey -- "$(cat issuer-public.pem)"`.
GATEWAY_JWT_PUBLIC_KEY = "gatewayJwtPublicKey"
# The MCP router's session keys, one base64 32-byte key a line, the first sealing new sessions:
# `pulumi config set --secret routerSessionKeys -- "$(openssl rand -base64 32)"`.
ROUTER_SESSION_KEYS = "routerSessionKeys"
# The router's image by digest, as the release workflow reports it; the deploy workflow sets it:
# `pulumi config set routerImage <router.imageRepository>@sha256:<digest>`.
ROUTER_IMAGE = "routerImage"


def load_fleet() -> FleetModel:
    """The fleet of the running stack, from its Pulumi config and the catalog."""
    env = check_env_name(pulumi.get_stack())
    stack_file = f"stacks/Pulumi.{env}.yaml"
    config = pulumi.Config(PROJECT)
    # `pulumi up` (not a preview or the offline plan) also refuses the shipped example values.
    deploying = None if pulumi.runtime.is_dry_run() else env
    settings = environment_from_config(
        config.require_object(CONFIG_KEY.split(":", 1)[1]), stack_file, deploying
    )
    catalog = load_catalog(Path(config.get("catalogDir") or "catalog"))
    return resolve_fleet(catalog, env, settings, stack_file)


def fleet_program() -> None:
    try:
        fleet = load_fleet()
    except InvalidInput as exc:
        # RunError ends the program with the message alone: bad input is not a crash.
        raise pulumi.RunError(f"invalid input:\n{exc}") from None

    config = pulumi.Config(PROJECT)
    # Missing, `pulumi up` stops and names the command: pulumi config set --secret grafanaAdminPassword
    grafana_password = config.require_secret(GRAFANA_ADMIN_PASSWORD_KEY)
    jwt_public_key = config.require(GATEWAY_JWT_PUBLIC_KEY)
    router_session_keys = config.require_secret(ROUTER_SESSION_KEYS)
    router_image = _router_image(config, fleet, f"stacks/Pulumi.{fleet.environment}.yaml")
    cluster = fleet.settings.cluster
    if cluster.provider == "eks":
        try:
            check_store_keys(fleet.servers)
        except ValueError as exc:
            raise pulumi.RunError(f"invalid input:\n{exc}") from None
        eks = EksCluster(f"{PROJECT}-{fleet.environment}", cluster)
        kubernetes: pulumi.ProviderResource = eks.provider
        platform = ServerPlatform(
            fleet.environment,
            grafana_password,
            jwt_public_key,
            router_session_keys,
            router_image,
            cluster=eks,
        )
        pulumi.export("clusterName", eks.cluster_name)
        pulumi.export("kubeconfig", eks.kubeconfig)
    else:
        kubernetes = existing_cluster_provider(f"{PROJECT}-{fleet.environment}", cluster)
        local_key = LOCAL_SECRETS_CONFIG_KEY.removeprefix(f"{PROJECT}:")
        _check_local_values(config.get_object(local_key), fleet)
        # `pulumi config set --secret --path 'mcpfleet:secrets.<store key>'`: kept secret from here on.
        values = config.get_secret_object(local_key)
        platform = ServerPlatform(
            fleet.environment,
            grafana_password,
            jwt_public_key,
            router_session_keys,
            router_image,
            local_secret_values=values,
        )

    workloads = fleet.servers
    shard = config.get(PLAN_SHARD_KEY)
    if shard:
        index, count = (int(part) for part in shard.split("/"))
        workloads = fleet.servers[index::count]
    Fleet(PROJECT, fleet, kubernetes, platform, workloads)
    pulumi.export("environment", fleet.environment)
    pulumi.export("servers", [server.name for server in fleet.servers])
    # The one MCP endpoint over every server here, and the token audience it takes (`pulumi stack output`).
    pulumi.export("fleetEndpoint", f"https://{fleet.settings.domain}{FLEET_PATH}")
    pulumi.export("fleetAudience", fleet.endpoint_audience)


def _check_local_values(given: object, fleet: FleetModel) -> None:
    """Every local secret value the servers read is set, or the run stops before creating anything, naming
    each missing one and its command at once. Only the keys are looked at, never a value."""
    keys = set(given) if isinstance(given, dict) else set()
    missing = [
        missing_value_message(server, ref, fleet.environment)
        for server in fleet.servers
        for ref in server.spec.secrets
        if ref.key not in keys
    ]
    if missing:
        raise pulumi.RunError("invalid input:\n" + "\n".join(missing))


def _router_image(config: pulumi.Config, fleet: FleetModel, stack_file: str) -> str | None:
    """The router's image pinned by digest (`routerImage`), checked against the stack's repository.

    Unset, a preview (and the offline plan, which is one) shows the release tag and says the digest comes
    at deploy; `pulumi up` refuses to deploy an image no digest pins, and names the command that pins it.
    """
    image = config.get(ROUTER_IMAGE)
    if image is None:
        if pulumi.runtime.is_dry_run():
            return None
        raise pulumi.RunError(
            f"invalid input:\n{stack_file}: config.{PROJECT}:{ROUTER_IMAGE}: not set; the MCP router runs an"
            " image pinned by digest, the one .github/workflows/release-router.yml reports:"
            f" pulumi config set {ROUTER_IMAGE} {fleet.settings.router.image_repository}@sha256:<digest>"
        )
    problem = router_image_problem(image, fleet.settings)
    if problem is not None:
        raise pulumi.RunError(f"invalid input:\n{stack_file}: config.{PROJECT}:{ROUTER_IMAGE}: {problem}")
    return image
