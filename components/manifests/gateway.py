"""The gateway's Kubernetes objects: a hardened HAProxy Deployment in its own namespace, before the fleet.

Pure builders, no Pulumi. The HAProxy configuration itself comes from `components.gateway.config`; the
MCP router it forwards to lives in the same namespace (`components.manifests.router`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from components.manifests import K8sObject
from components.manifests.labels import (
    GATEWAY_NAME,
    GATEWAY_POD_LABELS,
    GATEWAY_SERVICE_ACCOUNT,
    PART_OF,
    PROMETHEUS_POD_LABELS,
    ROUTER_NAME,
    ROUTER_POD_LABELS,
    selector_labels,
    server_labels,
)
from components.manifests.namespace import default_deny, namespace
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

# docker.io/library/haproxy, the Docker official image, pinned by the digest of its multi-platform index
# as docker-library/repo-info records it for this very tag: `repos/haproxy/remote/2.6.34.md` at commit
# 0ed0a0ed36758e850c095b6380c2517baff81896 (`haproxy:2.6.34`, an OCI index of 14 platforms, built
# 2026-09-25 with HAPROXY_VERSION=2.6.34; linux/amd64 sha256:70e5dcc1bf41...). Until 2026-12 this named
# the digest of the `2.6` tag's index (27d5ea8c..., 16 platforms, same builds) beside the tag 2.6.34: a
# pull by digest got the same amd64 image, but tag and digest named two indexes. The tag is for people;
# the digest is what the kubelet pulls. The tests run Debian's HAProxy 2.6 on the same configuration.
HAPROXY_VERSION = "2.6.34"
HAPROXY_DIGEST = "sha256:82c023b4f99e2090b14dbe7f04b0590b4e0af608f7c29cedcabf25c34fb066cd"
IMAGE = f"docker.io/library/haproxy:{HAPROXY_VERSION}@{HAPROXY_DIGEST}"
# The image's Dockerfile creates user and group `haproxy` with uid/gid 99 and runs as that user.
HAPROXY_UID = 99

# Ports inside the pod. All above 1024: the non-root process binds them without NET_BIND_SERVICE.
TLS_PORT = 8443  # HAProxy terminates TLS (cert-manager, self-signed)
PLAIN_PORT = 8080  # the NLB terminates TLS (acm) and forwards plain HTTP
METRICS_PORT = 8405  # Prometheus exporter and the probes' /healthz: never on the load balancer
PUBLIC_PORT = 443
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
# Istio ambient: pods talk to each other through ztunnel's HBONE tunnel on this port, so the
# NetworkPolicies must open it next to the application ports.
HBONE_PORT = 15008
# Istio ambient rewrites the source of kubelet probes to this link-local address (istio-cni
# `HostProbeSNATAddress`); a NetworkPolicy that limits ingress must let it reach the probe port.
AMBIENT_PROBE_SOURCE = "169.254.7.127/32"

# The MCP router behind HAProxy (docs/router.md): MCP on one port, /metrics and /healthz on the other.
ROUTER_PORT = 8090
ROUTER_METRICS_PORT = 8091
ROUTER_HEALTH_PATH = "/healthz"
# The router's headless Service, through which HAProxy finds every ready router pod.
ROUTER_ENDPOINTS_SERVICE_NAME = f"{ROUTER_NAME}-endpoints"
# Empty in pods (listen on every address); tests running several gateways on one machine set it.
ADDRESS_ENV = "MCP_GATEWAY_ADDRESS"
# The identity provider's public key, from `pulumi config set mcpfleet:gatewayJwtPublicKey`.
JWT_CONFIG_MAP_NAME = f"{GATEWAY_NAME}-jwt"
JWT_KEY_DIR = "/etc/haproxy/jwt"
JWT_KEY_FILE = "issuer.pem"

CONFIG_MAP_NAME = f"{GATEWAY_NAME}-config"
CONFIG_KEY = "haproxy.cfg"
# The image's CMD reads /usr/local/etc/haproxy/haproxy.cfg.
CONFIG_DIR = "/usr/local/etc/haproxy"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"
CERT_SECRET_NAME = f"{GATEWAY_NAME}-tls"
CERTIFICATE_NAME = f"{GATEWAY_NAME}-tls"
SELF_SIGNED_ISSUER = "selfsigned"
CERT_DIR = "/etc/haproxy/certs"
# cert-manager writes tls.crt and tls.key. HAProxy 2.6 loads a key kept apart from its certificate
# from `<crt path>.key` (`ssl-load-extra-files key`), so the Secret's key is projected under that name:
# no init container has to concatenate a PEM.
CERT_FILE = "tls.crt"
KEY_FILE = f"{CERT_FILE}.key"
METRICS_SERVICE_NAME = f"{GATEWAY_NAME}-metrics"
CONFIG_HASH_ANNOTATION = "mcpfleet.io/config-sha256"
# Kubernetes refuses ConfigMaps whose data exceeds 1 MiB.
CONFIG_MAP_LIMIT_BYTES = 1024 * 1024
GATEWAY_TEAM = "platform"  # the platform team runs the gateway
AMBIENT_LABEL = "istio.io/dataplane-mode"
CLUSTER_DOMAIN = "cluster.local"
ENDPOINTS_SUFFIX = "-gateway"

TARGET_CPU_UTILIZATION = 70
TMP_SIZE = "16Mi"
# After preStop the runtime sends the image's STOPSIGNAL, SIGUSR1: a soft stop. HAProxy stops accepting
# and lets streams finish; `hard-stop-after` in the config ends the wait within this grace period.
TERMINATION_GRACE_SECONDS = 60
# Time for the load balancer to deregister the pod before it stops accepting connections.
PRE_STOP_SLEEP_SECONDS = 10
# One core (the config runs one thread); memory for maxconn connections with their buffers.
CPU_REQUEST, CPU_LIMIT = "250m", "1"
MEMORY_REQUEST, MEMORY_LIMIT = "256Mi", "512Mi"

# AWS Load Balancer Controller annotations (kubernetes-sigs/aws-load-balancer-controller,
# docs/guide/service/annotations.md).
AWS_LB = "service.beta.kubernetes.io/aws-load-balancer-"
NLB_ANNOTATIONS = {
    f"{AWS_LB}type": "external",
    f"{AWS_LB}nlb-target-type": "ip",
    f"{AWS_LB}scheme": "internet-facing",
    # Client IP preservation: IP targets behind TCP and TLS listeners see the NLB's address unless it is
    # on (AWS, "Edit target group attributes for your Network Load Balancer"), and HAProxy rate limits
    # unauthenticated requests by client address and tells the router who called (X-Forwarded-For).
    # Source-IP affinity keeps a client on one replica, whose rate counters (per replica) then see all of
    # its requests; sessions need none (any router replica opens a session id the router sealed).
    f"{AWS_LB}target-group-attributes": (
        "preserve_client_ip.enabled=true,stickiness.enabled=true,stickiness.type=source_ip"
    ),
}
NLB_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def terminates_tls(settings: Environment) -> bool:
    """HAProxy holds the certificate unless the NLB terminates TLS with an ACM certificate."""
    return settings.gateway.tls != "acm"


def serving_port(settings: Environment) -> int:
    return TLS_PORT if terminates_tls(settings) else PLAIN_PORT


def router_endpoints_host(settings: Environment) -> str:
    return f"{ROUTER_ENDPOINTS_SERVICE_NAME}.{settings.gateway_namespace}.svc.{CLUSTER_DOMAIN}"


def endpoints_service_name(server: FleetServer) -> str:
    """The headless Service through which the MCP router resolves every ready pod of server."""
    return f"{server.name}{ENDPOINTS_SUFFIX}"


def endpoints_host(server: FleetServer) -> str:
    return f"{endpoints_service_name(server)}.{server.namespace}.svc.{CLUSTER_DOMAIN}"


GatewayConfig = Mapping[str, str]
"""A configuration directory: file name -> text (haproxy.cfg and the map files it reads; router.json)."""


def config_hash(config: GatewayConfig) -> str:
    """Changes with any file of the configuration, so the pods roll to load it (HAProxy reads it at
    start): the sha256 of each file's name and length-prefixed text, in name order."""
    digest = hashlib.sha256()
    for name in sorted(config):
        data = config[name].encode()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def selector() -> dict[str, str]:
    """Stable: a Deployment cannot change its selector. Holds GATEWAY_POD_LABELS, which the router admits."""
    return {**GATEWAY_POD_LABELS, "app.kubernetes.io/instance": GATEWAY_NAME}


def gateway_labels() -> dict[str, str]:
    return {
        **selector(),
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": HAPROXY_VERSION,
    }


def _metadata(settings: Environment, name: str = GATEWAY_NAME) -> K8sObject:
    return {"name": name, "namespace": settings.gateway_namespace, "labels": gateway_labels()}


def gateway_namespace(settings: Environment) -> K8sObject:
    obj = namespace(settings.gateway_namespace, GATEWAY_TEAM)
    # Ambient enrolment: the gateway reaches the servers over the mesh's mutual TLS (servers are STRICT).
    obj["metadata"]["labels"][AMBIENT_LABEL] = "ambient"
    return obj


def service_account(settings: Environment) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(settings, GATEWAY_SERVICE_ACCOUNT),
        # HAProxy never calls the Kubernetes API: it finds the router's pods through DNS.
        "automountServiceAccountToken": False,
    }


def config_map_size(data: Mapping[str, str]) -> int:
    return sum(len(name.encode()) + len(text.encode()) for name, text in data.items())


def config_map(settings: Environment, name: str, data: Mapping[str, str]) -> K8sObject:
    size = config_map_size(data)
    if size > CONFIG_MAP_LIMIT_BYTES:
        raise ValueError(
            f"the configuration's ConfigMap {name} ({', '.join(data)}) is {size} bytes, over the"
            f" {CONFIG_MAP_LIMIT_BYTES} bytes a ConfigMap may hold"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(settings, name),
        "data": dict(data),
    }


def _http_probe(period: int, failures: int) -> K8sObject:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(settings: Environment) -> K8sObject:
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if terminates_tls(settings):
        mounts.append({"name": "certs", "mountPath": CERT_DIR, "readOnly": True})
    mounts.append({"name": "jwt", "mountPath": JWT_KEY_DIR, "readOnly": True})
    return {
        "name": "haproxy",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # HAProxy itself rather than the image entrypoint script: master-worker (-W), in the foreground (-db).
        "command": ["haproxy"],
        "args": ["-W", "-db", "-f", CONFIG_PATH],
        "ports": [
            {"name": "mcp", "containerPort": serving_port(settings), "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST},
            "limits": {"cpu": CPU_LIMIT, "memory": MEMORY_LIMIT},
        },
        "livenessProbe": _http_probe(10, 3),
        "readinessProbe": _http_probe(5, 2),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": hardened_container_context(HAPROXY_UID),
        "volumeMounts": mounts,
    }


def _volumes(settings: Environment) -> list[K8sObject]:
    volumes: list[K8sObject] = [
        # One directory: haproxy.cfg and the map files it reads beside it.
        {"name": "config", "configMap": {"name": CONFIG_MAP_NAME}},
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
        {
            "name": "jwt",
            "configMap": {
                "name": JWT_CONFIG_MAP_NAME,
                "items": [{"key": JWT_KEY_FILE, "path": JWT_KEY_FILE}],
            },
        },
    ]
    if terminates_tls(settings):
        volumes.append(
            {
                "name": "certs",
                "secret": {
                    "secretName": CERT_SECRET_NAME,
                    "items": [{"key": "tls.crt", "path": CERT_FILE}, {"key": "tls.key", "path": KEY_FILE}],
                    # Owner root, group fsGroup (haproxy): readable by HAProxy and nobody else.
                    "defaultMode": 0o440,
                },
            }
        )
    return volumes


def _spread(settings: Environment) -> list[K8sObject]:
    zone_rule = "DoNotSchedule" if settings.strictness == "strict" else "ScheduleAnyway"
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": rule,
            "labelSelector": {"matchLabels": selector()},
            # Spread each rollout's pods, not old and new together.
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key, rule in ((ZONE_KEY, zone_rule), (HOST_KEY, "ScheduleAnyway"))
    ]


def deployment(settings: Environment, config: GatewayConfig) -> K8sObject:
    """Replicas are interchangeable: no state of their own (rate counters are per replica, sessions live
    in the router's sealed ids), so a Deployment."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(settings),
        "spec": {
            # The autoscaler owns the count afterwards (the component ignores later changes to it).
            "replicas": settings.gateway.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector()},
            # Surge first, never drop below the running count: the load balancer keeps its targets.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": gateway_labels(),
                    "annotations": {CONFIG_HASH_ANNOTATION: config_hash(config)},
                },
                "spec": {
                    "serviceAccountName": GATEWAY_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": hardened_pod_context(HAPROXY_UID),
                    "containers": [_container(settings)],
                    "volumes": _volumes(settings),
                    "topologySpreadConstraints": _spread(settings),
                },
            },
        },
    }


def jwt_config_map(settings: Environment, public_key: str) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(settings, JWT_CONFIG_MAP_NAME),
        "data": {JWT_KEY_FILE: public_key},
    }


def load_balancer_annotations(settings: Environment) -> dict[str, str]:
    """AWS NLB through the AWS Load Balancer Controller on EKS; none elsewhere.

    kind has no load balancer of its own: run cloud-provider-kind or MetalLB to give the Service an address.
    """
    if settings.cluster.provider != "eks":
        return {}
    annotations = dict(NLB_ANNOTATIONS)
    if not terminates_tls(settings):
        annotations[f"{AWS_LB}ssl-cert"] = str(settings.gateway.acm_certificate_arn)
        annotations[f"{AWS_LB}ssl-ports"] = str(PUBLIC_PORT)
        annotations[f"{AWS_LB}ssl-negotiation-policy"] = NLB_TLS_POLICY
    return annotations


def service(settings: Environment) -> K8sObject:
    """The gateway's public Service: a LoadBalancer (on EKS an NLB the AWS Load Balancer Controller
    makes), or on an existing cluster with `gateway.nodePort` a NodePort Service, for a cluster where
    nothing serves LoadBalancer Services (kind: its ingress would never be filled, and pulumi-kubernetes
    waits ten minutes for it, then fails the run)."""
    metadata = _metadata(settings)
    annotations = load_balancer_annotations(settings)
    if annotations:
        metadata["annotations"] = annotations
    port: K8sObject = {"name": "https", "port": PUBLIC_PORT, "targetPort": "mcp", "protocol": "TCP"}
    node_port = settings.gateway.node_port
    if node_port is not None:
        port["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "LoadBalancer" if node_port is None else "NodePort",
            # The client's own address reaches HAProxy (no hop through another node's kube-proxy, which
            # would replace it): it counts requests without a token per address and hands the address on.
            "externalTrafficPolicy": "Local",
            "selector": selector(),
            "ports": [port],
        },
    }


def metrics_service(settings: Environment) -> K8sObject:
    """Cluster-internal only: metrics stay off the load balancer."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings, METRICS_SERVICE_NAME),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(),
            "ports": [
                {
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def autoscaler(settings: Environment) -> K8sObject:
    scaling = settings.gateway
    return cpu_autoscaler(
        _metadata(settings), GATEWAY_NAME, scaling.replicas, scaling.max_replicas, TARGET_CPU_UTILIZATION
    )


def disruption_budget(settings: Environment) -> K8sObject | None:
    return one_at_a_time_budget(_metadata(settings), selector(), settings.gateway.replicas)


def _tcp(*ports: int) -> list[K8sObject]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policy(fleet: Fleet) -> K8sObject:
    """In: the serving port from anywhere, metrics from Prometheus only. Out: DNS and the router's pods,
    nothing else: HAProxy reaches no server itself."""
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
    # The router runs in this namespace; its ports, and the mesh tunnel's that carries them.
    router = {
        "to": [{"podSelector": {"matchLabels": dict(ROUTER_POD_LABELS)}}],
        "ports": _tcp(ROUTER_PORT, ROUTER_METRICS_PORT, HBONE_PORT),
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(settings),
        "spec": {
            "podSelector": {"matchLabels": selector()},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"ports": _tcp(serving_port(settings))},
                {"from": [prometheus], "ports": _tcp(METRICS_PORT, HBONE_PORT)},
                {"from": [{"ipBlock": {"cidr": AMBIENT_PROBE_SOURCE}}], "ports": _tcp(METRICS_PORT)},
            ],
            "egress": [dns, router],
        },
    }


def peer_authentication(settings: Environment) -> K8sObject:
    """The mesh is STRICT, but the serving port takes plain TCP from the load balancer, outside the mesh.

    Prometheus scrapes through the mesh like it reaches the servers, and kubelet probes bypass ztunnel, so
    the metrics port stays STRICT.
    """
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": _metadata(settings),
        "spec": {
            "selector": {"matchLabels": selector()},
            "mtls": {"mode": "STRICT"},
            # Ambient supports no DISABLE; PERMISSIVE accepts plaintext and mesh traffic alike.
            "portLevelMtls": {str(serving_port(settings)): {"mode": "PERMISSIVE"}},
        },
    }


def endpoints_service(server: FleetServer) -> K8sObject:
    """Headless: DNS answers with every ready pod, so the MCP router can keep a legacy session on the
    replica that opened it (its sealed session id names the pod).

    (Through the server's ClusterIP Service every request would be balanced anew by kube-proxy or the
    mesh, and a session would land on a replica that does not know it.)
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": endpoints_service_name(server),
            "namespace": server.namespace,
            "labels": {**server_labels(server), "app.kubernetes.io/component": "gateway-endpoints"},
        },
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(server),
            "ports": [
                {
                    "name": "http-mcp",
                    "port": server.spec.transport.port,
                    "targetPort": "mcp",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def certificate(settings: Environment) -> K8sObject | None:
    """cert-manager Certificate for the domain, into the Secret the pods mount; none if the NLB holds TLS."""
    gateway = settings.gateway
    if gateway.tls == "acm":
        return None
    issuer = SELF_SIGNED_ISSUER if gateway.tls == "self-signed" else str(gateway.cluster_issuer)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _metadata(settings, CERTIFICATE_NAME),
        "spec": {
            "secretName": CERT_SECRET_NAME,
            "dnsNames": [settings.domain],
            "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }


def self_signed_issuer() -> K8sObject:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {
            "name": SELF_SIGNED_ISSUER,
            "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": {"selfSigned": {}},
    }


def check_names(fleet: Fleet) -> None:
    """Refuse fleets whose names would make two objects one."""
    settings = fleet.settings
    if settings.gateway_namespace in fleet.namespaces:
        raise ValueError(f"the gateway namespace {settings.gateway_namespace!r} is also a server namespace")
    services = {(s.namespace, s.name) for s in fleet.servers}
    for server in fleet.servers:
        if (server.namespace, endpoints_service_name(server)) in services:
            raise ValueError(
                f"server {endpoints_service_name(server)!r} has the name of the gateway's endpoints"
                f" Service for {server.name!r} in namespace {server.namespace!r}"
            )


NAMESPACE_RESOURCE = "gateway-namespace"
# The public Service (type LoadBalancer on eks), whose load balancer the gateway's DNS record names.
SERVICE_RESOURCE = "gateway-service"
SELF_SIGNED_ISSUER_RESOURCE = "gateway-selfsigned-issuer"


def gateway_objects(fleet: Fleet, config: GatewayConfig, jwt_public_key: str) -> dict[str, K8sObject]:
    """The gateway's objects by Pulumi resource name; the namespace comes first."""
    check_names(fleet)
    settings = fleet.settings
    objects: dict[str, K8sObject] = {
        NAMESPACE_RESOURCE: gateway_namespace(settings),
        "gateway-service-account": service_account(settings),
        "gateway-config": config_map(settings, CONFIG_MAP_NAME, config),
        "gateway-jwt": jwt_config_map(settings, jwt_public_key),
        "gateway-deployment": deployment(settings, config),
        SERVICE_RESOURCE: service(settings),
        "gateway-metrics-service": metrics_service(settings),
        "gateway-autoscaler": autoscaler(settings),
        "gateway-network-policy": network_policy(fleet),
        # Like every server namespace: nothing flows unless a policy opens it.
        "gateway-default-deny": default_deny(fleet.settings.gateway_namespace),
        "gateway-peer-authentication": peer_authentication(settings),
    }
    budget = disruption_budget(settings)
    if budget is not None:
        objects["gateway-disruption-budget"] = budget
    if settings.gateway.tls == "self-signed":
        objects[SELF_SIGNED_ISSUER_RESOURCE] = self_signed_issuer()
    cert = certificate(settings)
    if cert is not None:
        objects["gateway-certificate"] = cert
    return objects
