"""The MCP router's Kubernetes objects (docs/router.md): a hardened Deployment in the gateway's namespace,
reached only by HAProxy (and the scraper), reaching only the servers. Pure builders, no Pulumi.

Its configuration, router.json (and, for a fleet too large for one ConfigMap, the server files it names),
comes from `components.gateway.router_config`; its image from `images/router/Dockerfile`, built and pushed
by `.github/workflows/release-router.yml`.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from components.manifests import K8sObject
from components.manifests.gateway import (
    AMBIENT_PROBE_SOURCE,
    CONFIG_HASH_ANNOTATION,
    HBONE_PORT,
    JWT_CONFIG_MAP_NAME,
    JWT_KEY_FILE,
    ROUTER_ENDPOINTS_SERVICE_NAME,
    ROUTER_HEALTH_PATH,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    config_hash,
    config_map,
)
from components.manifests.labels import (
    GATEWAY_POD_LABELS,
    GATEWAY_SERVICE_ACCOUNT,
    PART_OF,
    PROMETHEUS_POD_LABELS,
    PROMETHEUS_SERVICE_ACCOUNT,
    ROUTER_NAME,
    ROUTER_POD_LABELS,
    ROUTER_SERVICE_ACCOUNT,
    label_value,
)
from components.manifests.mesh import principal
from components.manifests.network import NAMESPACE_NAME_LABEL
from components.manifests.workload import (
    HOST_KEY,
    ZONE_KEY,
    cpu_autoscaler,
    hardened_container_context,
    hardened_pod_context,
    one_at_a_time_budget,
)
from mcpfleet.fleet import Fleet, FleetServer
from mcpfleet.stacks.models import Environment

# The release the repository's router is: the image tag the release workflow pushes besides the digest.
ROUTER_RELEASE = importlib.metadata.version("mcpfleet")
# images/router/Dockerfile creates this user and runs as it.
ROUTER_UID = 10001
# Until `routerImage` names the digest to run, the pod template says where it comes from (an offline plan
# or a preview: `pulumi up` refuses to run without it, see components/program.py). The policy review
# reports such an image as unpinned until deploy rather than as pinned, and never passes it silently.
DIGEST_AT_DEPLOY_ANNOTATION = "mcpfleet.io/image-digest"
DIGEST_AT_DEPLOY = (
    "supplied at deploy by the release workflow (.github/workflows/release-router.yml):"
    " pulumi config set routerImage <repository>@sha256:<digest>"
)

CONFIG_MAP_NAME = f"{ROUTER_NAME}-config"
CONFIG_KEY = "router.json"
# A server file (`router-servers-NN.json`) goes into its own ConfigMap, `mcp-router-config-servers-NN`.
SERVER_FILE = re.compile(r"router-(servers-[a-z0-9]+(?:-[a-z0-9]+)*)\.json")
RouterFiles = Mapping[str, str]
"""The router's configuration directory: router.json, and the server files it names (file name -> text)."""
SESSION_KEYS_SECRET_NAME = f"{ROUTER_NAME}-session-keys"
SESSION_KEYS_KEY = "keys"
CONFIG_DIR = "/etc/mcp-router/config"
JWT_DIR = "/etc/mcp-router/jwt"
SESSION_KEYS_DIR = "/etc/mcp-router/session"
METRICS_SERVICE_PORT_NAME = "http-metrics"
# The container port serving /metrics and /healthz (ROUTER_METRICS_PORT): the router's PodMonitor, its
# probes and its Service refer to it by this name.
METRICS_PORT_NAME = "metrics"

TARGET_CPU_UTILIZATION = 70
TMP_SIZE = "16Mi"
# Long enough for every HAProxy replica to stop sending new requests (a failed check or a DNS refresh,
# each within 15 s) before the router stops accepting; then SIGTERM lets open requests finish.
PRE_STOP_SLEEP_SECONDS = 15
TERMINATION_GRACE_SECONDS = 60
# One event loop: one core at most; memory for the parsed messages in flight and the session cache.
CPU_REQUEST, CPU_LIMIT = "250m", "1"
MEMORY_REQUEST_MIB, MEMORY_LIMIT_MIB = 256, 512
# Plus the router's own listing of every server (the fleet endpoint and the tool pins, docs/router.md,
# "Listings"): scripts/bench_listings.py measured +177 MiB resident for 1,000 servers of 16 tools each,
# every connection held (the cache ~3.5 KiB a tool, a held connection ~110 KiB a server). Requested at
# about that, and twice that allowed: 1,000 servers ask 506Mi and may use 1012Mi.
LISTING_REQUEST_MIB_PER_SERVER = 0.25
LISTING_LIMIT_MIB_PER_SERVER = 0.5


def memory(servers: int) -> tuple[str, str]:
    """The router's memory request and limit for a fleet of this many servers."""
    request = MEMORY_REQUEST_MIB + math.ceil(servers * LISTING_REQUEST_MIB_PER_SERVER)
    limit = MEMORY_LIMIT_MIB + math.ceil(servers * LISTING_LIMIT_MIB_PER_SERVER)
    return f"{request}Mi", f"{limit}Mi"


def release_image(settings: Environment) -> str:
    """The release tag of the repository's router: what an offline plan shows until a digest is set."""
    return f"{settings.router.image_repository}:{ROUTER_RELEASE}"


def selector() -> dict[str, str]:
    """Stable: a Deployment cannot change its selector. Contains ROUTER_POD_LABELS, which servers admit."""
    return {**ROUTER_POD_LABELS, "app.kubernetes.io/instance": ROUTER_NAME}


def router_labels() -> dict[str, str]:
    return {
        **selector(),
        "app.kubernetes.io/component": "router",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": label_value(ROUTER_RELEASE),
    }


def _metadata(settings: Environment, name: str = ROUTER_NAME) -> K8sObject:
    return {"name": name, "namespace": settings.gateway_namespace, "labels": router_labels()}


def service_account(settings: Environment) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(settings, ROUTER_SERVICE_ACCOUNT),
        # The router never calls the Kubernetes API: it finds server pods through DNS.
        "automountServiceAccountToken": False,
    }


def config_files(config: str | RouterFiles) -> dict[str, str]:
    """config as files: a lone router.json, or router.json and its server files."""
    files = {CONFIG_KEY: config} if isinstance(config, str) else dict(config)
    if CONFIG_KEY not in files:
        raise ValueError(f"the router's configuration has no {CONFIG_KEY}")
    strays = sorted(name for name in files if name != CONFIG_KEY and not SERVER_FILE.fullmatch(name))
    if strays:
        raise ValueError(
            f"the router reads {CONFIG_KEY} and router-servers-*.json files, not {', '.join(strays)}"
        )
    return files


def config_map_name(file: str) -> str:
    """The ConfigMap holding one file of the router's configuration."""
    if file == CONFIG_KEY:
        return CONFIG_MAP_NAME
    match = SERVER_FILE.fullmatch(file)
    if match is None:
        raise ValueError(f"{file} is not a file of the router's configuration")
    return f"{CONFIG_MAP_NAME}-{match.group(1)}"


def router_config_maps(settings: Environment, config: str | RouterFiles) -> dict[str, K8sObject]:
    """One ConfigMap per file, by Pulumi resource name: router.json's as before, each server file's beside
    it (the builder refuses one over the 1 MiB a ConfigMap holds)."""
    maps = {}
    for file, text in sorted(config_files(config).items(), key=lambda item: item[0] != CONFIG_KEY):
        name = config_map_name(file)
        maps[name.replace(ROUTER_NAME, "router", 1)] = config_map(settings, name, {file: text})
    return maps


def session_keys_secret(settings: Environment, keys: Any) -> K8sObject:
    """keys: a Pulumi secret (`pulumi config set --secret routerSessionKeys`), one base64 32-byte key a
    line, the first sealing new sessions; this builder only places it, never reads it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(settings, SESSION_KEYS_SECRET_NAME),
        "type": "Opaque",
        "stringData": {SESSION_KEYS_KEY: keys},
    }


def _http_probe(period: int, failures: int) -> K8sObject:
    return {
        "httpGet": {"path": ROUTER_HEALTH_PATH, "port": METRICS_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(image: str, servers: int) -> K8sObject:
    memory_request, memory_limit = memory(servers)
    return {
        "name": "router",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "mcpfleet.router"],
        "args": [
            *("--config", f"{CONFIG_DIR}/{CONFIG_KEY}"),
            *("--jwt-key", f"{JWT_DIR}/{JWT_KEY_FILE}"),
            *("--session-keys", f"{SESSION_KEYS_DIR}/{SESSION_KEYS_KEY}"),
            *("--host", "0.0.0.0"),
            *("--port", str(ROUTER_PORT)),
            *("--metrics-port", str(ROUTER_METRICS_PORT)),
        ],
        "ports": [
            {"name": "mcp", "containerPort": ROUTER_PORT, "protocol": "TCP"},
            {"name": METRICS_PORT_NAME, "containerPort": ROUTER_METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": CPU_REQUEST, "memory": memory_request},
            "limits": {"cpu": CPU_LIMIT, "memory": memory_limit},
        },
        "livenessProbe": _http_probe(10, 3),
        "readinessProbe": _http_probe(5, 2),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": hardened_container_context(ROUTER_UID),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "jwt", "mountPath": JWT_DIR, "readOnly": True},
            {"name": "session-keys", "mountPath": SESSION_KEYS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _config_volume(files: RouterFiles) -> K8sObject:
    """router.json's ConfigMap; with server files, every file's ConfigMap in one directory (a projected
    volume): the router reads router.json and the files it names beside it."""
    if len(files) == 1:
        return {"name": "config", "configMap": {"name": CONFIG_MAP_NAME}}
    names = [config_map_name(file) for file in sorted(files, key=lambda file: (file != CONFIG_KEY, file))]
    return {"name": "config", "projected": {"sources": [{"configMap": {"name": name}} for name in names]}}


def _volumes(files: RouterFiles) -> list[K8sObject]:
    return [
        _config_volume(files),
        # The gateway's copy of the issuer's public key: one key, read by both.
        {
            "name": "jwt",
            "configMap": {
                "name": JWT_CONFIG_MAP_NAME,
                "items": [{"key": JWT_KEY_FILE, "path": JWT_KEY_FILE}],
            },
        },
        {
            "name": "session-keys",
            "secret": {
                "secretName": SESSION_KEYS_SECRET_NAME,
                "items": [{"key": SESSION_KEYS_KEY, "path": SESSION_KEYS_KEY}],
                # Owner root, group fsGroup (the router's): readable by the router and nobody else.
                "defaultMode": 0o440,
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
    ]


def _spread(settings: Environment) -> list[K8sObject]:
    zone_rule = "DoNotSchedule" if settings.strictness == "strict" else "ScheduleAnyway"
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": rule,
            "labelSelector": {"matchLabels": selector()},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key, rule in ((ZONE_KEY, zone_rule), (HOST_KEY, "ScheduleAnyway"))
    ]


def deployment(
    settings: Environment, config: str | RouterFiles, image: str, digest_at_deploy: bool, servers: int
) -> K8sObject:
    """config: router.json, or it and its server files. digest_at_deploy: image is the release tag, its
    digest to come from `routerImage` at deploy. servers: how many the router lists (its memory grows with
    them)."""
    files = config_files(config)
    # Over every file: the router reads them once, at start, so any change rolls the pods.
    annotations = {CONFIG_HASH_ANNOTATION: config_hash(files)}
    if digest_at_deploy:
        annotations[DIGEST_AT_DEPLOY_ANNOTATION] = DIGEST_AT_DEPLOY
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(settings),
        "spec": {
            # The autoscaler owns the count afterwards (the component ignores later changes to it).
            "replicas": settings.router.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector()},
            # Surge first, never drop below the running count. Replicas hold no session state: a
            # session sealed by one is opened by any other.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": router_labels(), "annotations": annotations},
                "spec": {
                    "serviceAccountName": ROUTER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": hardened_pod_context(ROUTER_UID),
                    "containers": [_container(image, servers)],
                    "volumes": _volumes(files),
                    "topologySpreadConstraints": _spread(settings),
                },
            },
        },
    }


def service(settings: Environment) -> K8sObject:
    """Cluster-internal: the router's ports by name (its metrics for the scraper)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(),
            "ports": [
                {
                    "name": "http-mcp",
                    "port": ROUTER_PORT,
                    "targetPort": "mcp",
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
                {
                    "name": METRICS_SERVICE_PORT_NAME,
                    "port": ROUTER_METRICS_PORT,
                    "targetPort": METRICS_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
            ],
        },
    }


def endpoints_service(settings: Environment) -> K8sObject:
    """Headless: DNS answers with every ready router pod, which HAProxy balances and health-checks itself
    (through a ClusterIP, one connection would stick to one pod for its life)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings, ROUTER_ENDPOINTS_SERVICE_NAME),
        "spec": {
            "clusterIP": "None",
            "selector": selector(),
            "ports": [
                {
                    "name": "http-mcp",
                    "port": ROUTER_PORT,
                    "targetPort": "mcp",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def autoscaler(settings: Environment) -> K8sObject:
    scaling = settings.router
    return cpu_autoscaler(
        _metadata(settings), ROUTER_NAME, scaling.replicas, scaling.max_replicas, TARGET_CPU_UTILIZATION
    )


def disruption_budget(settings: Environment) -> K8sObject | None:
    return one_at_a_time_budget(_metadata(settings), selector(), settings.router.replicas)


def _tcp(*ports: int) -> list[K8sObject]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def server_egress(servers: tuple[FleetServer, ...]) -> list[K8sObject]:
    """One rule per server namespace: its servers' pods, on their ports (and the mesh tunnel's)."""
    by_namespace: dict[str, list[FleetServer]] = defaultdict(list)
    for server in servers:
        by_namespace[server.namespace].append(server)
    rules = []
    for ns, members in sorted(by_namespace.items()):
        names = sorted(s.name for s in members)
        ports = sorted({s.spec.transport.port for s in members} | {HBONE_PORT})
        rules.append(
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}},
                        "podSelector": {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/name", "operator": "In", "values": names}
                            ]
                        },
                    }
                ],
                "ports": _tcp(*ports),
            }
        )
    return rules


def network_policy(fleet: Fleet) -> K8sObject:
    """In: HAProxy's pods (MCP and health checks, the fleet endpoint /mcp included), Prometheus (metrics)
    and kubelet probes. Out: DNS and the servers' pods, nothing else: the router's own listings of every
    server (for /mcp and the tool pins) go where forwarded messages go, the server's pods on its port."""
    settings = fleet.settings
    prometheus = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.monitoring_namespace}},
        "podSelector": {"matchLabels": dict(PROMETHEUS_POD_LABELS)},
    }
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(settings),
        "spec": {
            "podSelector": {"matchLabels": selector()},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                # HAProxy runs in this namespace. Under the ambient mesh its connections arrive as
                # tunnels on HBONE_PORT; the application ports stay listed for a cluster without it.
                {
                    "from": [{"podSelector": {"matchLabels": dict(GATEWAY_POD_LABELS)}}],
                    "ports": _tcp(ROUTER_PORT, ROUTER_METRICS_PORT, HBONE_PORT),
                },
                {"from": [prometheus], "ports": _tcp(ROUTER_METRICS_PORT, HBONE_PORT)},
                {"from": [{"ipBlock": {"cidr": AMBIENT_PROBE_SOURCE}}], "ports": _tcp(ROUTER_METRICS_PORT)},
            ],
            "egress": [dns, *server_egress(fleet.servers)],
        },
    }


def authorization_policy(settings: Environment) -> K8sObject:
    """ALLOW HAProxy on both ports and Prometheus on the metrics port; with an ALLOW policy in place,
    ztunnel denies every other caller: nothing in the mesh reaches the router around the gateway."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": _metadata(settings),
        "spec": {
            "selector": {"matchLabels": selector()},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [
                        {
                            "source": {
                                "principals": [principal(settings.gateway_namespace, GATEWAY_SERVICE_ACCOUNT)]
                            }
                        }
                    ],
                    "to": [{"operation": {"ports": [str(ROUTER_PORT), str(ROUTER_METRICS_PORT)]}}],
                },
                {
                    "from": [
                        {
                            "source": {
                                "principals": [
                                    principal(settings.monitoring_namespace, PROMETHEUS_SERVICE_ACCOUNT)
                                ]
                            }
                        }
                    ],
                    "to": [{"operation": {"ports": [str(ROUTER_METRICS_PORT)]}}],
                },
            ],
        },
    }


def router_objects(
    fleet: Fleet, config: str | RouterFiles, session_keys: Any, image: str | None
) -> dict[str, K8sObject]:
    """The router's objects by Pulumi resource name.

    config: router.json, or the files `render_router_files` gives (router.json and its server files).
    image: the pinned image (`routerImage`), or None for the release tag with its digest to come at
    deploy (an offline plan). session_keys: the Pulumi secret holding them."""
    settings = fleet.settings
    objects: dict[str, K8sObject] = {
        "router-service-account": service_account(settings),
        **router_config_maps(settings, config),
        "router-session-keys": session_keys_secret(settings, session_keys),
        "router-deployment": deployment(
            settings,
            config,
            image or release_image(settings),
            digest_at_deploy=image is None,
            servers=len(fleet.servers),
        ),
        "router-service": service(settings),
        "router-endpoints-service": endpoints_service(settings),
        "router-autoscaler": autoscaler(settings),
        "router-network-policy": network_policy(fleet),
        "router-authorization-policy": authorization_policy(settings),
    }
    budget = disruption_budget(settings)
    if budget is not None:
        objects["router-disruption-budget"] = budget
    return objects
