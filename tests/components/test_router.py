"""The MCP router's place in the program: router.json rendered from the fleet (read back by the router's own
loader), its hardened Deployment and the objects around it, the component, and how its image is pinned."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import kubernetes_validate
import pulumi
import pytest
import yaml

from components import program
from components.gateway.config import public_path, render_gateway_config
from components.gateway.router import TYPE_TOKEN, Router
from components.gateway.router_config import access_rules, render_router_config
from components.manifests import K8sObject
from components.manifests.gateway import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_MAP_LIMIT_BYTES,
    JWT_CONFIG_MAP_NAME,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    config_hash,
    config_map_size,
    endpoints_host,
    router_endpoints_host,
)
from components.manifests.labels import GATEWAY_POD_LABELS, PROMETHEUS_POD_LABELS, ROUTER_POD_LABELS
from components.manifests.router import (
    CONFIG_KEY,
    DIGEST_AT_DEPLOY_ANNOTATION,
    ROUTER_RELEASE,
    ROUTER_UID,
    SESSION_KEYS_SECRET_NAME,
    release_image,
    router_objects,
)
from mcpfleet.catalog.loader import Catalog, CatalogEntry
from mcpfleet.catalog.models import Server
from mcpfleet.errors import InvalidInput
from mcpfleet.fleet import Fleet, resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.engine import run_program
from mcpfleet.router.config import parse_config
from mcpfleet.router.strictjson import loads as strict_loads
from mcpfleet.stacks.loader import load_stack_config
from policies.rules._images import DIGEST_AT_DEPLOY_ANNOTATION as POLICY_ANNOTATION
from tests.components.edge import BETA_LIMITS, ENTRIES, REPO, edge_fleet, with_router
from tests.conftest import minimal_server

KUBERNETES_VERSION = "1.33.0"
PINNED = "ghcr.io/example/mcpfleet-router@sha256:" + "ab" * 32
KEYS = "stand-in for a Pulumi secret"


def objects_of(fleet: Fleet, image: str | None = None) -> dict[str, K8sObject]:
    return router_objects(fleet, render_router_config(fleet), KEYS, image)


def one(objects: dict[str, K8sObject], kind: str, name: str | None = None) -> K8sObject:
    (found,) = [o for o in objects.values() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def pod_of(objects: dict[str, K8sObject]) -> K8sObject:
    pod: K8sObject = one(objects, "Deployment")["spec"]["template"]["spec"]
    return pod


# router.json


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_router_json_is_what_the_router_itself_loads(env: str) -> None:
    fleet = edge_fleet(env)
    text = render_router_config(fleet)
    # The router's own strict reader (duplicate keys refused) and its own model.
    config = parse_config(strict_loads(text.encode()))
    auth = fleet.settings.gateway.auth
    assert (config.environment, config.auth.issuer, config.auth.algorithm) == (
        env,
        auth.issuer,
        auth.algorithm,
    )
    assert config.auth.audience_prefix == f"https://{fleet.settings.domain}/servers/"
    assert config.session_max_age_seconds == 24 * 60 * 60
    assert sorted(config.servers) == sorted(s.name for s in fleet.servers)
    for server in fleet.servers:
        entry = config.servers[server.name]
        # The path HAProxy routes is the path the router matches.
        assert entry.public_path == public_path(server)
        assert (
            entry.upstream.host == endpoints_host(server)
            and entry.upstream.port == server.spec.transport.port
        )
        assert entry.upstream.path == server.spec.transport.path
        assert entry.stateless == server.spec.stateless
        assert entry.transport == ("sse" if server.spec.transport.type == "sse" else "streamable-http")


def test_access_rules_keep_declared_tools_only() -> None:
    alpha = next(s for s in edge_fleet("prod").servers if s.name == "alpha")
    # `undeclared` is no tool of alpha's: it stays closed, and its rule (naming nothing else) goes.
    assert access_rules(alpha) == [
        {"tools": ["add.note", "echo"], "roles": ["support"]},
        {"tools": ["*"], "roles": ["engineer"]},
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_router_json_is_byte_stable_one_server_a_line(env: str) -> None:
    fleet = edge_fleet(env)
    text = render_router_config(fleet)
    assert render_router_config(dataclasses.replace(fleet, servers=tuple(reversed(fleet.servers)))) == text
    lines = text.splitlines()
    for server in fleet.servers:
        [line] = [line for line in lines if line.startswith(f'"{server.name}":')]
        assert json.loads("{" + line.rstrip(",") + "}")[server.name]["publicPath"] == public_path(server)
    assert text.isascii() and text.endswith("}\n")


def test_fixed_upstreams_replace_cluster_dns_on_one_machine() -> None:
    fleet = edge_fleet("local")
    config = parse_config(json.loads(render_router_config(fleet, upstreams={"alpha": ["127.0.0.1:9001"]})))
    assert config.servers["alpha"].upstream.addresses == ["127.0.0.1:9001"]
    assert config.servers["alpha"].upstream.host is None
    assert config.servers["beta"].upstream.host == endpoints_host(fleet.servers[1])


# What each stack file says of unpinned tools: served while tools change, withheld where it matters.
UNPINNED_TOOLS = {"local": "serve", "dev": "serve", "staging": "withhold", "prod": "withhold"}
PIN = "0123456789abcdef" * 4


def pinned_fleet(env: str) -> Fleet:
    """alpha with two of its three tools pinned, beta with none: the edge fleet otherwise."""
    fleet = edge_fleet(env)
    entries = [
        CatalogEntry(
            Server.model_validate(
                minimal_server(
                    "alpha",
                    environments={e: {} for e in ENVIRONMENTS},
                    tools=[
                        {"name": "echo", "sha256": PIN},
                        {"name": "add.note", "sha256": "f" * 64},
                        {"name": "raw"},
                    ],
                    access=[{"roles": ["support"], "tools": ["echo"]}],
                )
            ),
            "alpha.yaml",
        ),
        CatalogEntry(
            Server.model_validate(minimal_server("beta", environments={e: {} for e in ENVIRONMENTS})),
            "beta.yaml",
        ),
    ]
    return resolve_fleet(Catalog(Path("catalog"), tuple(entries)), fleet.environment, fleet.settings, "stack")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_router_json_opens_the_fleet_endpoint_over_every_server_with_its_own_audience(env: str) -> None:
    fleet = edge_fleet(env)
    config = parse_config(strict_loads(render_router_config(fleet).encode()))
    assert config.fleet is not None
    assert config.fleet.public_path == "/mcp"
    assert config.fleet.audience == f"https://{fleet.settings.domain}/mcp" == fleet.endpoint_audience
    # No server's audience: a per-server token never opens /mcp, nor the fleet's a server.
    assert not config.fleet.audience.startswith(config.auth.audience_prefix)
    assert (config.fleet.refresh_seconds, config.fleet.page_size, config.fleet.max_tools_per_server) == (
        300,
        500,
        1000,
    )
    # Every server enabled here is behind it: router.json has no way to leave one out.
    assert sorted(config.servers) == sorted(s.name for s in fleet.servers)
    assert config.unpinned_tools == UNPINNED_TOOLS[env] == fleet.settings.router.unpinned_tools


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_router_json_gives_the_fleet_endpoint_the_gateways_rate_limits(env: str) -> None:
    # On /mcp the body names the server, so the router counts there what HAProxy counts on each route:
    # beta's own limits, the environment's for the others.
    fleet = edge_fleet(env)
    config = parse_config(strict_loads(render_router_config(fleet).encode()))
    assert config.fleet is not None and config.fleet.rate_limits is not None
    defaults = fleet.settings.gateway.rate_limits
    assert (
        config.fleet.rate_limits.per_caller_per_minute,
        config.fleet.rate_limits.per_server_per_minute,
    ) == (
        defaults.per_caller_per_minute,
        defaults.per_server_per_minute,
    )
    beta = config.servers["beta"].rate_limits
    assert beta is not None
    assert (beta.per_caller_per_minute, beta.per_server_per_minute) == (
        BETA_LIMITS.per_caller_per_minute,
        BETA_LIMITS.per_server_per_minute,
    )
    assert all(config.servers[name].rate_limits is None for name in config.servers if name != "beta")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_router_json_pins_each_declared_tool_with_its_catalog_hash(env: str) -> None:
    fleet = pinned_fleet(env)
    text = render_router_config(fleet)
    config = parse_config(strict_loads(text.encode()))
    # The unpinned tool is declared but has no pin: the router serves it only where unpinnedTools says so.
    assert config.servers["alpha"].tools == ["add.note", "echo", "raw"]
    assert config.servers["alpha"].tool_pins == {"add.note": "f" * 64, "echo": PIN}
    assert config.servers["beta"].tool_pins == {}
    # Sorted by tool, on the server's own line: a changed pin is a one-line diff naming its server.
    [line] = [line for line in text.splitlines() if line.startswith('"alpha":')]
    assert f'"toolPins":{{"add.note":"{"f" * 64}","echo":"{PIN}"}}' in line


def test_the_unpinned_tools_setting_is_the_stacks_and_refuses_other_words() -> None:
    fleet = with_router(edge_fleet("prod"), unpinned_tools="serve")
    assert json.loads(render_router_config(fleet))["unpinnedTools"] == "serve"
    _, settings = load_stack_config(REPO / "stacks", "prod")
    with pytest.raises(ValueError, match=r"unpinned_tools|unpinnedTools"):
        type(settings.router).model_validate(
            {**settings.router.model_dump(by_alias=True), "unpinnedTools": "allow"}
        )
    # Left out of a stack file, unpinned tools are withheld: the safe side.
    assert type(settings.router).model_validate({}).unpinned_tools == "withhold"


def thousand_servers() -> Fleet:
    """1,000 servers in prod, each as large as the test fleet's biggest entry, its tools pinned (as prod's
    review asks)."""
    base = ENTRIES[0]
    entries = tuple(
        CatalogEntry(
            Server.model_validate(
                minimal_server(
                    f"server-{index:04d}",
                    environments=base["environments"],
                    tools=[
                        {**tool, "sha256": hashlib.sha256(f"{index}/{tool['name']}".encode()).hexdigest()}
                        for tool in base["tools"]
                    ],
                    access=base["access"],
                    owner={"team": f"team-{index % 40}", "contact": "team@example.com"},
                )
            ),
            f"server-{index:04d}.yaml",
        )
        for index in range(1000)
    )
    _, settings = load_stack_config(REPO / "stacks", "prod")
    return resolve_fleet(Catalog(Path("catalog"), entries), "prod", settings, "stacks/Pulumi.prod.yaml")


def test_a_thousand_servers_fit_the_configmaps() -> None:
    fleet = thousand_servers()
    router_json = render_router_config(fleet)
    size = config_map_size({CONFIG_KEY: router_json})
    assert size < CONFIG_MAP_LIMIT_BYTES, size
    # The builder itself refuses what does not fit, so the program stops before the API server would.
    assert one(objects_of(fleet), "ConfigMap")["data"] == {CONFIG_KEY: router_json}
    assert config_map_size(render_gateway_config(fleet)) < CONFIG_MAP_LIMIT_BYTES


# The Kubernetes objects


def test_the_routers_memory_grows_with_the_servers_it_lists() -> None:
    # The router lists every server itself (the fleet endpoint, the tool pins): its memory follows the fleet.
    def resources(fleet: Fleet) -> dict[str, dict[str, str]]:
        [container] = pod_of(objects_of(fleet))["containers"]
        return dict(container["resources"])

    small = resources(edge_fleet("prod"))
    assert small["requests"]["memory"] == "257Mi" and small["limits"]["memory"] == "514Mi"
    large = resources(thousand_servers())
    # scripts/bench_listings.py measured +177 MiB for 1,000 servers of 16 tools: requested, and twice allowed.
    assert large["requests"]["memory"] == "506Mi" and large["limits"]["memory"] == "1012Mi"
    assert large["requests"]["cpu"] == small["requests"]["cpu"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_router_pod_is_hardened_like_every_workload(env: str) -> None:
    fleet = edge_fleet(env)
    objects = objects_of(fleet, PINNED)
    pod = pod_of(objects)
    [container] = pod["containers"]
    assert container["image"] == PINNED
    assert pod["serviceAccountName"] == "mcp-router" and pod["automountServiceAccountToken"] is False
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": ROUTER_UID,
        "runAsGroup": ROUTER_UID,
        "fsGroup": ROUTER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["privileged"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"mcp": ROUTER_PORT, "metrics": ROUTER_METRICS_PORT}
    zone, host = pod["topologySpreadConstraints"]
    assert zone["whenUnsatisfiable"] == (
        "DoNotSchedule" if fleet.settings.strictness == "strict" else "ScheduleAnyway"
    )
    assert host["topologyKey"] == "kubernetes.io/hostname"


def test_the_router_runs_with_its_configuration_the_issuers_key_and_its_session_keys() -> None:
    objects = objects_of(edge_fleet("prod"), PINNED)
    pod = pod_of(objects)
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "mcpfleet.router"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert args["--config"] == f"{mounts['config']['mountPath']}/{CONFIG_KEY}"
    assert volumes["config"]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    # One issuer key for the gateway and the router: the gateway's ConfigMap.
    assert args["--jwt-key"] == f"{mounts['jwt']['mountPath']}/issuer.pem"
    assert volumes["jwt"]["configMap"]["name"] == JWT_CONFIG_MAP_NAME
    keys = volumes["session-keys"]["secret"]
    assert args["--session-keys"] == f"{mounts['session-keys']['mountPath']}/{keys['items'][0]['path']}"
    assert keys["secretName"] == SESSION_KEYS_SECRET_NAME == one(objects, "Secret")["metadata"]["name"]
    assert keys["defaultMode"] == 0o440
    assert all(mounts[name]["readOnly"] for name in ("config", "jwt", "session-keys"))
    assert (args["--host"], args["--port"], args["--metrics-port"]) == (
        "0.0.0.0",
        str(ROUTER_PORT),
        str(ROUTER_METRICS_PORT),
    )
    # The Secret holds whatever the program hands it (a Pulumi secret), under the file name the pod reads.
    assert one(objects, "Secret")["stringData"] == {keys["items"][0]["key"]: KEYS}


def test_a_changed_router_json_rolls_the_pods() -> None:
    fleet = edge_fleet("dev")
    annotations = one(objects_of(fleet), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_HASH_ANNOTATION] == config_hash({CONFIG_KEY: render_router_config(fleet)})
    smaller = dataclasses.replace(fleet, servers=fleet.servers[1:])
    changed = one(objects_of(smaller), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert changed[CONFIG_HASH_ANNOTATION] != annotations[CONFIG_HASH_ANNOTATION]


def test_without_a_pinned_image_the_release_tag_says_where_its_digest_comes_from() -> None:
    fleet = edge_fleet("prod")
    unpinned = one(objects_of(fleet), "Deployment")["spec"]["template"]
    assert unpinned["spec"]["containers"][0]["image"] == release_image(fleet.settings)
    assert release_image(fleet.settings) == f"{fleet.settings.router.image_repository}:{ROUTER_RELEASE}"
    assert "@" not in release_image(fleet.settings)
    assert "pulumi config set routerImage" in unpinned["metadata"]["annotations"][DIGEST_AT_DEPLOY_ANNOTATION]
    # The policy review reads the same annotation.
    assert POLICY_ANNOTATION == DIGEST_AT_DEPLOY_ANNOTATION
    pinned = one(objects_of(fleet, PINNED), "Deployment")["spec"]["template"]
    assert DIGEST_AT_DEPLOY_ANNOTATION not in pinned["metadata"]["annotations"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_replicas_autoscaler_and_disruption_budget_follow_the_stack(env: str) -> None:
    fleet = edge_fleet(env)
    objects = objects_of(fleet)
    router = fleet.settings.router
    assert one(objects, "Deployment")["spec"]["replicas"] == router.replicas
    assert one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    scaler = one(objects, "HorizontalPodAutoscaler")["spec"]
    assert (scaler["minReplicas"], scaler["maxReplicas"]) == (router.replicas, router.max_replicas)
    assert scaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mcp-router"}
    budgets = [o for o in objects.values() if o["kind"] == "PodDisruptionBudget"]
    assert len(budgets) == (1 if router.replicas > 1 else 0)
    assert len(budgets) == 0 or budgets[0]["spec"]["maxUnavailable"] == 1
    if env == "prod":
        assert router.replicas >= 2
    # HAProxy keeps a slot for every replica the autoscaler may add.
    assert f"server-template router 1-{router.max_replicas} " in render_gateway_config(fleet)["haproxy.cfg"]


def test_services_name_the_ports_and_the_headless_one_is_what_haproxy_resolves() -> None:
    fleet = edge_fleet("staging")
    objects = objects_of(fleet)
    services = {o["metadata"]["name"]: o for o in objects.values() if o["kind"] == "Service"}
    headless = services[router_endpoints_host(fleet.settings).split(".")[0]]
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["port"] for p in headless["spec"]["ports"]] == [ROUTER_PORT]
    assert {p["port"] for p in services["mcp-router"]["spec"]["ports"]} == {ROUTER_PORT, ROUTER_METRICS_PORT}
    for service in services.values():
        assert service["spec"]["selector"].items() >= ROUTER_POD_LABELS.items()
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_network_policy_admits_haproxy_and_the_scraper_and_reaches_only_the_servers() -> None:
    fleet = edge_fleet("prod")
    spec = one(objects_of(fleet), "NetworkPolicy")["spec"]
    assert spec["podSelector"]["matchLabels"].items() >= ROUTER_POD_LABELS.items()
    haproxy, prometheus, probes = spec["ingress"]
    assert haproxy["from"] == [{"podSelector": {"matchLabels": GATEWAY_POD_LABELS}}]
    assert {p["port"] for p in haproxy["ports"]} == {ROUTER_PORT, ROUTER_METRICS_PORT, 15008}
    [scraper] = prometheus["from"]
    assert scraper["podSelector"]["matchLabels"] == PROMETHEUS_POD_LABELS
    assert {p["port"] for p in prometheus["ports"]} == {ROUTER_METRICS_PORT, 15008}
    assert probes["from"] == [{"ipBlock": {"cidr": "169.254.7.127/32"}}]
    dns, *servers = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    reached = {
        (rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], name, port["port"])
        for rule in servers
        for name in rule["to"][0]["podSelector"]["matchExpressions"][0]["values"]
        for port in rule["ports"]
    }
    # Every server enabled here is behind /mcp, and the router lists each itself (router.json's fleet
    # section): its own connections go where forwarded messages go, to every server's pods on its port.
    assert set(json.loads(render_router_config(fleet))["servers"]) == {s.name for s in fleet.servers}
    for server in fleet.servers:
        assert (server.namespace, server.name, server.spec.transport.port) in reached
        assert (server.namespace, server.name, 15008) in reached
    assert {ns for ns, _, _ in reached} == set(fleet.namespaces)


def test_the_mesh_admits_only_haproxy_and_the_scraper() -> None:
    fleet = edge_fleet("prod")
    policy = one(objects_of(fleet), "AuthorizationPolicy")["spec"]
    assert (
        policy["action"] == "ALLOW" and policy["selector"]["matchLabels"].items() >= ROUTER_POD_LABELS.items()
    )
    admitted = {
        (principal, tuple(rule["to"][0]["operation"]["ports"]))
        for rule in policy["rules"]
        for source in rule["from"]
        for principal in source["source"]["principals"]
    }
    assert admitted == {
        ("cluster.local/ns/mcp-gateway/sa/mcp-gateway", (str(ROUTER_PORT), str(ROUTER_METRICS_PORT))),
        ("cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus", (str(ROUTER_METRICS_PORT),)),
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_objects_are_valid_kubernetes(env: str) -> None:
    objects = objects_of(edge_fleet(env), PINNED)
    built = [o for o in objects.values() if not o["apiVersion"].startswith("security.istio.io/")]
    assert {o["kind"] for o in built} >= {"Deployment", "Service", "NetworkPolicy", "ConfigMap", "Secret"}
    for obj in built:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# The component, and where its image comes from


def test_router_component_registers_its_objects_and_keeps_the_keys_secret() -> None:
    fleet = with_router(edge_fleet("prod"), replicas=2)
    built: dict[str, str] = {}

    def run() -> None:
        keys = pulumi.Output.secret("a-session-key-line")
        built["config"] = Router("router", fleet, keys, PINNED).config

    registrations = run_program(run, project="mcpfleet", stack="prod", config={})
    [component] = [r for r in registrations if r.type == TYPE_TOKEN]
    children = {r.name: r for r in registrations if r.parent == component.urn}
    assert sorted(children) == sorted(objects_of(fleet))
    assert built["config"] == render_router_config(fleet)
    secret = next(r.inputs for r in children.values() if r.inputs.get("kind") == "Secret")
    assert secret["stringData"] == {"keys": "[secret]"}
    assert "a-session-key-line" not in json.dumps([r.inputs for r in registrations])
    deployment = next(r.inputs for r in children.values() if r.inputs.get("kind") == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == PINNED


def router_image(
    values: dict[str, str], fleet: Fleet, dry_run: bool, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    """What the program takes as the router's image, given the stack's config values."""
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: dry_run)
    pulumi.runtime.set_all_config({f"mcpfleet:{key}": value for key, value in values.items()})
    try:
        return program._router_image(pulumi.Config("mcpfleet"), fleet, "stacks/Pulumi.prod.yaml")
    finally:
        pulumi.runtime.set_all_config({})


def test_pulumi_up_refuses_an_unpinned_router_and_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = edge_fleet("prod")
    with pytest.raises(pulumi.RunError) as raised:
        router_image({}, fleet, False, monkeypatch)
    message = str(raised.value)
    assert "stacks/Pulumi.prod.yaml: config.mcpfleet:routerImage: not set" in message
    assert "pulumi config set routerImage ghcr.io/example/mcpfleet-router@sha256:<digest>" in message
    elsewhere = "ghcr.io/attacker/router@sha256:" + "0" * 64
    with pytest.raises(pulumi.RunError, match=re.escape("not of router.imageRepository")):
        router_image({"routerImage": elsewhere}, fleet, False, monkeypatch)
    with pytest.raises(pulumi.RunError, match=re.escape("expected ghcr.io/example/mcpfleet-router@sha256")):
        router_image({"routerImage": "ghcr.io/example/mcpfleet-router:0.1.0"}, fleet, False, monkeypatch)
    assert router_image({"routerImage": PINNED}, fleet, False, monkeypatch) == PINNED


def test_a_preview_shows_the_release_tag_until_the_digest_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert router_image({}, edge_fleet("prod"), True, monkeypatch) is None
    # A preview with the setting shows the pinned image, checked the same way.
    assert router_image({"routerImage": PINNED}, edge_fleet("prod"), True, monkeypatch) == PINNED


def test_a_stack_file_naming_another_repository_or_no_digest_is_refused(stacks_dir: Path) -> None:
    path = stacks_dir / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for value, message in (
        ("ghcr.io/example/mcpfleet-router:0.1.0", "expected ghcr.io/example/mcpfleet-router@sha256:"),
        ("ghcr.io/other/router@sha256:" + "0" * 64, "not of router.imageRepository"),
    ):
        document["config"]["mcpfleet:routerImage"] = value
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        with pytest.raises(InvalidInput) as raised:
            load_stack_config(stacks_dir, "prod")
        assert re.search(r"Pulumi\.prod\.yaml:\d+: config\.mcpfleet:routerImage: ", str(raised.value))
        assert message in str(raised.value)
    document["config"]["mcpfleet:routerImage"] = PINNED
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert load_stack_config(stacks_dir, "prod")[0]["mcpfleet:routerImage"] == PINNED
