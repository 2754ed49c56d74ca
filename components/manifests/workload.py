"""One hardened workload per MCP server: the objects of its namespace, secure by default."""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from components.manifests import K8sObject
from components.manifests.labels import selector_labels, server_labels
from mcpfleet.catalog.models import Probe
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

CONTAINER_NAME = "server"
PORT_NAME = "mcp"
TMP_SIZE = "64Mi"
# The bridge keeps its npm/uv cache under HOME, so stdio servers get a larger scratch volume.
STDIO_TMP_SIZE = "512Mi"
BRIDGE_HEALTH_PATH = "/healthz"
SETTINGS_HASH_ANNOTATION = "mcpfleet.io/settings-sha256"
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
# pulumi-kubernetes creates an object carrying this annotation without waiting for it to become ready
# (provider/pkg/metadata/overrides.go: ReadyCondition): for a Deployment, not waiting for its pods; for a
# Service, not waiting for endpoints of ready pods (provider/pkg/await/service.go).
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


def settings_name(server: FleetServer) -> str:
    return f"{server.name}-settings"


def secrets_name(server: FleetServer) -> str:
    """The Secret the platform's secret sync fills with this server's references."""
    return f"{server.name}-secrets"


def values_arrive_later(server: FleetServer, settings: Environment) -> bool:
    """Whether the server's secret values may not exist when it is deployed: in the cloud its owner puts
    them into Secrets Manager out of band, after the deploy that created the (empty) secrets.

    Its pods then wait in CreateContainerConfigError until External Secrets has written the Secret, and
    start by themselves once it has (kubelet retries). The deploy must not wait for them: pulumi-kubernetes
    would wait for the Deployment's pods and the Service's endpoints until it times out (10 minutes each)
    and fail the run. On an existing cluster the values come from the stack's config in the same run.
    """
    return settings.cluster.provider != "existing" and bool(server.spec.secrets)


def _skip_await(metadata: K8sObject) -> K8sObject:
    return {**metadata, "annotations": {**metadata.get("annotations", {}), SKIP_AWAIT_ANNOTATION: "true"}}


def hardened_container_context(uid: int) -> K8sObject:
    """The container security posture of every workload we run (Pod Security `restricted` and more)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def hardened_pod_context(uid: int) -> K8sObject:
    """The pod-level half: non-root, files owned by uid's group, the runtime's seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _metadata(server: FleetServer, name: str | None = None) -> K8sObject:
    return {"name": name or server.name, "namespace": server.namespace, "labels": server_labels(server)}


def service_account(server: FleetServer, annotations: dict[str, Any] | None = None) -> K8sObject:
    """annotations: e.g. the IAM role the server's identity assumes (a Pulumi output in the cloud)."""
    metadata = _metadata(server)
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata,
        # MCP servers never call the Kubernetes API; a mounted token would only be something to steal.
        "automountServiceAccountToken": False,
    }


def settings_config_map(server: FleetServer) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(server, settings_name(server)),
        "data": dict(sorted(server.env.items())),
    }


def container_args(server: FleetServer) -> list[str]:
    transport = server.spec.transport
    if transport.type != "stdio":
        return list(server.spec.args)
    args = [
        "--stdio",
        shlex.join(transport.command),
        "--outputTransport",
        "streamableHttp",
        "--port",
        str(transport.port),
        "--streamableHttpPath",
        transport.path,
        "--healthEndpoint",
        BRIDGE_HEALTH_PATH,
    ]
    if not server.spec.stateless:
        args.append("--stateful")
    return args


def _probe(probe: Probe, server: FleetServer) -> K8sObject:
    path = probe.http_path
    if path is None and server.spec.transport.type == "stdio":
        path = BRIDGE_HEALTH_PATH
    check: K8sObject = (
        {"httpGet": {"path": path, "port": PORT_NAME}} if path else {"tcpSocket": {"port": PORT_NAME}}
    )
    return {
        **check,
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def _container(server: FleetServer) -> K8sObject:
    spec = server.spec
    env = [
        {"name": secret.env, "valueFrom": {"secretKeyRef": {"name": secrets_name(server), "key": secret.env}}}
        for secret in spec.secrets
    ]
    if spec.transport.type == "stdio":
        env.append({"name": "HOME", "value": "/tmp"})
    container: K8sObject = {
        "name": CONTAINER_NAME,
        "image": server.image.reference,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": PORT_NAME, "containerPort": spec.transport.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": settings_name(server)}}],
        "resources": {
            "requests": {"cpu": server.resources.requests.cpu, "memory": server.resources.requests.memory},
            "limits": {"cpu": server.resources.limits.cpu, "memory": server.resources.limits.memory},
        },
        "livenessProbe": _probe(spec.health.liveness, server),
        "readinessProbe": _probe(spec.health.readiness, server),
        "securityContext": hardened_container_context(spec.run_as_user),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    args = container_args(server)
    if args:
        container["args"] = args
    if env:
        container["env"] = env
    return container


def _spread(server: FleetServer, settings: Environment) -> list[K8sObject]:
    zone_rule = "DoNotSchedule" if settings.strictness == "strict" else "ScheduleAnyway"
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": rule,
            "labelSelector": {"matchLabels": selector_labels(server)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key, rule in ((ZONE_KEY, zone_rule), (HOST_KEY, "ScheduleAnyway"))
    ]


def settings_hash(server: FleetServer) -> str:
    """Changes when the ConfigMap's data changes, so the Deployment rolls to pick it up."""
    return hashlib.sha256(json.dumps(server.env, sort_keys=True).encode()).hexdigest()


def deployment(server: FleetServer, settings: Environment) -> K8sObject:
    """A server's workload; not awaited by the deploy when its secret values arrive later."""
    tmp_size = STDIO_TMP_SIZE if server.spec.transport.type == "stdio" else TMP_SIZE
    metadata = _metadata(server)
    if values_arrive_later(server, settings):
        metadata = _skip_await(metadata)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            # The autoscaler owns the count afterwards (the component ignores later changes to it).
            "replicas": server.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(server)},
            # Surge first, never drop below the running count: long-lived MCP streams keep capacity.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": server_labels(server),
                    "annotations": {SETTINGS_HASH_ANNOTATION: settings_hash(server)},
                },
                "spec": {
                    "serviceAccountName": server.name,
                    # Only a server granted read access to the Kubernetes API (catalog `kubernetesAccess`)
                    # gets its token: the one of its own ServiceAccount, which a ClusterRole binds.
                    "automountServiceAccountToken": server.spec.kubernetes_access is not None,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": hardened_pod_context(server.spec.run_as_user),
                    "containers": [_container(server)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": tmp_size}}],
                    "topologySpreadConstraints": _spread(server, settings),
                },
            },
        },
    }


def service(server: FleetServer, await_ready: bool = True) -> K8sObject:
    """await_ready=False: the deploy does not wait for ready endpoints (values_arrive_later)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(server) if await_ready else _skip_await(_metadata(server)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(server),
            "ports": [
                {
                    "name": f"http-{PORT_NAME}",
                    "port": server.spec.transport.port,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def cpu_autoscaler(
    metadata: K8sObject, deployment: str, min_replicas: int, max_replicas: int, target_cpu: int
) -> K8sObject:
    """The autoscaler every Deployment of the platform gets: CPU utilization against requests."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target_cpu},
                    },
                }
            ],
            # Scale in slowly: removing a replica cuts the sessions and streams it carries.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def one_at_a_time_budget(
    metadata: K8sObject, selector: dict[str, str], min_replicas: int
) -> K8sObject | None:
    """Only with more than one replica: a budget on a single pod would block node drains forever."""
    if min_replicas < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


def autoscaler(server: FleetServer) -> K8sObject:
    return cpu_autoscaler(
        _metadata(server),
        server.name,
        server.min_replicas,
        server.max_replicas,
        server.target_cpu_utilization,
    )


def disruption_budget(server: FleetServer) -> K8sObject | None:
    return one_at_a_time_budget(_metadata(server), selector_labels(server), server.min_replicas)
