"""What nodes can allocate and what the platform's opaque parts request, for the node-capacity rule.

Every figure names its source. The offline plan sees a Helm chart or an EKS add-on as one resource, so
their pods' requests come from here; a chart version without an entry is reported, so that bumping a chart
means reading its values again.

Nodes (AL2023 EKS AMIs, nodeadm, awslabs/amazon-eks-ami `nodeadm/internal/kubelet/`):
- max pods = ENIs x (IPv4 addresses per ENI - 1) + 2 (`eni_max_pods.go`), ENI figures from
  `instance-info.jsonl`;
- kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of the third and fourth, 0.25% of the
  rest; kube-reserved memory: 11 MiB x max pods + 255 MiB; eviction threshold 100 MiB (`config.go`);
- vCPUs and memory: the instance type's published size (aws.amazon.com/ec2/instance-types). The kernel
  keeps part of that memory; the rule counts `memoryCapacityFraction` of it (default 0.95).

Charts (values.yaml of the pinned version, read from each chart's repository):
- istio `base`, `istiod`, `cni`, `ztunnel` 1.27.3 (istio/istio, tag 1.27.3, `manifests/charts/*/values.yaml`):
  istiod 500m / 2048Mi, one replica at rest (autoscaleMin 1); istio-cni 100m / 100Mi and ztunnel
  200m / 512Mi on every node; base runs no pod.
- cert-manager v1.20.2 (cert-manager/cert-manager, `deploy/charts/cert-manager/values.yaml`): controller,
  webhook and cainjector, one replica each, no requests.
- aws-load-balancer-controller 1.13.2 (aws/eks-charts, commit a4b8061): two replicas, no requests.
- external-secrets 2.0.0 (tag helm-chart-2.0.0): controller, webhook and cert controller, one each, no
  requests.
- metrics-server 3.13.1 (tag metrics-server-helm-chart-3.13.1): one replica, 100m / 200Mi.
- kube-prometheus-stack 88.5.3 (prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3, the
  newest release there when read, 2026-08-22): operator, Prometheus (its `replicas`),
  Alertmanager, Grafana, kube-state-metrics, and node-exporter on every node, none with requests (the
  config reloader's requests are passed as 0 unless set).

EKS add-ons (AWS publishes no manifest of its builds; figures from the upstream each is built from):
- vpc-cni: aws-node on every node, 25m (aws/amazon-vpc-cni-k8s, `charts/aws-vpc-cni/values.yaml`);
- kube-proxy: every node, 100m (the request of Kubernetes' own kube-proxy add-on manifests);
- eks-pod-identity-agent: every node, no requests (aws/eks-pod-identity-agent chart values);
- coredns: two replicas of 100m / 70Mi (kubernetes/kubernetes `cluster/addons/dns/coredns`);
- aws-ebs-csi-driver: two controller replicas of 50m / 192Mi (plugin, provisioner, attacher, resizer at
  10m / 40Mi, liveness probe 10m / 32Mi) and 30m / 112Mi on every node (kubernetes-sigs/aws-ebs-csi-driver
  chart values and templates);
- metrics-server (community add-on): two replicas (AWS re:Post, "Kubernetes Metrics Server setup
  recommendations") of the upstream chart's 100m / 200Mi.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.rules._k8s import as_map, dig


@dataclass(frozen=True)
class InstanceType:
    vcpus: int
    memory_gib: int
    enis: int
    ips_per_eni: int

    @property
    def max_pods(self) -> int:
        return self.enis * (self.ips_per_eni - 1) + 2


# vCPUs and GiB as published; ENIs and addresses per ENI from amazon-eks-ami's instance-info.jsonl.
INSTANCE_TYPES: Mapping[str, InstanceType] = {
    "t3.large": InstanceType(2, 8, 3, 12),
    "t3.xlarge": InstanceType(4, 16, 4, 15),
    "t3.2xlarge": InstanceType(8, 32, 4, 15),
    "m5.large": InstanceType(2, 8, 3, 10),
    "m5.xlarge": InstanceType(4, 16, 4, 15),
    "m6i.large": InstanceType(2, 8, 3, 10),
    "m6i.xlarge": InstanceType(4, 16, 4, 15),
    "m7i.large": InstanceType(2, 8, 3, 10),
    "m7i.xlarge": InstanceType(4, 16, 4, 15),
    "m7i.2xlarge": InstanceType(8, 32, 4, 15),
    "m7g.large": InstanceType(2, 8, 3, 10),
    "m7g.xlarge": InstanceType(4, 16, 4, 15),
    "c7i.large": InstanceType(2, 4, 3, 10),
    "r7i.large": InstanceType(2, 16, 3, 10),
}

EVICTION_HARD_MI = 100


def reserved_cpu_m(vcpus: int) -> int:
    """nodeadm's getCPUMillicoresToReserve."""
    total = vcpus * 1000
    reserved = 0
    for start, end, per_ten_thousand in (
        (0, 1000, 600),
        (1000, 2000, 100),
        (2000, 4000, 50),
        (4000, total, 25),
    ):
        if total > start:
            reserved += (min(total, end) - start) * per_ten_thousand // 10000
    return reserved


@dataclass(frozen=True)
class Allocatable:
    cpu_m: float
    memory_mi: float
    pods: int


def allocatable(instance: InstanceType, memory_fraction: float) -> Allocatable:
    memory = instance.memory_gib * 1024 * memory_fraction
    reserved_memory = 11 * instance.max_pods + 255 + EVICTION_HARD_MI
    return Allocatable(
        cpu_m=instance.vcpus * 1000 - reserved_cpu_m(instance.vcpus),
        memory_mi=memory - reserved_memory,
        pods=instance.max_pods,
    )


@dataclass(frozen=True)
class Load:
    """Pods of one kind: `replicas` of them (or one on every node), each requesting cpu_m and memory_mi."""

    what: str
    replicas: int
    per_node: bool
    cpu_m: float
    memory_mi: float


def fixed(what: str, replicas: int, cpu_m: float = 0, memory_mi: float = 0) -> Load:
    return Load(what, replicas, False, cpu_m, memory_mi)


def every_node(what: str, cpu_m: float = 0, memory_mi: float = 0) -> Load:
    return Load(what, 1, True, cpu_m, memory_mi)


_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEMORY = re.compile(r"^([0-9.]+)([KMGT]i?|[kKMGT]|e[0-9]+)?$")
_MEMORY_FACTORS = {
    "": 1 / 1024**2,
    "k": 1000 / 1024**2,
    "K": 1000 / 1024**2,
    "M": 1000**2 / 1024**2,
    "G": 1000**3 / 1024**2,
    "T": 1000**4 / 1024**2,
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024**2,
}


def cpu_m(value: Any) -> float:
    """A CPU quantity in millicores; 0 when absent or not a quantity (unknown until apply)."""
    if isinstance(value, int | float):
        return float(value) * 1000
    match = _CPU.match(str(value or ""))
    if match is None:
        return 0.0
    return float(match.group(1)) * (1 if match.group(2) else 1000)


def memory_mi(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) / 1024**2
    match = _MEMORY.match(str(value or ""))
    if match is None or (match.group(2) or "").startswith("e"):
        return 0.0
    return float(match.group(1)) * _MEMORY_FACTORS[match.group(2) or ""]


def _replicas(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else default


def _requests(
    values: Mapping[str, Any], path: tuple[str, ...], cpu: float, memory: float
) -> tuple[float, float]:
    """A component's requests: what its values set at path (`resources.requests`), else the default."""
    requests = (
        as_map(dig(values, *path, "resources", "requests"))
        if path
        else as_map(dig(values, "resources", "requests"))
    )
    return (
        cpu_m(requests["cpu"]) if "cpu" in requests else cpu,
        memory_mi(requests["memory"]) if "memory" in requests else memory,
    )


def _istiod(values: Mapping[str, Any]) -> list[Load]:
    cpu, memory = _requests(values, (), 500, 2048)
    at_rest = (
        values.get("autoscaleMin", 1)
        if values.get("autoscaleEnabled", True)
        else values.get("replicaCount", 1)
    )
    return [fixed("istiod", _replicas(at_rest, 1), cpu, memory)]


def _istio_cni(values: Mapping[str, Any]) -> list[Load]:
    return [every_node("istio-cni", *_requests(values, (), 100, 100))]


def _ztunnel(values: Mapping[str, Any]) -> list[Load]:
    return [every_node("ztunnel", *_requests(values, (), 200, 512))]


def _cert_manager(values: Mapping[str, Any]) -> list[Load]:
    loads = [fixed("cert-manager", _replicas(values.get("replicaCount"), 1), *_requests(values, (), 0, 0))]
    loads.append(
        fixed(
            "cert-manager-webhook",
            _replicas(dig(values, "webhook", "replicaCount"), 1),
            *_requests(values, ("webhook",), 0, 0),
        )
    )
    if dig(values, "cainjector", "enabled") is not False:
        loads.append(
            fixed(
                "cert-manager-cainjector",
                _replicas(dig(values, "cainjector", "replicaCount"), 1),
                *_requests(values, ("cainjector",), 0, 0),
            )
        )
    return loads


def _load_balancer_controller(values: Mapping[str, Any]) -> list[Load]:
    replicas = _replicas(values.get("replicaCount"), 2)
    return [fixed("aws-load-balancer-controller", replicas, *_requests(values, (), 0, 0))]


def _external_secrets(values: Mapping[str, Any]) -> list[Load]:
    loads = [
        fixed("external-secrets", _replicas(values.get("replicaCount"), 1), *_requests(values, (), 0, 0))
    ]
    for part in ("webhook", "certController"):
        if dig(values, part, "create") is not False:
            loads.append(
                fixed(
                    f"external-secrets-{part}",
                    _replicas(dig(values, part, "replicaCount"), 1),
                    *_requests(values, (part,), 0, 0),
                )
            )
    return loads


def _metrics_server(values: Mapping[str, Any]) -> list[Load]:
    return [fixed("metrics-server", _replicas(values.get("replicas"), 1), *_requests(values, (), 100, 200))]


def _kube_prometheus_stack(values: Mapping[str, Any]) -> list[Load]:
    prometheus = ("prometheus", "prometheusSpec")
    loads = [
        fixed("prometheus-operator", 1, *_requests(values, ("prometheusOperator",), 0, 0)),
        fixed(
            "prometheus",
            _replicas(dig(values, *prometheus, "replicas"), 1),
            *_requests(values, prometheus, 0, 0),
        ),
        fixed("kube-state-metrics", 1, *_requests(values, ("kube-state-metrics",), 0, 0)),
        every_node("node-exporter", *_requests(values, ("prometheus-node-exporter",), 0, 0)),
    ]
    if dig(values, "alertmanager", "enabled") is not False:
        spec = ("alertmanager", "alertmanagerSpec")
        loads.append(
            fixed(
                "alertmanager", _replicas(dig(values, *spec, "replicas"), 1), *_requests(values, spec, 0, 0)
            )
        )
    if dig(values, "grafana", "enabled") is not False:
        loads.append(fixed("grafana", 1, *_requests(values, ("grafana",), 0, 0)))
    return loads


ChartFigures = Callable[[Mapping[str, Any]], list[Load]]

# (chart, version) -> the pods it runs, given its values.
CHARTS: Mapping[tuple[str, str], ChartFigures] = {
    ("base", "1.27.3"): lambda values: [],
    ("istiod", "1.27.3"): _istiod,
    ("cni", "1.27.3"): _istio_cni,
    ("ztunnel", "1.27.3"): _ztunnel,
    ("cert-manager", "v1.20.2"): _cert_manager,
    ("aws-load-balancer-controller", "1.13.2"): _load_balancer_controller,
    ("external-secrets", "2.0.0"): _external_secrets,
    ("metrics-server", "3.13.1"): _metrics_server,
    ("kube-prometheus-stack", "88.5.3"): _kube_prometheus_stack,
}

# EKS add-on -> the pods it runs (no version: EKS picks the add-on's default for the cluster's version).
ADDONS: Mapping[str, list[Load]] = {
    "vpc-cni": [every_node("aws-node", 25)],
    "kube-proxy": [every_node("kube-proxy", 100)],
    "eks-pod-identity-agent": [every_node("eks-pod-identity-agent")],
    "coredns": [fixed("coredns", 2, 100, 70)],
    "aws-ebs-csi-driver": [fixed("ebs-csi-controller", 2, 50, 192), every_node("ebs-csi-node", 30, 112)],
    "metrics-server": [fixed("metrics-server", 2, 100, 200)],
}
