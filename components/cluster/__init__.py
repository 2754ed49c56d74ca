"""Pulumi components that create the Kubernetes cluster the fleet runs on."""
