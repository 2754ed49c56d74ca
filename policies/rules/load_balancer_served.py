"""Networking: every LoadBalancer Service has a controller that gives it a load balancer.

Nothing fills a LoadBalancer Service's `status.loadBalancer.ingress` unless a controller serves it: on EKS
the AWS Load Balancer Controller, for the Services that name it (`aws-load-balancer-type: external` or its
`loadBalancerClass`); on kind nothing at all, unless cloud-provider-kind or MetalLB runs beside it.
pulumi-kubernetes waits for that ingress (ten minutes by default, provider/pkg/await/service.go), then
fails the run, and the Service is unreachable anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, name_of, namespace_of
from policies.rules._platform import chart, chart_name, charts, eks_cluster, eks_clusters, kube, of_kind

LBC_CHART = "aws-load-balancer-controller"
LBC_CLASS = "service.k8s.aws/nlb"
LBC_TYPES = frozenset({"external", "nlb-ip"})
TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
# Charts that serve LoadBalancer Services on a cluster of their own (bare metal, kind).
SERVING_CHARTS = frozenset({"metallb"})


def _names_the_aws_controller(service: Resource) -> bool:
    annotations = as_map(dig(service.inputs, "metadata", "annotations"))
    return (
        str(annotations.get(TYPE_ANNOTATION, "")) in LBC_TYPES
        or dig(service.inputs, "spec", "loadBalancerClass") == LBC_CLASS
    )


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    installed = {chart_name(release) for release in charts(resources)}
    eks = bool(eks_clusters(resources))
    brought = context.config.get("existingClusterServesLoadBalancers") is True
    findings = []
    for service in of_kind(resources, "Service"):
        if dig(service.inputs, "spec", "type") != "LoadBalancer":
            continue
        where = f"Service {namespace_of(service.inputs)}/{name_of(service.inputs)}"
        if eks:
            if _names_the_aws_controller(service) and LBC_CHART not in installed:
                findings.append(
                    Finding(
                        f"{where} names the AWS Load Balancer Controller, which this stack does not install:"
                        " its load balancer is never made; missing fix: the controller's chart"
                        " (components/addons.py)",
                        service.urn,
                    )
                )
            continue
        if brought or installed & SERVING_CHARTS:
            continue
        findings.append(
            Finding(
                f"{where} is of type LoadBalancer on an existing cluster where nothing serves LoadBalancer"
                " Services (kind: none unless cloud-provider-kind or MetalLB runs): its address never comes,"
                " and the run waits ten minutes for it, then fails; missing fix: gateway.nodePort (a NodePort"
                " Service, which stacks/kind-local.yaml maps to the host), or set this rule's"
                " existingClusterServesLoadBalancers when the cluster has a load balancer",
                service.urn,
            )
        )
    return findings


def _service(service_type: str = "LoadBalancer", annotations: dict[str, str] | None = None) -> CaseResource:
    metadata = {"annotations": annotations} if annotations else {}
    body = {"spec": {"type": service_type, "ports": [{"port": 443}]}}
    service = kube("v1", "Service", "mcp-gateway", body, namespace="mcp-gateway")
    if metadata:
        service.inputs["metadata"].update(metadata)
    return service


_NLB = {TYPE_ANNOTATION: "external"}


RULE = Rule(
    id="load-balancer-served",
    description="Every LoadBalancer Service has a controller in the stack (or the cluster) that serves it.",
    severity="high",
    remediation="On eks install the AWS Load Balancer Controller (ClusterAddons does); on an existing "
    "cluster without a load balancer (kind) make the gateway a NodePort Service with `gateway.nodePort`.",
    stack_fix="`gateway.nodePort` (an existing cluster such as kind), with the port mapping of "
    "stacks/kind-local.yaml",
    validate_stack=validate,
    config_schema={
        "existingClusterServesLoadBalancers": {
            "type": "boolean",
            "default": False,
            "description": "An existing cluster runs a load balancer controller of its own"
            " (cloud-provider-kind, MetalLB installed apart, a cloud's).",
        }
    },
    tags=("network", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case(
            "an NLB the controller makes",
            "pass",
            (eks_cluster(), chart(LBC_CHART, "1.13.2"), _service(annotations=_NLB)),
        ),
        Case("a NodePort on kind", "pass", (_service("NodePort"),)),
        Case("MetalLB on an existing cluster", "pass", (chart("metallb", "0.15.2"), _service())),
        # Issue 11, item 5: the gateway's LoadBalancer Service on kind.
        Case("a LoadBalancer on kind", "violate", (_service(),)),
        Case("an NLB without the controller", "violate", (eks_cluster(), _service(annotations=_NLB))),
    ),
)
