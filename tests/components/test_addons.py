"""Cluster add-ons: GIVEN an environment, THEN cert-manager comes with the gateway's cert-manager TLS, and on
EKS the AWS Load Balancer Controller runs as its own IRSA role with its documented policy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from components.addons import (
    CERT_MANAGER_CHART,
    CERT_MANAGER_NAMESPACE,
    CERT_MANAGER_REPOSITORY,
    CERT_MANAGER_VERSION,
    LBC_APP_VERSION,
    LBC_CHART,
    LBC_NAMESPACE,
    LBC_POLICY_FILE,
    LBC_REPOSITORY,
    LBC_SERVICE_ACCOUNT,
    LBC_VERSION,
    TYPE_TOKEN,
    ClusterAddons,
    cert_manager_chart,
    load_balancer_controller_policy,
)
from components.cluster.eks import EksCluster
from mcpfleet.stacks.models import Environment
from tests.components.test_mesh import CHART_TYPE, environment
from tests.components.test_secrets import ACCOUNT, REGION, aws_outputs
from tests.mock_engine import Recorder, Registration, recording, run

POLICY_TYPE = "aws:iam/policy:Policy"
ATTACHMENT_TYPE = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ACM_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000"


def outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """The secrets tests' fake AWS attributes, and a policy's ARN (tests only)."""
    if args.typ == POLICY_TYPE:
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{args.name}"}
    return aws_outputs(args)


@pytest.fixture
def cloud() -> Iterator[Recorder]:
    yield from recording("dev", outputs)


@pytest.fixture
def local() -> Iterator[Recorder]:
    yield from recording("local")


def with_acm(settings: Environment) -> Environment:
    gateway = settings.gateway.model_copy(
        update={"tls": "acm", "cluster_issuer": None, "acm_certificate_arn": ACM_ARN}
    )
    return settings.model_copy(update={"gateway": gateway})


def build(settings: Environment, built: dict[str, ClusterAddons] | None = None) -> None:
    def program() -> None:
        cluster = EksCluster("mcpfleet-dev", settings.cluster) if settings.cluster.provider == "eks" else None
        addons = ClusterAddons("addons", settings, cluster)
        if built is not None:
            built["addons"] = addons

    run(program)


def listed(value: str | list[str]) -> list[str]:
    """A policy element that may be one string or a list of them."""
    return [value] if isinstance(value, str) else value


def chart(recorder: Recorder, chart_name: str) -> Registration:
    (found,) = [r for r in recorder.of_type(CHART_TYPE) if r.inputs["chart"] == chart_name]
    return found


# The pure builders


def test_chart_versions_are_pinned_exactly() -> None:
    # One exact release each, never a range: what deploys is what was reviewed.
    assert re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+", CERT_MANAGER_VERSION)
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", LBC_VERSION)
    assert re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+", LBC_APP_VERSION)
    # The chart's version follows its appVersion for this controller line (1.13.x ships v2.13.x).
    assert LBC_VERSION.split(".")[1:] == LBC_APP_VERSION.removeprefix("v").split(".")[1:]


def test_cert_manager_installs_its_crds_and_renders_no_hook() -> None:
    release = cert_manager_chart()
    assert release.values == {"crds": {"enabled": True}, "startupapicheck": {"enabled": False}}
    assert release.namespace == CERT_MANAGER_NAMESPACE == "cert-manager"


def test_the_committed_policy_is_a_policy_document_for_the_aws_partition() -> None:
    document = json.loads(LBC_POLICY_FILE.read_text(encoding="utf-8"))
    assert document["Version"] == "2012-10-17"
    actions = {action for statement in document["Statement"] for action in listed(statement["Action"])}
    # What the gateway's NLB needs from it, at least.
    assert {"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"} <= actions
    arns = [arn for statement in document["Statement"] for arn in listed(statement["Resource"])]
    assert all(arn == "*" or arn.startswith("arn:aws:") for arn in arns)


# local: an existing cluster with a self-signed issuer


def test_local_installs_cert_manager_and_no_aws_resource(local: Recorder) -> None:
    built: dict[str, ClusterAddons] = {}
    build(environment("local"), built)
    local.assert_unique_urns()
    component = local.one(TYPE_TOKEN)
    installed = local.one(CHART_TYPE)
    assert installed.parent == component.urn
    assert (installed.inputs["name"], installed.inputs["chart"], installed.inputs["version"]) == (
        CERT_MANAGER_CHART,
        CERT_MANAGER_CHART,
        CERT_MANAGER_VERSION,
    )
    assert installed.inputs["namespace"] == CERT_MANAGER_NAMESPACE
    assert installed.inputs["repositoryOpts"] == {"repo": CERT_MANAGER_REPOSITORY}
    assert installed.inputs["values"]["crds"] == {"enabled": True}
    (namespace,) = local.of_kind("Namespace")
    assert namespace.parent == component.urn
    assert namespace.inputs["metadata"]["name"] == CERT_MANAGER_NAMESPACE
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Out of the mesh: the API server must reach the webhook without mTLS.
    assert not [k for k in namespace.inputs["metadata"]["labels"] if k.startswith("istio")]
    assert namespace.urn in installed.dependencies
    assert not [
        r for r in local.registrations if r.type.startswith("aws:") or r.type == "pulumi:providers:aws"
    ]
    assert len(built["addons"].ready) == 1


# eks


def test_dev_installs_cert_manager_and_the_load_balancer_controller(cloud: Recorder) -> None:
    built: dict[str, ClusterAddons] = {}
    build(environment("dev"), built)
    cloud.assert_unique_urns()
    component = cloud.one(TYPE_TOKEN)
    manager, controller = chart(cloud, CERT_MANAGER_CHART), chart(cloud, LBC_CHART)
    assert manager.parent == controller.parent == component.urn
    assert (controller.inputs["name"], controller.inputs["version"], controller.inputs["namespace"]) == (
        LBC_CHART,
        LBC_VERSION,
        LBC_NAMESPACE,
    )
    assert controller.inputs["repositoryOpts"] == {"repo": LBC_REPOSITORY}
    assert len(built["addons"].ready) == 2


def test_the_controller_knows_its_cluster_region_and_vpc_and_runs_as_its_role(cloud: Recorder) -> None:
    build(environment("dev"))
    values = chart(cloud, LBC_CHART).inputs["values"]
    assert values["clusterName"] == "mcpfleet-dev"
    # Pods cannot reach instance metadata (hop limit 1): region and VPC are given, not discovered.
    assert values["region"] == REGION
    assert values["vpcId"] == f"{cloud.one('aws:ec2/vpc:Vpc').name}-id"
    role = cloud.named("addons-load-balancer-controller-role")
    assert values["serviceAccount"] == {
        "create": True,
        "name": LBC_SERVICE_ACCOUNT,
        "annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/{role.name}"},
    }
    assert values["enableServiceMutatorWebhook"] is False


def test_the_role_trusts_exactly_the_controllers_service_account(cloud: Recorder) -> None:
    build(environment("dev"))
    role = cloud.named("addons-load-balancer-controller-role")
    issuer = f"oidc.eks.{REGION}.amazonaws.com/id/TEST"
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:kube-system:aws-load-balancer-controller",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }


def test_the_role_holds_the_committed_policy_through_the_clusters_provider(cloud: Recorder) -> None:
    build(environment("dev"))
    component = cloud.one(TYPE_TOKEN)
    role = cloud.named("addons-load-balancer-controller-role")
    (policy,) = cloud.of_type(POLICY_TYPE)
    attachment = cloud.named("addons-load-balancer-controller-policy-attachment")
    assert attachment.type == ATTACHMENT_TYPE
    assert json.loads(policy.inputs["policy"]) == json.loads(LBC_POLICY_FILE.read_text(encoding="utf-8"))
    assert policy.inputs["policy"] == load_balancer_controller_policy()
    assert attachment.inputs["role"] == role.name
    assert attachment.inputs["policyArn"] == f"arn:aws:iam::{ACCOUNT}:policy/{policy.name}"
    aws_provider = cloud.one("pulumi:providers:aws")
    for resource in (role, policy, attachment):
        assert resource.parent == component.urn
        # The cluster's provider, pinned to the stack's region, not the ambient AWS configuration.
        assert resource.provider.split("::")[-2] == aws_provider.name
    # The controller starts with its permissions in place.
    assert attachment.urn in chart(cloud, LBC_CHART).dependencies


def test_acm_on_eks_installs_no_cert_manager(cloud: Recorder) -> None:
    built: dict[str, ClusterAddons] = {}
    build(with_acm(environment("dev")), built)
    assert [r.inputs["chart"] for r in cloud.of_type(CHART_TYPE)] == [LBC_CHART]
    assert not cloud.of_kind("Namespace")
    assert built["addons"].cert_manager is None
    assert built["addons"].ready == [built["addons"].load_balancer_controller]


def test_eks_without_the_cluster_is_refused(cloud: Recorder) -> None:
    settings = environment("dev")

    def program() -> None:
        ClusterAddons("addons", settings, None)

    with pytest.raises(ValueError, match="needs the EksCluster"):
        program()
