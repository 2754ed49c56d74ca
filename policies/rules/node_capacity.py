"""Capacity: what the stack requests at rest fits what its EKS node groups can allocate.

The scheduler places a pod only where its requests fit a node's allocatable CPU, memory and pod slots. A
stack whose pods ask for more than the nodes hold leaves some Pending, and Pulumi waits on their
Deployments until the deploy times out. Nothing adds nodes (no cluster autoscaler runs): the nodes at rest
are a node group's `desiredSize`. Counted: every Deployment and StatefulSet at its replicas, every
DaemonSet on every node, and the charts' and EKS add-ons' pods from the figures in `_capacity.py`
(a chart or add-on whose objects the engine registered, as a preview does, is counted from those).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from policies.rules._capacity import (
    ADDONS,
    CHARTS,
    INSTANCE_TYPES,
    Allocatable,
    Load,
    allocatable,
    cpu_m,
    every_node,
    fixed,
    memory_mi,
)
from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, dig, kind_of, main_containers, name_of, namespace_of, pod_spec
from policies.rules._platform import (
    EKS_NODE_GROUP,
    UNKNOWN,
    addons_of,
    belongs_to,
    chart,
    chart_name,
    chart_values,
    charts,
    cluster_name,
    eks_addon,
    eks_cluster,
    eks_clusters,
    has_descendants,
    known,
    kube,
    of_type,
)
from policies.rules._stack import server_of


@dataclass(frozen=True)
class Counted:
    load: Load
    source: str  # how the report groups it: "servers", a chart, an add-on, or the object itself


def _pod_requests(spec: Mapping[str, object]) -> tuple[float, float]:
    containers = list(main_containers(spec))
    cpu = sum(cpu_m(dig(c, "resources", "requests", "cpu")) for c in containers)
    memory = sum(memory_mi(dig(c, "resources", "requests", "memory")) for c in containers)
    # Init containers run one at a time, before the others: the pod needs the larger of the two.
    for init in as_list(spec.get("initContainers")):
        cpu = max(cpu, cpu_m(dig(init, "resources", "requests", "cpu")))
        memory = max(memory, memory_mi(dig(init, "resources", "requests", "memory")))
    return cpu, memory


def workloads(resources: Sequence[Resource]) -> Iterable[Counted]:
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        kind = kind_of(r.type)
        if kind not in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
            continue
        spec = pod_spec(r.type, r.inputs) or {}
        cpu, memory = _pod_requests(spec)
        what = f"{kind} {namespace_of(r.inputs)}/{name_of(r.inputs)}"
        source = "servers" if server_of(r.urn, by_urn) is not None else what
        if kind == "DaemonSet":
            yield Counted(every_node(what, cpu, memory), source)
            continue
        replicas = dig(r.inputs, "spec", "replicas")
        count = int(replicas) if isinstance(replicas, int | float) and known(replicas) else 1
        yield Counted(fixed(what, count, cpu, memory), source)


def platform(resources: Sequence[Resource], cluster: Resource) -> tuple[list[Counted], list[Finding]]:
    """The charts' and add-ons' pods, and a finding for each one without figures."""
    counted: list[Counted] = []
    missing: list[Finding] = []
    for release in charts(resources):
        if has_descendants(release, resources):
            continue  # its Deployments and DaemonSets are registered, and counted as workloads
        key = (chart_name(release), str(release.inputs.get("version")))
        figures = CHARTS.get(key)
        if figures is None:
            missing.append(
                Finding(
                    f"no request figures for chart {key[0]} {key[1]}: what its pods request cannot be"
                    " counted; read its values.yaml and add them to policies/rules/_capacity.py",
                    release.urn,
                )
            )
            continue
        counted += [Counted(load, f"chart {key[0]}") for load in figures(chart_values(release))]
    for name, addon in addons_of(resources, cluster).items():
        if has_descendants(addon, resources):
            continue
        loads = ADDONS.get(name)
        if loads is None:
            missing.append(
                Finding(
                    f"no request figures for EKS add-on {name}; add them to policies/rules/_capacity.py",
                    addon.urn,
                )
            )
            continue
        counted += [Counted(load, f"add-on {name}") for load in loads]
    return counted, missing


def _group_capacity(group: Resource, fraction: float) -> tuple[int, Allocatable, str] | str:
    """(nodes at rest, allocatable per node, label), or why it cannot be known."""
    types = [str(t) for t in as_list(group.inputs.get("instanceTypes"))]
    unknown = [t for t in types if t not in INSTANCE_TYPES]
    if not types or unknown:
        return f"no capacity figures for instance type {', '.join(unknown) or '(none given)'}"
    # Any listed type may be launched: count the smallest.
    smallest = min(types, key=lambda t: (INSTANCE_TYPES[t].vcpus, INSTANCE_TYPES[t].memory_gib))
    desired = dig(group.inputs, "scalingConfig", "desiredSize")
    nodes = int(desired) if isinstance(desired, int | float) else 0
    return nodes, allocatable(INSTANCE_TYPES[smallest], fraction), f"{nodes} x {smallest}"


def _top(loads: Sequence[Counted], measure: str, unit: str) -> str:
    """The largest requesters among loads (not per node), grouped as the report names them."""
    totals: dict[str, float] = defaultdict(float)
    for item in loads:
        totals[item.source] += getattr(item.load, measure) * item.load.replicas
    ranked = sorted(((v, k) for k, v in totals.items() if v > 0), reverse=True)[:6]
    return ", ".join(f"{k} {v:.0f}{unit}" for v, k in ranked)


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    fraction = float(context.config.get("memoryCapacityFraction", 0.95))
    clusters = eks_clusters(resources)
    findings: list[Finding] = []
    counted_workloads = list(workloads(resources))
    for cluster in clusters:
        groups = [g for g in of_type(resources, EKS_NODE_GROUP) if belongs_to(g, cluster, clusters)]
        if not groups:
            continue
        extra, missing = platform(resources, cluster)
        findings += missing
        loads = counted_workloads + extra
        room = {"cpu_m": 0.0, "memory_mi": 0.0, "pods": 0.0}
        largest_node = {"cpu_m": 0.0, "memory_mi": 0.0}
        labels = []
        per_node = {
            "cpu_m": sum(c.load.cpu_m for c in loads if c.load.per_node),
            "memory_mi": sum(c.load.memory_mi for c in loads if c.load.per_node),
            "pods": float(sum(1 for c in loads if c.load.per_node)),
        }
        for group in groups:
            capacity = _group_capacity(group, fraction)
            if isinstance(capacity, str):
                findings.append(Finding(f"node group {group.name}: {capacity}", group.urn))
                continue
            count, node, label = capacity
            labels.append(label)
            free = {"cpu_m": node.cpu_m, "memory_mi": node.memory_mi, "pods": float(node.pods)}
            for measure in room:
                room[measure] += count * (free[measure] - per_node[measure])
            for measure in largest_node:
                largest_node[measure] = max(largest_node[measure], free[measure] - per_node[measure])
        if not labels:
            continue
        fleet = [c for c in loads if not c.load.per_node]
        asked = {
            "cpu_m": sum(c.load.cpu_m * c.load.replicas for c in fleet),
            "memory_mi": sum(c.load.memory_mi * c.load.replicas for c in fleet),
            "pods": float(sum(c.load.replicas for c in fleet)),
        }
        where = f"EKS cluster {cluster_name(cluster)}, nodes {' + '.join(labels)}"
        fix = (
            "missing fix: a node group sized for it (cluster.nodeGroup: desiredSize and minSize, or larger"
            " instanceTypes)"
        )
        for measure, unit, word in (
            ("cpu_m", "m", "CPU"),
            ("memory_mi", "Mi", "memory"),
            ("pods", "", "pod slots"),
        ):
            if asked[measure] > room[measure]:
                detail = f" ({_top(fleet, measure, unit)})" if measure != "pods" else ""
                findings.append(
                    Finding(
                        f"{where}: the stack requests {asked[measure]:.0f}{unit} {word} at rest beyond what"
                        f" runs on every node, and the nodes have {max(room[measure], 0):.0f}{unit} left"
                        f" after it{detail}: pods stay Pending and the deploy times out; {fix}",
                        cluster.urn,
                    )
                )
        for item in fleet:
            for measure, unit in (("cpu_m", "m"), ("memory_mi", "Mi")):
                if getattr(item.load, measure) > largest_node[measure]:
                    findings.append(
                        Finding(
                            f"{where}: one pod of {item.load.what} requests"
                            f" {getattr(item.load, measure):.0f}{unit}, more than any node has left"
                            f" ({largest_node[measure]:.0f}{unit}); {fix}",
                            cluster.urn,
                        )
                    )
    return findings


def _group(instance_type: str = "m7i.large", desired: int = 3) -> CaseResource:
    inputs = {
        "clusterName": UNKNOWN,
        "instanceTypes": [instance_type],
        "scalingConfig": {"minSize": desired, "desiredSize": desired, "maxSize": desired + 2},
    }
    return CaseResource(EKS_NODE_GROUP, "nodes", inputs)


def _deployment(name: str, replicas: int, cpu: str, memory: str) -> CaseResource:
    container = {"name": "server", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
    body = {"spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}
    return kube("apps/v1", "Deployment", name, body, namespace="mcp-team")


_MESH = (chart("istiod", "1.27.3"), chart("ztunnel", "1.27.3"), chart("cni", "1.27.3"))
_ADDONS = (eks_addon("vpc-cni"), eks_addon("kube-proxy"), eks_addon("coredns"))

RULE = Rule(
    id="node-capacity",
    description="What the stack requests at rest (its workloads, and the pods of its charts and EKS "
    "add-ons) fits what its node groups can allocate.",
    severity="critical",
    remediation="Size cluster.nodeGroup in the stack file for it: more nodes (desiredSize, minSize) or "
    "larger instanceTypes; or request less (catalog resources, replicas).",
    validate_stack=validate,
    config_schema={
        "memoryCapacityFraction": {
            "type": "number",
            "default": 0.95,
            "description": "Part of an instance type's published memory the kubelet sees as capacity.",
        }
    },
    tags=("capacity", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case(
            "room to spare",
            "pass",
            (eks_cluster(), _group(), *_MESH, *_ADDONS, _deployment("alpha", 4, "250m", "256Mi")),
        ),
        Case("no node group (existing cluster)", "pass", (_deployment("alpha", 40, "1", "1Gi"),)),
        Case(
            "CPU beyond two small nodes",
            "violate",
            (
                eks_cluster(),
                _group("t3.large", 2),
                *_MESH,
                *_ADDONS,
                _deployment("alpha", 12, "250m", "128Mi"),
            ),
        ),
        Case(
            "memory beyond the nodes",
            "violate",
            (eks_cluster(), _group("m7i.large", 3), _deployment("alpha", 8, "100m", "3Gi")),
        ),
        Case(
            "more pods than slots",
            "violate",
            (eks_cluster(), _group("m7i.large", 1), _deployment("alpha", 40, "1m", "1Mi")),
        ),
        Case(
            "one pod larger than any node",
            "violate",
            (eks_cluster(), _group("m7i.large", 6), _deployment("alpha", 1, "3", "1Gi")),
        ),
        Case(
            "a chart without figures",
            "violate",
            (eks_cluster(), _group(), chart("istiod", "1.99.0")),
        ),
        Case("an unknown instance type", "violate", (eks_cluster(), _group("x9z.huge"))),
    ),
)
