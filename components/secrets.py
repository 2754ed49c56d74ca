"""Secrets: how each server's secret references become the Secret its Deployment reads.

Cloud (eks): one AWS Secrets Manager secret per reference, created empty (owners put values in out of
band), read through External Secrets as the server's own IAM role (IRSA). Local: values from the stack's
`mcpfleet:secrets` config, kept Pulumi secrets from config to the Secret's `stringData`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster.eks import EksCluster, tags
from components.kube import kubernetes_resource
from components.manifests.secrets import (
    LOCAL_SECRETS_CONFIG_KEY,
    ROLE_ARN_ANNOTATION,
    STS_AUDIENCE,
    eso_chart,
    eso_namespace,
    external_secret,
    local_secret,
    missing_value_message,
    missing_values_message,
    not_a_string_message,
    secret_store,
    shared_store_keys,
    store_name,
)
from components.mesh import install_chart
from mcpfleet.catalog.models import secret_resource_name
from mcpfleet.fleet import FleetServer
from mcpfleet.stacks.models import Environment

TYPE_TOKEN = "mcpfleet:index:Secrets"
# Long enough to undo a mistaken removal, short enough that a deliberately deleted name frees up soon.
RECOVERY_WINDOW_DAYS = 7
READ_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")

# What a local stack's config holds under `mcpfleet:secrets`: store key -> value. The program reads it
# with `Config.get_object` (plain values, wrapped here at once) or `get_secret_object` (an Output).
LocalValues = Mapping[str, Any] | pulumi.Output[Any]


class MissingSecretValue(pulumi.RunError):
    """A local stack lacks the value of a secret a server declares.

    A RunError: `pulumi up` ends with the message alone, as for other bad input.
    """


class Secrets(pulumi.ComponentResource):
    """The secret sync of an environment: External Secrets in `external-secrets` on eks; nothing on an
    existing cluster, whose values come from the stack's config (see `server_secret_resources`)."""

    def __init__(self, name: str, settings: Environment, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.operator: pulumi.Resource | None = None
        delivery = "pulumi-config"
        if settings.cluster.provider == "eks":
            release = eso_chart()
            namespace = kubernetes_resource(
                f"{name}-namespace", eso_namespace(), pulumi.ResourceOptions(parent=self)
            )
            self.operator = install_chart(
                f"{name}-{release.release}",
                release,
                pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            delivery = f"external-secrets {release.version}"
        self.delivery = delivery
        self.register_outputs({"delivery": delivery})


@dataclass(frozen=True)
class ServerSecrets:
    """What the server's other objects need from its secrets.

    service_account_annotations: to add to the server's ServiceAccount (the IRSA role on eks).
    resources: what the Deployment should wait for (the Secret, or the ExternalSecret that fills it).
    """

    service_account_annotations: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    resources: list[pulumi.Resource] = field(default_factory=list)


def check_store_keys(servers: Sequence[FleetServer]) -> None:
    """On eks each store key is one Secrets Manager secret created by one server; refuse sharing."""
    shared = shared_store_keys(list(servers))
    if shared:
        lines = [f"  {key}: {', '.join(names)}" for key, names in shared.items()]
        raise ValueError(
            "secret keys referenced by more than one server (each key is one Secrets Manager secret,"
            " owned by one server):\n" + "\n".join(lines)
        )


def service_account_subject(server: FleetServer) -> str:
    return f"system:serviceaccount:{server.namespace}:{server.name}"


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer: str, subject: str) -> str:
    """Only tokens of exactly this ServiceAccount, minted for STS, may assume the role."""
    issuer = oidc_issuer.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{issuer}:sub": subject, f"{issuer}:aud": STS_AUDIENCE},
                    },
                }
            ],
        }
    )


def read_policy(secret_arns: Sequence[str]) -> str:
    """Read these secrets and nothing else. They use the aws/secretsmanager key, whose key policy already
    lets Secrets Manager decrypt for callers of this account, so no KMS statement is needed."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": list(READ_ACTIONS), "Resource": sorted(secret_arns)},
            ],
        }
    )


def server_secret_resources(
    server: FleetServer,
    settings: Environment,
    environment: str,
    cluster: EksCluster | None,
    local_values: LocalValues | None,
    parent: pulumi.Resource,
) -> ServerSecrets:
    """Create the server's secret plumbing as children of parent (its McpServer component).

    Nothing for a server without secrets. On eks: a Secrets Manager secret per reference, an IAM role
    for the server's ServiceAccount that may read exactly those, a SecretStore acting as that account and
    an ExternalSecret filling `<server>-secrets`. On an existing cluster: that Secret from local_values.
    """
    if not server.spec.secrets:
        return ServerSecrets()
    if settings.cluster.provider == "eks":
        if cluster is None:
            raise ValueError(f"server {server.name!r}: secrets on eks need the EksCluster")
        return _cloud(server, settings, environment, cluster, parent)
    return _local(server, environment, local_values, parent)


def _cloud(
    server: FleetServer,
    settings: Environment,
    environment: str,
    cluster: EksCluster,
    parent: pulumi.Resource,
) -> ServerSecrets:
    if settings.cluster.region is None:
        raise ValueError("an eks cluster needs region")
    aws_opts = pulumi.ResourceOptions(parent=parent, provider=cluster.aws_provider)
    labels = {
        "Environment": environment,
        "mcpfleet.io/server": server.name,
        "mcpfleet.io/team": server.spec.owner.team,
    }
    stored = []
    for ref in server.spec.secrets:
        name = store_name(settings, environment, ref.key)
        # No SecretVersion, ever: the value is put in by its owner, never passes through Pulumi.
        stored.append(
            aws.secretsmanager.Secret(
                secret_resource_name(server.name, ref.key),
                name=name,
                description=ref.description or f"{ref.env} of MCP server {server.name} ({environment})",
                recovery_window_in_days=RECOVERY_WINDOW_DAYS,
                tags=tags(name, **labels),
                opts=aws_opts,
            )
        )
    role = aws.iam.Role(
        f"{server.name}-secrets-reader",
        description=f"Reads the secrets of MCP server {server.name} ({environment}) for External Secrets",
        assume_role_policy=pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer).apply(
            lambda values: irsa_trust_policy(values[0], values[1], service_account_subject(server))
        ),
        tags=tags(f"{server.name}-secrets-reader", **labels),
        opts=aws_opts,
    )
    aws.iam.RolePolicy(
        f"{server.name}-secrets-read",
        role=role.id,
        policy=pulumi.Output.all(*[secret.arn for secret in stored]).apply(read_policy),
        opts=aws_opts,
    )
    _warn_while_empty(server, settings, environment, stored, cluster.aws_provider, parent)
    k8s_opts = pulumi.ResourceOptions(parent=parent)
    store = kubernetes_resource(
        f"{server.name}-secret-store", secret_store(server, settings.cluster.region), k8s_opts
    )
    synced = kubernetes_resource(
        f"{server.name}-external-secret",
        external_secret(server, settings, environment),
        pulumi.ResourceOptions(parent=parent, depends_on=[store]),
    )
    return ServerSecrets(service_account_annotations={ROLE_ARN_ANNOTATION: role.arn}, resources=[synced])


# The staging label of a secret's current value (Secrets Manager's own).
CURRENT_STAGE = "AWSCURRENT"


def holds_a_value(versions: Any) -> bool:
    """Whether a get_secret_versions result lists a current version (its value is never read)."""
    for version in getattr(versions, "versions", None) or []:
        if CURRENT_STAGE in (getattr(version, "version_stages", None) or []):
            return True
    return False


def _warn_while_empty(
    server: FleetServer,
    settings: Environment,
    environment: str,
    stored: list[aws.secretsmanager.Secret],
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
) -> None:
    """At `pulumi up`, once the secrets exist: name those that hold no value yet, with the command that
    puts each. Reads only the versions' metadata (ListSecretVersionIds), never a value. In a preview and the
    offline plan the secrets' ARNs are unknown, so nothing is asked."""
    checks = [
        aws.secretsmanager.get_secret_versions_output(
            secret_id=secret.arn, opts=pulumi.InvokeOptions(provider=provider)
        )
        for secret in stored
    ]

    def report(results: list[Any]) -> None:
        missing = [
            ref for ref, result in zip(server.spec.secrets, results, strict=True) if not holds_a_value(result)
        ]
        if missing:
            pulumi.log.warn(missing_values_message(server, settings, environment, missing), resource=parent)

    pulumi.Output.all(*checks).apply(report)


def _values_for(server: FleetServer, environment: str, values: object) -> dict[str, str]:
    """env var -> value of each reference; refuses a missing or non-string value, naming the fix."""
    if values is not None and not isinstance(values, Mapping):
        raise MissingSecretValue(f"{LOCAL_SECRETS_CONFIG_KEY} must map store keys to values")
    found = {}
    for ref in server.spec.secrets:
        value = (values or {}).get(ref.key)
        if value is None:
            raise MissingSecretValue(missing_value_message(server, ref, environment))
        if not isinstance(value, str):
            raise MissingSecretValue(not_a_string_message(server, ref, environment))
        found[ref.env] = value
    return dict(sorted(found.items()))


def _local(
    server: FleetServer, environment: str, local_values: LocalValues | None, parent: pulumi.Resource
) -> ServerSecrets:
    # Marked secret before anything else touches it: the engine encrypts it in state, and every display
    # (the offline plan too) shows "[secret]". (pulumi-kubernetes marks a Secret's stringData secret as
    # well; this does not rely on it.)
    string_data: pulumi.Output[dict[str, str]]
    if local_values is None or isinstance(local_values, Mapping):
        string_data = pulumi.Output.secret(_values_for(server, environment, local_values))
    else:
        # Checked as soon as the config resolves (config is always known), before the Secret is sent.
        string_data = pulumi.Output.secret(local_values).apply(
            lambda values: _values_for(server, environment, values)
        )
    created = kubernetes_resource(
        f"{server.name}-secrets", local_secret(server, string_data), pulumi.ResourceOptions(parent=parent)
    )
    return ServerSecrets(resources=[created])
