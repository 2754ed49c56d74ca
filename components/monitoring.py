"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana), the scrape configs of the gateway
and the MCP router, and the fleet's dashboards. Each server's own ServiceMonitor and alerts belong to its
McpServer."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kube import kubernetes_resource
from components.manifests.labels import PROMETHEUS_RELEASE
from components.manifests.monitoring import (
    CHART_NAME,
    CHART_REPOSITORY,
    CHART_VERSION,
    dashboard_config_maps,
    gateway_monitoring_objects,
    grafana_admin_secret,
    kube_prometheus_stack_values,
    monitoring_namespaces,
    router_monitoring_objects,
)
from mcpfleet.stacks.models import Environment

TYPE_TOKEN = "mcpfleet:index:Monitoring"


class Monitoring(pulumi.ComponentResource):
    """The monitoring stack of one environment, in `settings.monitoring_namespace`.

    `chart` is exposed so that ServiceMonitors and PrometheusRules created elsewhere can depend on it:
    their CRDs come with the chart.
    """

    def __init__(
        self,
        name: str,
        settings: Environment,
        grafana_admin_password: pulumi.Input[str],
        gateway_namespace: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """grafana_admin_password: a Pulumi secret (`pulumi config set --secret grafanaAdminPassword`).
        gateway_namespace: the Namespace the Gateway component creates, where the PodMonitors of the
        gateway and the router go (a missing namespace fails their creation)."""
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespaces = [
            kubernetes_resource(f"{name}-{role}", obj, pulumi.ResourceOptions(parent=self))
            for role, obj in monitoring_namespaces(settings).items()
        ]
        self.chart = k8s.helm.v4.Chart(
            f"{name}-{CHART_NAME}",
            chart=CHART_NAME,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            # The release name fixes the names the mesh and the NetworkPolicies expect (labels.py).
            name=PROMETHEUS_RELEASE,
            namespace=settings.monitoring_namespace,
            values=kube_prometheus_stack_values(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=namespaces),
        )
        # Their CRD comes with the chart; they go into the gateway's namespace.
        scrape_opts = pulumi.ResourceOptions(parent=self, depends_on=[self.chart, gateway_namespace])
        scrape_configs = {**gateway_monitoring_objects(settings), **router_monitoring_objects(settings)}
        for resource_name, obj in scrape_configs.items():
            kubernetes_resource(resource_name, obj, scrape_opts)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=namespaces)
        for resource_name, obj in dashboard_config_maps(settings).items():
            kubernetes_resource(resource_name, obj, in_namespace)
        kubernetes_resource(
            f"{name}-grafana-admin",
            grafana_admin_secret(settings, pulumi.Output.secret(grafana_admin_password)),
            in_namespace,
        )
        self.namespace = settings.monitoring_namespace
        self.register_outputs({"namespace": self.namespace, "chartVersion": CHART_VERSION})
