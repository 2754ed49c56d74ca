"""Router: the MCP router's Deployment and everything around it, in the gateway's namespace."""

from __future__ import annotations

import pulumi

from components.gateway.router_config import render_router_files
from components.kube import kubernetes_resource
from components.manifests.router import CONFIG_KEY, router_objects
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
        # The exact files the pods read (router.json, and the server files it names when the fleet does
        # not fit one ConfigMap): what the router's own tests and the end-to-end tests load.
        self.files = render_router_files(fleet)
        self.config = self.files[CONFIG_KEY]
        child = pulumi.ResourceOptions(parent=self)
        config_maps: list[pulumi.Resource] = []
        for resource_name, obj in router_objects(fleet, self.files, session_keys, image).items():
            resource_opts = child
            if obj["kind"] == "Deployment":
                resource_opts = pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        # After creation the autoscaler owns the replica count; do not fight it on every `up`.
                        ignore_changes=["spec.replicas"],
                        # Pods roll only once every file of the new configuration is in place: the
                        # Deployment names its ConfigMaps by name alone, which orders nothing.
                        depends_on=config_maps,
                    ),
                )
            created = kubernetes_resource(resource_name, obj, resource_opts)
            if obj["kind"] == "ConfigMap":
                config_maps.append(created)
        self.register_outputs({"namespace": fleet.settings.gateway_namespace})
