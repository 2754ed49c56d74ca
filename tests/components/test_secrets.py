"""Secret delivery: GIVEN a server's references, THEN the cloud creates empty store entries readable by that
server alone, and local delivery keeps every value a Pulumi secret."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from components.cluster.eks import EksCluster
from components.manifests.secrets import (
    ESO_CHART_VERSION,
    ESO_REPOSITORY,
    PUT_VALUES_ANNOTATION,
    ROLE_ARN_ANNOTATION,
    external_secret,
    secret_store,
    set_command,
)
from components.manifests.workload import SKIP_AWAIT_ANNOTATION
from components.secrets import (
    TYPE_TOKEN,
    MissingSecretValue,
    Secrets,
    ServerSecrets,
    check_store_keys,
    server_secret_resources,
)
from components.server import server_objects
from mcpfleet.catalog.models import SecretRef
from mcpfleet.fleet import FleetServer
from mcpfleet.plan.engine import run_program
from tests.components.test_mesh import CHART_TYPE, environment, golden_server
from tests.mock_engine import Echo, Parent, Recorder, recording, run

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


# The first deploy: values put in later, a deploy that does not wait for them


def test_the_external_secret_names_the_command_that_puts_each_value() -> None:
    server, settings = golden_server("search", "dev"), environment("dev")
    synced = external_secret(server, settings, "dev")
    assert synced["metadata"]["annotations"][PUT_VALUES_ANNOTATION] == (
        "aws secretsmanager put-secret-value --region eu-west-1 --secret-id mcpfleet/dev/search/api-key"
        " --secret-string file://VALUE_FILE"
    )


@pytest.mark.parametrize(("env", "waits"), [("dev", False), ("local", True)])
def test_a_server_whose_values_come_later_is_not_awaited(env: str, waits: bool) -> None:
    # eks: the values reach Secrets Manager out of band, after the deploy that made the empty secrets;
    # local: they come from the stack's config in the same run.
    settings = environment(env)
    search, files = golden_server("search", env), golden_server("files", env)
    assert search.spec.secrets and not files.spec.secrets
    for server, awaited in ((search, waits), (files, True)):
        objects = server_objects(server, settings)
        for name in (f"{server.name}-deployment", f"{server.name}-service"):
            annotations = objects[name]["metadata"].get("annotations", {})
            assert (SKIP_AWAIT_ANNOTATION not in annotations) is awaited, (server.name, name)
            if not awaited:
                assert annotations[SKIP_AWAIT_ANNOTATION] == "true"
        # The headless Service is never awaited for endpoints anyway.
        assert objects[f"{server.name}-gateway-endpoints"]["spec"]["clusterIP"] == "None"


class VersionsMocks(Echo):
    """AWS answering ListSecretVersionIds: versions (with their stages) per secret ARN."""

    def __init__(self, current: set[str]) -> None:
        super().__init__(aws_outputs)
        self.current = current
        self.asked: list[str] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token != "aws:secretsmanager/getSecretVersions:getSecretVersions":
            return {}, []
        arn = str(args.args["secretId"])
        self.asked.append(arn)
        stages = ["AWSCURRENT"] if any(arn.endswith(f"{key}-AbCdEf") for key in self.current) else []
        versions = [{"versionId": "v1", "versionStages": stages, "createdTime": "", "lastAccessedDate": ""}]
        return {
            "arn": arn,
            "name": arn,
            "secretArn": arn,
            "secretId": arn,
            "versions": versions if stages else [],
        }, []


@pytest.mark.parametrize(("filled", "warned"), [(set(), True), ({"search/api-key"}, False)])
def test_pulumi_up_names_each_value_still_missing_and_the_command(
    caplog: pytest.LogCaptureFixture, filled: set[str], warned: bool
) -> None:
    mocks = VersionsMocks(filled)
    for _ in recording("dev", mocks=mocks):
        with caplog.at_level(logging.WARNING):
            build_cloud([golden_server("search", "dev")])
    # Asked of AWS once the secret exists, by its ARN: the versions' metadata, never a value.
    assert mocks.asked == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mcpfleet/dev/search/api-key-AbCdEf"
    ]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    found = [m for m in messages if "MCP server search starts once Secrets Manager holds a value" in m]
    assert bool(found) is warned
    if warned:
        [message] = found
        assert (
            "mcpfleet/dev/search/api-key" in message
            and "its pods wait for them, the deploy does not" in message
        )
        assert (
            "aws secretsmanager put-secret-value --region eu-west-1 --secret-id mcpfleet/dev/search/api-key"
            " --secret-string file://VALUE_FILE" in message
        )
        assert "kubectl -n mcp-search annotate externalsecret search force-sync=" in message


def test_nothing_is_asked_of_aws_in_a_preview() -> None:
    # The offline plan (a preview): the secrets' ARNs are unknown, so no value can be looked for.
    calls: list[str] = []

    class Recording(Echo):
        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
            calls.append(args.token)
            return {}, []

    settings = environment("dev")

    def program() -> None:
        cluster = EksCluster("mcpfleet-dev", settings.cluster)
        server_secret_resources(
            golden_server("search", "dev"), settings, "dev", cluster, None, Parent("search")
        )

    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(Recording(), project="mcpfleet", stack="dev", preview=True)
    try:
        run(program)
    finally:
        pulumi_settings.ROOT.set(None)
    assert "aws:secretsmanager/getSecretVersions:getSecretVersions" not in calls
