"""Secrets: a container reads only Secrets the stack creates, and the deploy never waits on pods whose
Secret gets its values later.

A pod reading a Secret that does not exist stays in CreateContainerConfigError (or ContainerCreating, for a
volume): pulumi-kubernetes waits for the Deployment's pods and for the endpoints of each Service selecting
them, ten minutes each, then fails the run. A Secret nothing creates never appears. One that External
Secrets fills appears only once its values are in the store, which its owner puts in out of band, after
the deploy that created the empty store secrets: the deploy must not wait on those pods
(`pulumi.com/skipAwait` on the workload and on its Services), which start by themselves once the values
arrive. A Secret the stack creates, or that cert-manager issues into in the same run, is there in time.
Workloads a Helm chart renders read what the chart and its controllers make: they are the chart's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, containers, dig, kind_of, labels_match, name_of, namespace_of
from policies.rules._k8s import pod_spec as pod_spec_of
from policies.rules._platform import CHART_TYPES, kube, truthy

SKIP_AWAIT = "pulumi.com/skipAwait"
# "now": there when the deploy waits for it; "later": its values come from outside the deploy.
Arrival = Literal["now", "later"]


@dataclass(frozen=True)
class Source:
    what: str
    arrival: Arrival


def sources(resources: Sequence[Resource]) -> dict[tuple[str, str], Source]:
    """(namespace, Secret name) -> what creates it, and whether its values are there in the same run."""
    found: dict[tuple[str, str], Source] = {}
    for r in resources:
        kind, group = kind_of(r.type), str(r.inputs.get("apiVersion", "")).split("/")[0]
        namespace = namespace_of(r.inputs)
        if kind == "Secret" and group == "v1":
            found[(namespace, name_of(r.inputs))] = Source(f"Secret {namespace}/{name_of(r.inputs)}", "now")
        elif kind == "ExternalSecret" and group == "external-secrets.io":
            target = dig(r.inputs, "spec", "target", "name") or name_of(r.inputs)
            found.setdefault(
                (namespace, str(target)), Source(f"ExternalSecret {namespace}/{name_of(r.inputs)}", "later")
            )
        elif kind == "Certificate" and group == "cert-manager.io":
            target = dig(r.inputs, "spec", "secretName")
            if target:
                found.setdefault(
                    (namespace, str(target)), Source(f"Certificate {namespace}/{name_of(r.inputs)}", "now")
                )
    return found


def secret_references(spec: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    """(where, Secret name) of every Secret a pod needs to start (optional references left out)."""
    for container in containers(spec):
        where = f"container {container.get('name', '?')}"
        for env in as_list(container.get("env")):
            ref = as_map(dig(env, "valueFrom", "secretKeyRef"))
            if ref.get("name") and not truthy(ref.get("optional")):
                yield f"{where}, env {dig(env, 'name')}", str(ref["name"])
        for env_from in as_list(container.get("envFrom")):
            ref = as_map(dig(env_from, "secretRef"))
            if ref.get("name") and not truthy(ref.get("optional")):
                yield f"{where}, envFrom", str(ref["name"])
    for volume in as_list(spec.get("volumes")):
        secret = as_map(dig(volume, "secret"))
        if secret.get("secretName") and not truthy(secret.get("optional")):
            yield f"volume {dig(volume, 'name')}", str(secret["secretName"])
        for source in as_list(dig(volume, "projected", "sources")):
            projected = as_map(dig(source, "secret"))
            if projected.get("name") and not truthy(projected.get("optional")):
                yield f"volume {dig(volume, 'name')}", str(projected["name"])


def _awaited(resource: Resource) -> bool:
    return not truthy(dig(resource.inputs, "metadata", "annotations", SKIP_AWAIT))


def _rendered_by_a_chart(resource: Resource, by_urn: Mapping[str, Resource]) -> bool:
    parent, seen = resource.parent, set()
    while parent is not None and parent not in seen:
        seen.add(parent)
        ancestor = by_urn.get(parent)
        if ancestor is None:
            return False
        if ancestor.type in CHART_TYPES:
            return True
        parent = ancestor.parent
    return False


def _awaiting_services(workload: Resource, resources: Sequence[Resource]) -> list[Resource]:
    """Services selecting the workload's pods whose creation waits for their ready endpoints."""
    labels = as_map(dig(workload.inputs, "spec", "template", "metadata", "labels"))
    found = []
    for service in resources:
        if kind_of(service.type) != "Service" or namespace_of(service.inputs) != namespace_of(
            workload.inputs
        ):
            continue
        spec = as_map(service.inputs.get("spec"))
        selector = as_map(spec.get("selector"))
        headless = spec.get("clusterIP") == "None"
        if not selector or headless or spec.get("type") == "ExternalName" or not _awaited(service):
            continue  # pulumi-kubernetes waits for no endpoints of these
        if labels_match({"matchLabels": selector}, labels):
            found.append(service)
    return found


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    made = sources(resources)
    by_urn = {r.urn: r for r in resources}
    findings = []
    for workload in resources:
        spec = pod_spec_of(workload.type, workload.inputs)
        if spec is None or _rendered_by_a_chart(workload, by_urn):
            continue
        namespace = namespace_of(workload.inputs)
        where = f"{kind_of(workload.type)} {namespace}/{name_of(workload.inputs)}"
        later: list[Source] = []
        for reader, secret in secret_references(spec):
            source = made.get((namespace, secret))
            if source is None:
                findings.append(
                    Finding(
                        f"{where}, {reader} reads Secret {namespace}/{secret}, which nothing in this stack"
                        " creates: its pods never start",
                        workload.urn,
                    )
                )
            elif source.arrival == "later" and source not in later:
                later.append(source)
        if not later:
            continue
        filled_by = ", ".join(source.what for source in later)
        waiting = ([workload] if _awaited(workload) else []) + _awaiting_services(workload, resources)
        for waiter in waiting:
            what = "its pods" if waiter is workload else "ready endpoints of its pods"
            findings.append(
                Finding(
                    f"{kind_of(waiter.type)} {namespace}/{name_of(waiter.inputs)}: the deploy waits for"
                    f" {what}, which cannot start before {filled_by} has values put in out of band: the"
                    f" run times out; missing fix: the {SKIP_AWAIT} annotation on the {kind_of(waiter.type)}",
                    waiter.urn,
                )
            )
    return findings


_LABELS = {"app.kubernetes.io/name": "github"}
_SKIP = {SKIP_AWAIT: "true"}


def _deployment(
    secret: str = "github-secrets", annotations: Mapping[str, str] | None = None, optional: bool = False
) -> CaseResource:
    ref: dict[str, object] = {"name": secret, "key": "GITHUB_TOKEN"}
    if optional:
        ref["optional"] = True
    container = {"name": "server", "env": [{"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": ref}}]}
    body = {"spec": {"template": {"metadata": {"labels": _LABELS}, "spec": {"containers": [container]}}}}
    deployment = kube("apps/v1", "Deployment", "github", body, namespace="mcp-devtools")
    if annotations:
        metadata = {**deployment.inputs["metadata"], "annotations": dict(annotations)}
        deployment = CaseResource(
            deployment.type, deployment.name, {**deployment.inputs, "metadata": metadata}
        )
    return deployment


def _service(annotations: Mapping[str, str] | None = None, headless: bool = False) -> CaseResource:
    spec: dict[str, object] = {"selector": _LABELS, "ports": [{"port": 8080}]}
    if headless:
        spec["clusterIP"] = "None"
    service = kube("v1", "Service", "github", {"spec": spec}, namespace="mcp-devtools")
    if annotations:
        service.inputs["metadata"]["annotations"] = dict(annotations)
    return service


_EXTERNAL = kube(
    "external-secrets.io/v1",
    "ExternalSecret",
    "github",
    {
        "spec": {
            "target": {"name": "github-secrets"},
            "data": [{"remoteRef": {"key": "mcpfleet/dev/github/token"}}],
        }
    },
    namespace="mcp-devtools",
)
_LOCAL = kube(
    "v1", "Secret", "github-secrets", {"stringData": {"GITHUB_TOKEN": "[secret]"}}, namespace="mcp-devtools"
)


RULE = Rule(
    id="secret-source-exists",
    description="Containers read only Secrets the stack creates; the deploy never waits on pods whose Secret "
    "gets its values later.",
    severity="high",
    remediation="Create the Secret the container reads (on eks the server's ExternalSecret, on local the "
    "stack's `mcpfleet:secrets` values); give a workload whose Secret External Secrets fills, and the "
    "Services selecting its pods, the pulumi.com/skipAwait annotation, and put the values in with the "
    "command the ExternalSecret's mcpfleet.io/put-values annotation names.",
    validate_stack=validate,
    tags=("secrets", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("a Secret the stack creates", "pass", (_LOCAL, _deployment(), _service())),
        Case(
            "values synced later, nothing waits for the pods",
            "pass",
            (_EXTERNAL, _deployment(annotations=_SKIP), _service(annotations=_SKIP), _service(headless=True)),
        ),
        Case(
            "an optional reference to a Secret nobody makes", "pass", (_deployment("absent", optional=True),)
        ),
        Case(
            "a certificate's Secret, issued in the same run",
            "pass",
            (
                kube(
                    "cert-manager.io/v1",
                    "Certificate",
                    "gateway",
                    {"spec": {"secretName": "github-secrets"}},
                    namespace="mcp-devtools",
                ),
                _deployment(),
            ),
        ),
        Case("a Secret nothing creates", "violate", (_deployment("gihtub-secrets"),)),
        Case(
            "a Secret of the same name in another namespace",
            "violate",
            (
                kube("v1", "Secret", "github-secrets", {"stringData": {}}, namespace="default"),
                _deployment(),
            ),
        ),
        # Issue 11, item 4: the servers' Deployments waited for pods whose secrets were created empty.
        Case(
            "the deploy waits for pods whose values come later",
            "violate",
            (_EXTERNAL, _deployment(), _service(annotations=_SKIP)),
        ),
        Case(
            "the deploy waits for the endpoints of those pods",
            "violate",
            (_EXTERNAL, _deployment(annotations=_SKIP), _service()),
        ),
    ),
)
