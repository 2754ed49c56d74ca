"""An existing cluster (kind for local): a Kubernetes provider for a kubeconfig context, no cloud at all."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from mcpfleet.stacks.models import Cluster


def existing_cluster_provider(
    name: str, settings: Cluster, opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """A provider pinned to the configured context, so `pulumi up` never lands on whatever is current."""
    # Without an explicit file the provider reads $KUBECONFIG or ~/.kube/config, as kubectl does.
    return k8s.Provider(
        name,
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        # Server-side apply lets the autoscaler and controllers own the fields they manage.
        enable_server_side_apply=True,
        opts=opts,
    )
