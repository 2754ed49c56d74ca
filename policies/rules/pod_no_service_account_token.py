"""Pods do not mount a Kubernetes API token, except an MCP server whose catalog entry declares read access
to the Kubernetes API (`kubernetesAccess`): the others never call the API, and a mounted token would only be
something to steal.

Which server a Deployment belongs to comes from its `mcpfleet.io/server` label, checked against the
catalog of the environment under review (the server's name and namespace); without that catalog (the pack
could not load it) no token mount is admitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import POD, deployment
from policies.rules._fleet_cases import entry
from policies.rules._framework import Case, Context, Rule
from policies.rules._k8s import dig, name_of, namespace_of, pod_spec, where

SERVER_LABEL = "mcpfleet.io/server"
READ_ACCESS = {"read": [{"apiGroups": [""], "resources": ["pods"]}]}


def declares_kubernetes_access(inputs: Mapping[str, Any], context: Context) -> bool:
    """Whether the workload is the catalog server it names, in that server's namespace, and the server's
    entry declares `kubernetesAccess`."""
    name = dig(inputs, "metadata", "labels", SERVER_LABEL)
    if context.fleet is None or not name or name_of(inputs) != name:
        return False
    for server in context.fleet.servers:
        if server.name == name and server.namespace == namespace_of(inputs):
            return server.spec.kubernetes_access is not None
    return False


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    spec = pod_spec(resource_type, inputs)
    if spec is None or spec.get("automountServiceAccountToken") is False:
        return []
    if declares_kubernetes_access(inputs, context):
        return []
    return [
        f"{where(resource_type, inputs)} mounts its service account token (automountServiceAccountToken);"
        " only an MCP server whose catalog entry declares kubernetesAccess may"
    ]


def _labelled(name: str, namespace: str, token: bool) -> Any:
    changes = {
        "metadata.name": name,
        "metadata.namespace": namespace,
        f"{POD}.automountServiceAccountToken": token,
    }
    case = deployment(changes, name=name)
    # (The label's key has dots: set it directly rather than by a dotted path.)
    case.inputs["metadata"]["labels"][SERVER_LABEL] = name
    return case


RULE = Rule(
    id="pod-no-service-account-token",
    description="Pods do not automount a service account token, unless their server declares "
    "kubernetesAccess.",
    severity="medium",
    remediation="Set automountServiceAccountToken: false on the pod spec (and on its ServiceAccount); a "
    "server that must read the Kubernetes API declares `kubernetesAccess` in its catalog entry instead.",
    validate_resource=validate,
    tags=("pod-security",),
    cases=(
        Case("token not mounted", "pass", (deployment(),)),
        Case(
            "a server that declares kubernetesAccess",
            "pass",
            (_labelled("kube", "mcp-platform", True),),
            fleet=(entry("kube", kubernetesAccess=READ_ACCESS),),
        ),
        Case(
            "token mounted by default",
            "violate",
            (deployment({f"{POD}.automountServiceAccountToken": None}),),
        ),
        Case(
            "a server that declares no kubernetesAccess",
            "violate",
            (_labelled("kube", "mcp-platform", True),),
            fleet=(entry("kube"),),
        ),
        Case(
            "another workload borrowing that server's label",
            "violate",
            (_labelled("kube", "mcp-other", True),),
            fleet=(entry("kube", kubernetesAccess=READ_ACCESS),),
        ),
    ),
)
