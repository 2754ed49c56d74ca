"""Cluster add-ons: GIVEN an environment, THEN cert-manager comes with the gateway's cert-manager TLS (on EKS
with the ACME ClusterIssuer the Certificate names, answering DNS-01 in Route53 as its own narrow role), on EKS
the AWS Load Balancer Controller runs as its own IRSA role with its documented policy and a default encrypted
gp3 StorageClass exists, and on an existing cluster metrics-server comes from its pinned chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from components.addons import (
    ACME_ACCOUNT_KEY_SECRET,
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
    METRICS_SERVER_CHART,
    TYPE_TOKEN,
    ClusterAddons,
    acme_challenge_name,
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
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/test-key"
ISSUER_TYPE = "kubernetes:cert-manager.io/v1:ClusterIssuer"
STORAGE_CLASS_TYPE = "kubernetes:storage.k8s.io/v1:StorageClass"
ROLE_POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"


def outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """The secrets tests' fake AWS attributes, a policy's and a key's ARN (tests only)."""
    if args.typ == POLICY_TYPE:
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{args.name}"}
    if args.typ == "aws:kms/key:Key":
        return {"arn": KEY_ARN}
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
    assert release.values["crds"] == {"enabled": True}
    assert release.values["startupapicheck"] == {"enabled": False}
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
    installed = chart(local, CERT_MANAGER_CHART)
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
    # The self-signed issuer is the gateway's; no ACME issuer, no StorageClass (kind has its own).
    assert not local.of_type(ISSUER_TYPE) and not local.of_type(STORAGE_CLASS_TYPE)


def test_local_gets_metrics_server_from_its_pinned_chart(local: Recorder) -> None:
    # kind has no metrics-server: without one every HorizontalPodAutoscaler stays inert.
    build(environment("local"))
    installed = chart(local, METRICS_SERVER_CHART)
    assert installed.parent == local.one(TYPE_TOKEN).urn
    assert (installed.inputs["version"], installed.inputs["namespace"]) == ("3.13.1", "kube-system")
    assert installed.inputs["repositoryOpts"] == {"repo": "https://kubernetes-sigs.github.io/metrics-server/"}
    # kind's kubelets serve self-signed certificates.
    assert installed.inputs["values"] == {"args": ["--kubelet-insecure-tls"]}


def test_eks_has_no_metrics_server_chart(cloud: Recorder) -> None:
    # EKS gets the metrics-server add-on (components/cluster/eks.py); a chart too would fight it.
    build(environment("dev"))
    assert not [r for r in cloud.of_type(CHART_TYPE) if r.inputs["chart"] == METRICS_SERVER_CHART]


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
    addons = built["addons"]
    assert addons.ready == [addons.cert_manager, addons.cluster_issuer, addons.load_balancer_controller]


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
    # TLS ends at the load balancer: no issuer, and no role may touch Route53.
    assert not cloud.of_type(ISSUER_TYPE) and built["addons"].cert_manager_role is None


def test_eks_without_the_cluster_is_refused(cloud: Recorder) -> None:
    settings = environment("dev")

    def program() -> None:
        ClusterAddons("addons", settings, None)

    with pytest.raises(ValueError, match="need the EksCluster"):
        program()


# eks: the certificate's issuer, really issuing


def without_dns(settings: Environment) -> Environment:
    return settings.model_copy(update={"dns": None})


def test_the_issuer_the_certificate_names_is_created_after_cert_manager(cloud: Recorder) -> None:
    settings = environment("dev")
    build(settings)
    issuer = cloud.one(ISSUER_TYPE)
    assert issuer.parent == cloud.one(TYPE_TOKEN).urn
    assert issuer.inputs["metadata"]["name"] == settings.gateway.cluster_issuer == "letsencrypt"
    # Its CRD and the webhook that validates it come with the chart.
    assert chart(cloud, CERT_MANAGER_CHART).urn in issuer.dependencies
    acme = issuer.inputs["spec"]["acme"]
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["privateKeySecretRef"] == {"name": ACME_ACCOUNT_KEY_SECRET}
    assert "email" not in acme
    assert settings.dns is not None
    (solver,) = acme["solvers"]
    assert solver == {
        "selector": {"dnsZones": [settings.domain]},
        # No credentials in the issuer: cert-manager's own role, through its ServiceAccount (ambient).
        "dns01": {"route53": {"region": REGION, "hostedZoneID": settings.dns.hosted_zone_id}},
    }
    # No HTTP-01 anywhere: the gateway routes MCP paths only.
    assert "http01" not in json.dumps(issuer.inputs)


def test_cert_manager_runs_as_a_role_that_may_only_answer_the_domains_challenge(cloud: Recorder) -> None:
    settings = environment("dev")
    assert settings.dns is not None
    build(settings)
    role = cloud.named("addons-cert-manager-role")
    issuer_host = f"oidc.eks.{REGION}.amazonaws.com/id/TEST"
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {
            f"{issuer_host}:sub": "system:serviceaccount:cert-manager:cert-manager",
            f"{issuer_host}:aud": "sts.amazonaws.com",
        }
    }
    values = chart(cloud, CERT_MANAGER_CHART).inputs["values"]
    assert values["serviceAccount"] == {
        "name": "cert-manager",
        "annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/{role.name}"},
    }
    policy = cloud.named("addons-cert-manager-dns01")
    assert policy.type == ROLE_POLICY_TYPE and policy.inputs["role"] == role.name
    statements = json.loads(policy.inputs["policy"])["Statement"]
    zone = f"arn:aws:route53:::hostedzone/{settings.dns.hosted_zone_id}"
    by_action = {statement["Action"]: statement for statement in statements}
    assert set(by_action) == {
        "route53:GetChange",
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
    }
    assert by_action["route53:GetChange"]["Resource"] == "arn:aws:route53:::change/*"
    assert by_action["route53:ListResourceRecordSets"]["Resource"] == zone
    change = by_action["route53:ChangeResourceRecordSets"]
    assert change["Resource"] == zone
    assert change["Condition"] == {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"_acme-challenge.{settings.domain}"],
        }
    }
    # Nothing on every zone, no hosted-zone listing (the issuer names its zone).
    assert all(statement["Resource"] != "*" for statement in statements)
    # cert-manager starts with its permissions in place.
    assert policy.urn in chart(cloud, CERT_MANAGER_CHART).dependencies


def test_challenge_names_are_normalized_as_route53_compares_them() -> None:
    assert acme_challenge_name("MCP.Dev.Example.ORG.") == "_acme-challenge.mcp.dev.example.org"


def test_a_stack_without_a_zone_plans_without_an_issuer_or_route53_role(cloud: Recorder) -> None:
    # The plan still works; the review (certificate-issuer-exists) and `mcpfleet validate` refuse it.
    built: dict[str, ClusterAddons] = {}
    build(without_dns(environment("dev")), built)
    assert not cloud.of_type(ISSUER_TYPE) and built["addons"].cert_manager_role is None
    assert "serviceAccount" not in chart(cloud, CERT_MANAGER_CHART).inputs["values"]


# eks: storage


def test_eks_gets_a_default_encrypted_gp3_storage_class(cloud: Recorder) -> None:
    # EKS 1.30+ has no default StorageClass: a claim naming none (Prometheus') would stay Pending.
    built: dict[str, ClusterAddons] = {}
    build(environment("dev"), built)
    storage = cloud.one(STORAGE_CLASS_TYPE)
    assert storage.parent == cloud.one(TYPE_TOKEN).urn
    assert storage.inputs["metadata"]["name"] == "gp3"
    assert storage.inputs["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    assert storage.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage.inputs["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": KEY_ARN}
    assert storage.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage.inputs["allowVolumeExpansion"] is True
    assert built["addons"].storage_class is not None


def test_cert_manager_is_ready_only_once_its_webhook_can_be_called() -> None:
    # Without the injected CA the API server cannot call the webhook, and the issuer's create fails for good.
    webhook = cert_manager_chart().values["webhook"]
    wait = {"pulumi.com/waitFor": "jsonpath={.webhooks[*].clientConfig.caBundle}"}
    assert webhook["validatingWebhookConfigurationAnnotations"] == wait
    assert webhook["mutatingWebhookConfigurationAnnotations"] == wait
    assert cert_manager_chart("arn:aws:iam::210987654321:role/x").values["webhook"] == webhook
