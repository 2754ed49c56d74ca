"""Secret delivery: GIVEN a server's references, THEN the cloud creates empty store entries readable by that
server alone, and local delivery keeps every value a Pulumi secret."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from components.cluster.eks import EksCluster
from components.manifests.secrets import (
    ESO_CHART_VERSION,
    ESO_REPOSITORY,
    ROLE_ARN_ANNOTATION,
    external_secret,
    secret_store,
    set_command,
)
from components.secrets import (
    TYPE_TOKEN,
    MissingSecretValue,
    Secrets,
    ServerSecrets,
    check_store_keys,
    server_secret_resources,
)
from mcpfleet.catalog.models import SecretRef
from mcpfleet.fleet import FleetServer
from mcpfleet.plan.engine import run_program
from tests.components.test_mesh import CHART_TYPE, environment, golden_server
from tests.mock_engine import Parent, Recorder, recording, run

ACCOUNT = "123456789012"
REGION = "eu-west-1"  # the dev and prod stacks' region
ISSUER = f"https://oidc.eks.{REGION}.amazonaws.com/id/TEST"
SENTINEL = "s3cr3t-sentinel-value"
SECRET_TYPE = "aws:secretsmanager/secret:Secret"


def aws_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What AWS would compute for the resources these tests read back (fake values, tests only)."""
    if args.typ == "aws:eks/cluster:Cluster":
        return {
            "endpoint": "https://TEST.eks.amazonaws.com",
            "certificateAuthority": {"data": "VEVTVA=="},
            "identities": [{"oidcs": [{"issuer": ISSUER}]}],
            "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{args.inputs['name']}",
        }
    if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{args.inputs['url'].removeprefix('https://')}"}
    if args.typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{args.name}", "name": args.name}
    if args.typ == SECRET_TYPE:
        return {"arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{args.inputs['name']}-AbCdEf"}
    if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
        return {"latestVersion": 1}
    return {}


@pytest.fixture
def cloud() -> Iterator[Recorder]:
    yield from recording("dev", aws_outputs)


@pytest.fixture
def local() -> Iterator[Recorder]:
    yield from recording("local")


def other_server(server: FleetServer) -> FleetServer:
    """A second server with its own secret, beside search in the same namespace."""
    spec = server.spec.model_copy(
        update={"name": "other", "secrets": [SecretRef(key="other/token", env="OTHER_TOKEN")]}
    )
    return dataclasses.replace(server, spec=spec)


def build_cloud(servers: list[FleetServer]) -> dict[str, ServerSecrets]:
    settings = environment("dev")
    built: dict[str, ServerSecrets] = {}

    def program() -> None:
        cluster = EksCluster("mcpfleet-dev", settings.cluster)
        for server in servers:
            built[server.name] = server_secret_resources(
                server, settings, "dev", cluster, None, Parent(server.name)
            )

    run(program)
    return built


def secrets_component(env: str) -> None:
    Secrets("secrets", environment(env))


# The pure builders


def test_secret_store_authenticates_as_the_servers_own_service_account() -> None:
    server = golden_server("search", "dev")
    store = secret_store(server, REGION)
    assert store["apiVersion"] == "external-secrets.io/v1" and store["kind"] == "SecretStore"
    assert store["metadata"]["name"] == "search" and store["metadata"]["namespace"] == server.namespace
    assert store["spec"] == {
        "provider": {
            "aws": {
                "service": "SecretsManager",
                "region": REGION,
                "auth": {"jwt": {"serviceAccountRef": {"name": "search"}}},
            }
        }
    }


def test_external_secret_fills_the_secret_the_deployment_reads() -> None:
    server, settings = golden_server("search", "dev"), environment("dev")
    synced = external_secret(server, settings, "dev")
    assert synced["apiVersion"] == "external-secrets.io/v1" and synced["kind"] == "ExternalSecret"
    assert synced["metadata"]["name"] == "search" and synced["metadata"]["namespace"] == server.namespace
    assert synced["spec"] == {
        "refreshInterval": "1h",
        "secretStoreRef": {"name": "search", "kind": "SecretStore"},
        "target": {"name": "search-secrets", "creationPolicy": "Owner"},
        "data": [{"secretKey": "SEARCH_API_KEY", "remoteRef": {"key": "mcpfleet/dev/search/api-key"}}],
    }


def test_a_store_key_shared_by_two_servers_is_refused() -> None:
    search = golden_server("search", "dev")
    twin = dataclasses.replace(search, spec=search.spec.model_copy(update={"name": "twin"}))
    check_store_keys([search, other_server(search)])
    with pytest.raises(ValueError, match=r"search/api-key: search, twin"):
        check_store_keys([search, twin])


def test_the_config_command_quotes_keys_with_dots() -> None:
    assert set_command("github/pat", "local") == (
        "pulumi config set --secret --type string --path 'mcpfleet:secrets.github/pat' -s local"
    )
    assert "--path 'mcpfleet:secrets[\"my.key\"]'" in set_command("my.key", "local")


# eks, under mocks


def test_cloud_creates_one_empty_store_entry_per_reference(cloud: Recorder) -> None:
    search = golden_server("search", "dev")
    build_cloud([search, other_server(search)])
    cloud.assert_unique_urns()
    secrets = cloud.of_type(SECRET_TYPE)
    assert sorted(s.inputs["name"] for s in secrets) == [
        "mcpfleet/dev/other/token",
        "mcpfleet/dev/search/api-key",
    ]
    aws_provider = cloud.one("pulumi:providers:aws")
    for secret in secrets:
        assert secret.inputs["recoveryWindowInDays"] == 7
        # The aws/secretsmanager key: no customer key to grant, no value anywhere.
        assert not {"kmsKeyId", "secretString", "secretBinary"} & set(secret.inputs)
        assert secret.inputs["tags"]["Environment"] == "dev"
        # The cluster's provider, pinned to the stack's region, not the ambient AWS configuration.
        assert secret.provider.split("::")[-2] == aws_provider.name
    assert not [r for r in cloud.registrations if "secretVersion" in r.type or "SecretVersion" in r.type]


def test_each_role_reads_exactly_its_servers_secrets_as_exactly_its_service_account(cloud: Recorder) -> None:
    search = golden_server("search", "dev")
    built = build_cloud([search, other_server(search)])
    arns = {
        s.inputs["name"]: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{s.inputs['name']}-AbCdEf"
        for s in cloud.of_type(SECRET_TYPE)
    }
    oidc = cloud.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    oidc_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/TEST"
    issuer = f"oidc.eks.{REGION}.amazonaws.com/id/TEST"
    assert oidc.inputs["url"] == ISSUER

    for name, key in (("search", "mcpfleet/dev/search/api-key"), ("other", "mcpfleet/dev/other/token")):
        role = cloud.named(f"{name}-secrets-reader")
        trust = json.loads(role.inputs["assumeRolePolicy"])
        (statement,) = trust["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Federated": oidc_arn}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:{search.namespace}:{name}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }
        }

        policy = cloud.named(f"{name}-secrets-read")
        assert policy.inputs["role"] == f"{role.name}-id"
        (grant,) = json.loads(policy.inputs["policy"])["Statement"]
        assert grant == {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": [arns[key]],
        }
        # The ServiceAccount annotation the McpServer adds: the role ESO assumes for the server.
        assert set(built[name].service_account_annotations) == {ROLE_ARN_ANNOTATION}


def test_cloud_syncs_through_a_per_server_store_and_external_secret(cloud: Recorder) -> None:
    search = golden_server("search", "dev")
    built = build_cloud([search])
    parent = cloud.named("search")
    (store,) = cloud.of_kind("SecretStore")
    (synced,) = cloud.of_kind("ExternalSecret")
    assert store.type == "kubernetes:external-secrets.io/v1:SecretStore"
    assert synced.type == "kubernetes:external-secrets.io/v1:ExternalSecret"
    assert store.parent == synced.parent == parent.urn
    assert store.urn in synced.dependencies
    assert synced.inputs["spec"]["target"] == {"name": "search-secrets", "creationPolicy": "Owner"}
    assert synced.inputs["spec"]["data"] == [
        {"secretKey": "SEARCH_API_KEY", "remoteRef": {"key": "mcpfleet/dev/search/api-key"}}
    ]
    assert store.inputs["spec"]["provider"]["aws"]["auth"] == {
        "jwt": {"serviceAccountRef": {"name": "search"}}
    }
    # The Deployment waits for the ExternalSecret; ESO, not Pulumi, writes the Secret.
    assert [r.urn for r in cloud.registrations if r.name == "search-external-secret"] == [synced.urn]
    assert len(built["search"].resources) == 1
    assert not cloud.of_kind("Secret")


def test_a_server_without_secrets_gets_nothing(cloud: Recorder) -> None:
    files = golden_server("files", "dev")
    assert not files.spec.secrets
    assert build_cloud([files]) == {"files": ServerSecrets()}
    assert not cloud.of_type(SECRET_TYPE) and not cloud.of_kind("ExternalSecret")


def test_secrets_component_installs_the_pinned_operator_on_eks(cloud: Recorder) -> None:
    run(lambda: secrets_component("dev"))
    component = cloud.one(TYPE_TOKEN)
    chart = cloud.one(CHART_TYPE)
    assert chart.parent == component.urn
    assert (chart.inputs["name"], chart.inputs["chart"], chart.inputs["version"]) == (
        "external-secrets",
        "external-secrets",
        ESO_CHART_VERSION,
    )
    assert chart.inputs["namespace"] == "external-secrets"
    assert chart.inputs["repositoryOpts"] == {"repo": ESO_REPOSITORY}
    assert chart.inputs["values"]["processClusterStore"] is False
    (namespace,) = cloud.of_kind("Namespace")
    assert namespace.inputs["metadata"]["name"] == "external-secrets"
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.urn in chart.dependencies


# local


def test_secrets_component_installs_nothing_locally(local: Recorder) -> None:
    run(lambda: secrets_component("local"))
    assert [r.type for r in local.registrations if r.type != "pulumi:pulumi:Stack"] == [TYPE_TOKEN]


def local_program(read: str) -> Any:
    search, settings = golden_server("search", "local"), environment("local")

    def program() -> None:
        config = pulumi.Config("mcpfleet")
        values = config.get_secret_object("secrets") if read == "secret" else config.get_object("secrets")
        server_secret_resources(search, settings, "local", None, values, Parent(search.name))

    return program


@pytest.mark.parametrize("read", ["secret", "plain"])
def test_a_local_value_never_appears_in_anything_recorded(read: str) -> None:
    registrations = run_program(
        local_program(read),
        project="mcpfleet",
        stack="local",
        config={"mcpfleet:secrets": {"search/api-key": SENTINEL}},
    )
    (secret,) = [r for r in registrations if r.inputs.get("kind") == "Secret"]
    assert secret.inputs["metadata"]["name"] == "search-secrets"
    assert secret.inputs["metadata"]["namespace"] == "mcp-servers"
    assert secret.inputs["stringData"] == {"SEARCH_API_KEY": "[secret]"}
    for registration in registrations:
        assert SENTINEL not in json.dumps(registration.as_json())


def test_the_local_secret_holds_the_value_under_its_env_var(local: Recorder) -> None:
    search, settings = golden_server("search", "local"), environment("local")
    seen: dict[str, Any] = {}

    def program() -> Any:
        values = pulumi.Output.secret({"search/api-key": SENTINEL})
        built = server_secret_resources(search, settings, "local", None, values, Parent(search.name))

        async def collect() -> None:
            (created,) = built.resources
            assert isinstance(created, pulumi.CustomResource)
            seen["secret"] = await created.string_data.is_secret()  # type: ignore[attr-defined]
            seen["data"] = await created.string_data.future()  # type: ignore[attr-defined]

        return collect()

    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    assert seen == {"secret": True, "data": {"SEARCH_API_KEY": SENTINEL}}


def build_local(values: Any, as_output: bool = False) -> None:
    search, settings = golden_server("search", "local"), environment("local")

    def program() -> None:
        given = pulumi.Output.secret(values) if as_output else values
        server_secret_resources(search, settings, "local", None, given, Parent(search.name))

    run(program)


@pytest.mark.parametrize(
    ("values", "as_output"), [(None, False), ({}, False), ({"other/key": "x"}, False), ({}, True)]
)
def test_a_missing_local_value_names_server_key_and_command(
    local: Recorder, values: Any, as_output: bool
) -> None:
    with pytest.raises(MissingSecretValue) as raised:
        build_local(values, as_output)
    message = str(raised.value)
    assert "'search'" in message and "'search/api-key'" in message and "SEARCH_API_KEY" in message
    assert (
        "pulumi config set --secret --type string --path 'mcpfleet:secrets.search/api-key' -s local"
        in message
    )
    assert not local.of_kind("Secret")


def test_a_local_value_of_the_wrong_type_is_refused_without_showing_it(local: Recorder) -> None:
    with pytest.raises(MissingSecretValue, match="as a string") as raised:
        build_local({"search/api-key": 40125})
    assert "40125" not in str(raised.value)
