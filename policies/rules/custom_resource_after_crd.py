"""Ordering: every custom resource is created after the chart that installs its CRD, and that chart counts
as ready only once its admission webhook can be called.

Before its CRD exists a custom resource's create fails with NoMatch, which pulumi-kubernetes retries for
about a minute only. A webhook that validates the resource but cannot be called yet (its pod not ready, or
its CA bundle not yet injected) fails the create for good: Pulumi does not retry it. A helm v4 Chart
renders no Helm hooks, so the hooks some charts count on to wait for their webhook never run; what makes the
chart's readiness include its webhook is checked per chart below. A chart installing its CRDs only when told
(`crds.enabled`, `installCRDs`) must be told.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.rules._framework import Case, CaseResource, Context, Finding, Resource, Rule
from policies.rules._k8s import as_map, dig, kind_of, name_of, namespace_of
from policies.rules._order import Order
from policies.rules._platform import chart, chart_name, chart_values, charts, kube, truthy

# pulumi-kubernetes waits on an object carrying this annotation until the JSONPath matches: on a webhook
# configuration, until the CA bundle is in (components/addons.py: pulumi/pulumi-kubernetes#3134).
WAIT_FOR = "pulumi.com/waitFor"
CA_BUNDLE = "caBundle"


def _waits_for_ca(annotations: Any) -> bool:
    return CA_BUNDLE in str(as_map(annotations).get(WAIT_FOR, ""))


def _cert_manager(values: Mapping[str, Any]) -> list[str]:
    """cert-manager's chart installs its CRDs only with `crds.enabled` (or the older `installCRDs`); its
    webhook is callable once cainjector has put the CA in (the skipped startupapicheck hook waited for it)."""
    problems = []
    if not (truthy(dig(values, "crds", "enabled")) or truthy(values.get("installCRDs"))):
        problems.append("installs no CRDs (set `crds.enabled: true`)")
    webhook = as_map(values.get("webhook"))
    for kind in ("validating", "mutating"):
        if not _waits_for_ca(webhook.get(f"{kind}WebhookConfigurationAnnotations")):
            problems.append(
                f"counts as ready before its webhook can be called (set `webhook.{kind}WebhookConfiguration"
                f"Annotations` {{{WAIT_FOR}: jsonpath={{.webhooks[*].clientConfig.caBundle}}}})"
            )
    return problems


def _external_secrets(values: Mapping[str, Any]) -> list[str]:
    """external-secrets installs its CRDs unless `installCRDs: false`; its webhook (failurePolicy Fail)
    validates every SecretStore and ExternalSecret once its cert-controller has injected the CA."""
    problems = []
    if values.get("installCRDs") is False:
        problems.append("installs no CRDs (`installCRDs: false`)")
    webhook = as_map(values.get("webhook"))
    if webhook.get("create") is not False and not _waits_for_ca(webhook.get("annotations")):
        problems.append(
            "counts as ready before its webhook can be called (set `webhook.annotations`"
            f" {{{WAIT_FOR}: jsonpath={{.webhooks[*].clientConfig.caBundle}}}})"
        )
    return problems


def _kube_prometheus_stack(values: Mapping[str, Any]) -> list[str]:
    """Its admission webhook's certificate comes from Helm hook Jobs (which a helm v4 Chart never runs)
    unless cert-manager issues it; with neither the webhook never answers."""
    problems = []
    if dig(values, "crds", "enabled") is False:
        problems.append("installs no CRDs (`crds.enabled: false`)")
    webhooks = as_map(dig(values, "prometheusOperator", "admissionWebhooks"))
    if webhooks.get("enabled", True) is not False and not truthy(dig(webhooks, "certManager", "enabled")):
        problems.append(
            "runs an admission webhook whose certificate comes from Helm hooks, which Pulumi never runs (set"
            " `prometheusOperator.admissionWebhooks.enabled: false`)"
        )
    return problems


def _no_values_needed(values: Mapping[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Source:
    """Where an API group's CRDs and webhook come from: these charts (each one must come first), and what
    their values must say."""

    charts: tuple[str, ...]
    check: Callable[[Mapping[str, Any]], list[str]]


CERT_MANAGER = Source(("cert-manager",), _cert_manager)
# Istio: `base` holds the CRDs; istiod serves the validating webhook, which fails open until istiod has
# patched in its CA bundle (istio/istio tag 1.27.3, `manifests/charts/istio-control/istio-discovery/
# templates/validatingwebhookconfiguration.yaml`: "Fail open until the validation webhook is ready").
ISTIO = Source(("base", "istiod"), _no_values_needed)
SOURCES: Mapping[str, Source] = {
    "cert-manager.io": CERT_MANAGER,
    "acme.cert-manager.io": CERT_MANAGER,
    "external-secrets.io": Source(("external-secrets",), _external_secrets),
    "monitoring.coreos.com": Source(("kube-prometheus-stack",), _kube_prometheus_stack),
    "security.istio.io": ISTIO,
    "networking.istio.io": ISTIO,
    "telemetry.istio.io": ISTIO,
}


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    installed: dict[str, list[Resource]] = {}
    for release in charts(resources):
        installed.setdefault(chart_name(release), []).append(release)
    order = Order(resources)
    findings = []
    reported: set[str] = set()
    for resource in resources:
        kind = kind_of(resource.type)
        group = str(resource.inputs.get("apiVersion", "")).split("/")[0]
        source = SOURCES.get(group)
        if kind is None or source is None or "/" not in str(resource.inputs.get("apiVersion", "")):
            continue
        where = f"{kind} {namespace_of(resource.inputs)}/{name_of(resource.inputs)}"
        for name in source.charts:
            releases = installed.get(name)
            if not releases:
                findings.append(
                    Finding(
                        f"{where} needs the CRDs of group {group}, from chart {name}, which this stack does"
                        " not install: its creation fails",
                        resource.urn,
                    )
                )
                continue
            if not order.after_any(resource.urn, [r.urn for r in releases]):
                findings.append(
                    Finding(
                        f"{where} is not ordered after chart {name}, which installs its CRD and webhook:"
                        f" missing fix: depends_on the chart {releases[0].name} (or on a parent that has it)",
                        resource.urn,
                    )
                )
            for release in releases:
                if release.urn in reported:
                    continue
                reported.add(release.urn)
                findings.extend(
                    Finding(f"chart {name} ({release.name}) {problem}", release.urn)
                    for problem in source.check(chart_values(release))
                )
    return findings


_WAIT = {WAIT_FOR: "jsonpath={.webhooks[*].clientConfig.caBundle}"}
_READY_CERT_MANAGER = {
    "crds": {"enabled": True},
    "webhook": {
        "validatingWebhookConfigurationAnnotations": dict(_WAIT),
        "mutatingWebhookConfigurationAnnotations": dict(_WAIT),
    },
}
_CERT_MANAGER_CHART = chart("cert-manager", "v1.20.2", _READY_CERT_MANAGER)
_ESO_CHART = chart("external-secrets", "2.0.0", {"webhook": {"annotations": dict(_WAIT)}})


def _issuer(*depends_on: str) -> CaseResource:
    issuer = kube("cert-manager.io/v1", "ClusterIssuer", "letsencrypt", {"spec": {"selfSigned": {}}})
    return CaseResource(issuer.type, issuer.name, issuer.inputs, depends_on=depends_on)


def _store(*depends_on: str, parent: str | None = None) -> CaseResource:
    store = kube("external-secrets.io/v1", "SecretStore", "github", {"spec": {}}, namespace="mcp-devtools")
    return CaseResource(store.type, store.name, store.inputs, parent, depends_on)


def _authorization(*depends_on: str) -> CaseResource:
    policy = kube(
        "security.istio.io/v1", "AuthorizationPolicy", "github", {"spec": {}}, namespace="mcp-devtools"
    )
    return CaseResource(policy.type, policy.name, policy.inputs, depends_on=depends_on)


_BASE = chart("base", "1.27.3")
_ISTIOD = chart("istiod", "1.27.3")
_SERVER = "mcpfleet:index:McpServer"


RULE = Rule(
    id="custom-resource-after-crd",
    description="Every custom resource is created after the chart installing its CRD, once that chart's "
    "webhook can be called.",
    severity="high",
    remediation="Create the custom resource with depends_on on the chart that installs its CRD (or give it a "
    "parent component that depends on it), and make the chart wait for its webhook's CA bundle "
    "(pulumi.com/waitFor on the webhook configurations, through the chart's values).",
    validate_stack=validate,
    tags=("deploy", "ordering"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case(
            "after cert-manager, which waits for its webhook",
            "pass",
            (_CERT_MANAGER_CHART, _issuer(_CERT_MANAGER_CHART.name)),
        ),
        Case(
            "after external-secrets through its server component",
            "pass",
            (
                _ESO_CHART,
                CaseResource(_SERVER, "github", {}, depends_on=(_ESO_CHART.name,)),
                _store(parent="github"),
            ),
        ),
        Case(
            "after both Istio charts",
            "pass",
            (
                _BASE,
                CaseResource(_ISTIOD.type, _ISTIOD.name, _ISTIOD.inputs, depends_on=(_BASE.name,)),
                _authorization(_ISTIOD.name),
            ),
        ),
        Case(
            "kube-prometheus-stack without its hook-made webhook",
            "pass",
            (
                chart(
                    "kube-prometheus-stack",
                    "88.5.3",
                    {"prometheusOperator": {"admissionWebhooks": {"enabled": False}}},
                ),
                CaseResource(
                    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
                    "github-monitor",
                    {
                        "apiVersion": "monitoring.coreos.com/v1",
                        "kind": "ServiceMonitor",
                        "metadata": {"name": "github", "namespace": "mcp-devtools"},
                    },
                    depends_on=("chart-kube-prometheus-stack",),
                ),
            ),
        ),
        Case("racing the chart", "violate", (_CERT_MANAGER_CHART, _issuer())),
        Case("no chart installs the CRD", "violate", (_issuer(),)),
        # Issue 11, item 11: cert-manager's webhook not ready when the issuer is created.
        Case(
            "cert-manager counted ready before its webhook",
            "violate",
            (chart("cert-manager", "v1.20.2", {"crds": {"enabled": True}}), _issuer("chart-cert-manager")),
        ),
        Case(
            "cert-manager without its CRDs",
            "violate",
            (
                chart("cert-manager", "v1.20.2", {**_READY_CERT_MANAGER, "crds": {"enabled": False}}),
                _issuer("chart-cert-manager"),
            ),
        ),
        Case(
            "external-secrets counted ready before its webhook",
            "violate",
            (chart("external-secrets", "2.0.0"), _store("chart-external-secrets")),
        ),
        Case("after istiod only", "violate", (_BASE, _ISTIOD, _authorization(_ISTIOD.name))),
        Case(
            "kube-prometheus-stack with its hook-made webhook",
            "violate",
            (
                chart("kube-prometheus-stack", "88.5.3"),
                CaseResource(
                    "kubernetes:monitoring.coreos.com/v1:PodMonitor",
                    "gateway-monitor",
                    {
                        "apiVersion": "monitoring.coreos.com/v1",
                        "kind": "PodMonitor",
                        "metadata": {"name": "gateway", "namespace": "mcp-gateway"},
                    },
                    depends_on=("chart-kube-prometheus-stack",),
                ),
            ),
        ),
    ),
)
