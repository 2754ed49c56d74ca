"""Router: the MCP router's Deployment and everything around it, in the gateway's namespace."""

from __future__ import annotations

import pulumi

from components.gateway.router_config import render_router_config
from components.kube import kubernetes_resource
from components.manifests.router import router_objects
from mcpfleet.fleet import Fleet

TYPE_TOKEN = "mcpfleet:index:Router"


class Router(pulumi.ComponentResource):
    """The router pool HAProxy forwards every routed request to (docs/router.md).

    Needs the gateway's namespace and its issuer-key ConfigMap, and Istio's CRDs (its
    AuthorizationPolicy): the Fleet orders it after the Gateway.
    """

    def __init__(
        self,
        name: str,
        fleet: Fleet,
        session_keys: pulumi.Input[str],
        image: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """session_keys: a Pulumi secret. image: the pinned image (`routerImage`), or None for the
        release tag, whose digest comes at deploy (previews and the offline plan only)."""
        super().__init__(TYPE_TOKEN, name, None, opts)
        # The exact file the pods read: what the router's own tests and the end-to-end tests load.
        self.config = render_router_config(fleet)
        child = pulumi.ResourceOptions(parent=self)
        for resource_name, obj in router_objects(fleet, self.config, session_keys, image).items():
            resource_opts = child
            if obj["kind"] == "Deployment":
                # After creation the autoscaler owns the replica count; do not fight it on every `up`.
                resource_opts = pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
                )
            kubernetes_resource(resource_name, obj, resource_opts)
        self.register_outputs({"namespace": fleet.settings.gateway_namespace})
