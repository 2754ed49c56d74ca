"""Secret delivery as plain data: External Secrets objects for the cloud, a Secret for local, and their names.

Values never pass through here: cloud values live in AWS Secrets Manager and reach the cluster through
External Secrets; local values arrive as an opaque (Pulumi secret) `string_data` argument.
"""

from __future__ import annotations

import json

from components.manifests import K8sObject
from components.manifests.labels import PART_OF, server_labels
from components.manifests.mesh import ChartRelease
from components.manifests.workload import secrets_name
from mcpfleet.catalog.models import SecretRef
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

ESO_NAMESPACE = "external-secrets"
# The External Secrets Operator's Helm repository and chart (external-secrets.io, "Getting started").
ESO_REPOSITORY = "https://charts.external-secrets.io"
ESO_CHART = "external-secrets"
# deploy/charts/external-secrets/Chart.yaml in external-secrets/external-secrets at tag helm-chart-2.0.0:
# version 2.0.0, appVersion v2.0.0, released 2026-02-06 (docs/introduction/stability-support.md). It
# serves only `external-secrets.io/v1`: v1beta1 stopped being served in 0.17.0.
ESO_CHART_VERSION = "2.0.0"
ESO_API_VERSION = "external-secrets.io/v1"
# IRSA: the role a ServiceAccount's tokens may assume. ESO reads it to fetch as the server (below).
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
# The audience ESO requests for the ServiceAccount token, unless `eks.amazonaws.com/audience` says
# otherwise; the IAM trust policy must expect it.
STS_AUDIENCE = "sts.amazonaws.com"
LOCAL_SECRETS_CONFIG_KEY = "mcpfleet:secrets"
# On each ExternalSecret: the command that puts each value it waits for, one a line (the offline plan's
# manifests and `kubectl describe externalsecret` show it where the missing value is noticed).
PUT_VALUES_ANNOTATION = "mcpfleet.io/put-values"
# External Secrets retries a failed sync with exponential backoff from 1 s to 7 minutes (chart 2.0.0,
# pkg/controllers/common/common.go BuildRateLimiter): a value put in is synced within 7 minutes, or at once
# when the ExternalSecret is annotated.
RETRY_AT_MOST = "7 minutes"


# pulumi-kubernetes waits on an object with this annotation until the JSONPath matches (components/addons.py).
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
CA_BUNDLE_INJECTED = "jsonpath={.webhooks[*].clientConfig.caBundle}"


def eso_chart() -> ChartRelease:
    """ESO, processing only namespaced stores and never pushing secrets back out.

    Cluster-wide stores would let any namespace read through one identity, which defeats the per-server
    roles; PushSecret writes cluster Secrets to the store, which nothing here needs.

    Its validating webhooks (`failurePolicy: Fail`) check every SecretStore and ExternalSecret, and can be
    called only once its cert-controller has injected their CA bundle: the chart counts as ready (and the
    servers' stores are created) only then. Chart 2.0.0 puts `webhook.annotations` on both of its
    ValidatingWebhookConfigurations (`templates/validatingwebhook.yaml`) and renders them with no
    `caBundle`, so the wait ends exactly at the injection.
    """
    return ChartRelease(
        release="external-secrets",
        chart=ESO_CHART,
        version=ESO_CHART_VERSION,
        repository=ESO_REPOSITORY,
        namespace=ESO_NAMESPACE,
        values={
            "installCRDs": True,
            "processClusterStore": False,
            "processClusterExternalSecret": False,
            "processPushSecret": False,
            "processClusterPushSecret": False,
            "webhook": {"annotations": {WAIT_FOR_ANNOTATION: CA_BUNDLE_INJECTED}},
        },
    )


def eso_namespace() -> K8sObject:
    """ESO's own namespace: its chart runs non-root, read-only, all capabilities dropped, so `restricted`
    holds. It stays out of the mesh: the API server calls its webhook in plaintext."""
    labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ESO_NAMESPACE, "labels": labels}}


def store_name(settings: Environment, environment: str, key: str) -> str:
    """The Secrets Manager name of a store key: `<prefix><environment>/<key>`."""
    return f"{settings.secrets.name_prefix}{environment}/{key}"


def secret_store(server: FleetServer, region: str) -> K8sObject:
    """A store only this server's ExternalSecret uses, authenticated as the server's own ServiceAccount.

    ESO requests a token for that ServiceAccount and assumes the role in its `eks.amazonaws.com/role-arn`
    annotation, so it can read exactly what the server may read, nothing more.
    """
    return {
        "apiVersion": ESO_API_VERSION,
        "kind": "SecretStore",
        "metadata": {"name": server.name, "namespace": server.namespace, "labels": server_labels(server)},
        "spec": {
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": region,
                    "auth": {"jwt": {"serviceAccountRef": {"name": server.name}}},
                }
            }
        },
    }


def put_value_command(settings: Environment, environment: str, key: str) -> str:
    """The command that puts a value into the store key's Secrets Manager secret (the value from a file, so
    it stays out of shell history and process lists)."""
    return (
        f"aws secretsmanager put-secret-value --region {settings.cluster.region}"
        f" --secret-id {store_name(settings, environment, key)} --secret-string file://VALUE_FILE"
    )


def sync_now_command(server: FleetServer) -> str:
    """Any change to an ExternalSecret makes External Secrets sync it at once."""
    return (
        f"kubectl -n {server.namespace} annotate externalsecret {server.name}"
        ' force-sync="$(date +%s)" --overwrite'
    )


def missing_values_message(
    server: FleetServer, settings: Environment, environment: str, missing: list[SecretRef]
) -> str:
    """What `pulumi up` says of a server whose Secrets Manager secrets hold no value yet."""
    lines = [
        f"MCP server {server.name} starts once Secrets Manager holds a value for"
        f" {', '.join(store_name(settings, environment, ref.key) for ref in missing)}: its pods wait for"
        " them, the deploy does not. Put each with:"
    ]
    lines += [f"  {put_value_command(settings, environment, ref.key)}" for ref in missing]
    lines.append(
        f"External Secrets then syncs within {RETRY_AT_MOST}; to sync at once: {sync_now_command(server)}"
    )
    return "\n".join(lines)


def external_secret(server: FleetServer, settings: Environment, environment: str) -> K8sObject:
    """Sync each referenced store key into the Secret the Deployment reads, keyed by its env var.

    Until every key holds a value the sync fails and is retried (RETRY_AT_MOST); the Secret, and so the
    server's pods, appear once it succeeds."""
    commands = "\n".join(put_value_command(settings, environment, ref.key) for ref in server.spec.secrets)
    return {
        "apiVersion": ESO_API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {
            "name": server.name,
            "namespace": server.namespace,
            "labels": server_labels(server),
            "annotations": {PUT_VALUES_ANNOTATION: commands},
        },
        "spec": {
            "refreshInterval": settings.secrets.refresh_interval,
            "secretStoreRef": {"name": server.name, "kind": "SecretStore"},
            # Owner: the Secret goes when the ExternalSecret goes.
            "target": {"name": secrets_name(server), "creationPolicy": "Owner"},
            "data": [
                {"secretKey": ref.env, "remoteRef": {"key": store_name(settings, environment, ref.key)}}
                for ref in server.spec.secrets
            ],
        },
    }


def local_secret(server: FleetServer, string_data: object) -> K8sObject:
    """The Secret the Deployment reads; string_data is passed through untouched (a Pulumi secret)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secrets_name(server),
            "namespace": server.namespace,
            "labels": server_labels(server),
        },
        "type": "Opaque",
        "stringData": string_data,
    }


def config_path(key: str) -> str:
    """`--path` argument that sets store key `key` under `mcpfleet:secrets` (brackets when it has a dot)."""
    if "." in key:
        return f"{LOCAL_SECRETS_CONFIG_KEY}[{json.dumps(key)}]"
    return f"{LOCAL_SECRETS_CONFIG_KEY}.{key}"


def set_command(key: str, environment: str) -> str:
    # `--type string`: with `--path`, pulumi would otherwise store "0123" as the number 123. No value on
    # the command line: pulumi prompts for it, and it stays out of shell history.
    return f"pulumi config set --secret --type string --path '{config_path(key)}' -s {environment}"


def missing_value_message(server: FleetServer, ref: SecretRef, environment: str) -> str:
    return (
        f"server {server.name!r} needs secret {ref.key!r} (env {ref.env}) but stack {environment!r} has no"
        f" value for it in {LOCAL_SECRETS_CONFIG_KEY}. Set it with (pulumi prompts for the value):\n"
        f"  {set_command(ref.key, environment)}"
    )


def not_a_string_message(server: FleetServer, ref: SecretRef, environment: str) -> str:
    return (
        f"server {server.name!r} needs secret {ref.key!r} (env {ref.env}) as a string, but stack"
        f" {environment!r} holds another type in {LOCAL_SECRETS_CONFIG_KEY} (set with `--path` and no"
        f" `--type`). Set it again with (pulumi prompts for the value):\n"
        f"  {set_command(ref.key, environment)}"
    )


def shared_store_keys(servers: list[FleetServer]) -> dict[str, list[str]]:
    """Store keys referenced by more than one server, with those servers' names."""
    owners: dict[str, list[str]] = {}
    for server in servers:
        for ref in server.spec.secrets:
            owners.setdefault(ref.key, []).append(server.name)
    return {key: names for key, names in sorted(owners.items()) if len(names) > 1}
