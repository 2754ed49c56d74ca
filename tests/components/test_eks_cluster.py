"""EksCluster, run in-process under Pulumi mocks (no Pulumi CLI, no AWS): what it would ask AWS to create."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.cluster.eks import (
    CLUSTER_LOG_TYPES,
    TYPE_TOKEN,
    EksCluster,
    account_of,
    key_policy,
    kubeconfig_document,
    node_ami_type,
    partition_of,
    principal_slug,
    subnet_layout,
)
from mcpfleet.stacks.models import Cluster, NodeGroup
from tests.mock_engine import Recorder, recording

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
ADMINS = ["arn:aws:iam::123456789012:role/platform-admin", "arn:aws:iam::123456789012:user/ops/oncall"]
# Fake values, only ever seen by these tests.
ISSUER = f"https://oidc.eks.{REGION}.amazonaws.com/id/TEST"
ENDPOINT = "https://TEST.gr7.eu-west-1.eks.amazonaws.com"
CA_DATA = "VEVTVC1DQQ=="


def eks_settings(**overrides: Any) -> Cluster:
    fields: dict[str, Any] = {
        "provider": "eks",
        "region": REGION,
        "version": "1.33",
        "vpc_cidr": "10.40.0.0/16",
        "availability_zones": ZONES,
        "node_group": NodeGroup(instance_types=["m7i.large"], min_size=3, desired_size=3, max_size=9),
        "admin_principal_arns": ADMINS,
    }
    return Cluster(**{**fields, **overrides})


class FakeAws(pulumi.runtime.Mocks):
    """Echoes inputs back, plus the provider-computed attributes that EksCluster reads."""

    def __init__(self) -> None:
        self.invokes: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        kind = args.typ.split(":")[-1]
        if args.typ == "aws:eks/cluster:Cluster":
            outputs.update(
                endpoint=ENDPOINT,
                certificateAuthority={"data": CA_DATA},
                identities=[{"oidcs": [{"issuer": ISSUER}]}],
                arn=f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{args.inputs['name']}",
            )
        elif args.typ == "aws:kms/key:Key":
            outputs.update(arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{args.name}", keyId=args.name)
        elif args.typ == "aws:iam/role:Role":
            outputs.update(arn=f"arn:aws:iam::{ACCOUNT}:role/{args.name}", name=args.name)
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            outputs.update(
                arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{args.inputs['url'][len('https://') :]}"
            )
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs.update(latestVersion=1)
        elif not args.typ.startswith("pulumi:providers:"):
            outputs.setdefault("arn", f"arn:aws:test:{REGION}:{ACCOUNT}:{kind.lower()}/{args.name}")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        # The component makes no invoke; record any so that a test can say so. The failures must be a list:
        # MockMonitor iterates them, although the type hint allows None.
        self.invokes.append(args.token)
        return {}, []


@pytest.fixture
def monitor() -> Iterator[Recorder]:
    yield from recording("prod", mocks=FakeAws())


@dataclass
class Built:
    kubeconfig: str | None = None
    kubeconfig_secret: bool | None = None
    cluster_name: str | None = None
    oidc_issuer: str | None = None
    private_subnet_ids: list[str] | None = None


def build(cluster_settings: Cluster) -> Built:
    built = Built()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> Any:
        cluster = EksCluster("mcpfleet-prod", cluster_settings)

        async def collect() -> None:
            built.kubeconfig = await cluster.kubeconfig.future()
            built.kubeconfig_secret = await cluster.kubeconfig.is_secret()
            built.cluster_name = await cluster.cluster_name.future()
            built.oidc_issuer = await cluster.oidc_issuer.future()
            built.private_subnet_ids = await cluster.private_subnet_ids.future()

        return collect()

    program()
    return built


# Pure functions


def test_subnet_layout_splits_a_16_into_19s() -> None:
    layout = subnet_layout("10.40.0.0/16", ZONES)
    assert [z.zone for z in layout] == ZONES
    assert [z.private_cidr for z in layout] == ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
    assert [z.public_cidr for z in layout] == ["10.40.96.0/19", "10.40.128.0/19", "10.40.160.0/19"]
    blocks = [ipaddress.ip_network(c) for z in layout for c in (z.private_cidr, z.public_cidr)]
    assert all(a == b or not a.overlaps(b) for a in blocks for b in blocks)


@pytest.mark.parametrize("cidr", ["10.0.0.0/15", "10.0.0.0/26", "10.40.0.1/16"])
def test_subnet_layout_rejects_unusable_vpcs(cidr: str) -> None:
    with pytest.raises(ValueError):
        subnet_layout(cidr, ZONES)


def test_kubeconfig_document_uses_aws_eks_get_token_in_the_region() -> None:
    document = json.loads(kubeconfig_document("mcpfleet-prod", ENDPOINT, CA_DATA, REGION))
    (cluster,) = document["clusters"]
    assert cluster["cluster"] == {"server": ENDPOINT, "certificate-authority-data": CA_DATA}
    assert document["current-context"] == "mcpfleet-prod"
    (user,) = document["users"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"] == [
        "--region",
        REGION,
        "eks",
        "get-token",
        "--cluster-name",
        "mcpfleet-prod",
        "--output",
        "json",
    ]
    assert "token" not in json.dumps(user["user"]).replace("get-token", "")


@pytest.mark.parametrize(
    ("types", "ami"),
    [
        (["m7i.large"], "AL2023_x86_64_STANDARD"),
        (["m7i.large", "m6a.large", "g5.xlarge"], "AL2023_x86_64_STANDARD"),
        (["m7g.large", "c7gn.xlarge", "t4g.medium"], "AL2023_ARM_64_STANDARD"),
    ],
)
def test_node_ami_type_follows_the_architecture(types: list[str], ami: str) -> None:
    assert node_ami_type(types) == ami


def test_node_ami_type_refuses_mixed_architectures() -> None:
    with pytest.raises(ValueError, match="mix"):
        node_ami_type(["m7i.large", "m7g.large"])


def test_principal_slug_is_stable_and_readable() -> None:
    assert principal_slug(ADMINS[0]) == "123456789012-role-platform-admin"
    assert principal_slug(ADMINS[1]) == "123456789012-user-oncall"


def test_account_of_reads_the_account_field() -> None:
    assert account_of(f"arn:aws:iam::{ACCOUNT}:role/x") == ACCOUNT
    with pytest.raises(ValueError):
        account_of("arn:aws:s3:::bucket")


@pytest.mark.parametrize(
    ("region", "partition"), [("eu-west-1", "aws"), ("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)
def test_partition_of(region: str, partition: str) -> None:
    assert partition_of(region) == partition


def test_key_policy_keeps_account_administration_and_lets_auto_scaling_encrypt_volumes() -> None:
    statements = json.loads(key_policy("aws", ACCOUNT))["Statement"]
    principals = [s["Principal"]["AWS"] for s in statements]
    assert principals[0] == f"arn:aws:iam::{ACCOUNT}:root"
    autoscaling = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
    for statement in statements[1:]:
        assert statement["Condition"]["StringEquals"] == {"aws:PrincipalArn": autoscaling}


def test_the_component_refuses_an_existing_cluster(monitor: Recorder) -> None:
    with pytest.raises(ValueError, match="provider eks"):
        build(Cluster(provider="existing", context="kind-mcpfleet"))


# The component under mocks


def test_every_resource_is_a_uniquely_named_child_of_the_component(monitor: Recorder) -> None:
    build(eks_settings())
    children = [r for r in monitor.registrations if r.type not in ("pulumi:pulumi:Stack", TYPE_TOKEN)]
    urns = [r.urn for r in monitor.registrations]
    assert [urn for urn, count in Counter(urns).items() if count > 1] == []
    (component,) = monitor.of_type(TYPE_TOKEN)
    assert {r.parent for r in children} == {component.urn}
    assert not [r for r in children if r.type.startswith("pulumi:providers:eks") or r.type.startswith("awsx")]

    # No invoke: `mcpfleet plan` and previews answer none.
    assert isinstance(monitor.mocks, FakeAws) and monitor.mocks.invokes == []

    aws_provider = monitor.one("pulumi:providers:aws")
    assert aws_provider.inputs["region"] == REGION
    aws_children = [r for r in children if r.type.startswith("aws:")]
    assert aws_children
    assert {r.provider.split("::")[-2] for r in aws_children} == {aws_provider.name}


def test_network_spans_three_zones_with_private_and_public_subnets(monitor: Recorder) -> None:
    build(eks_settings())
    vpc = monitor.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True

    subnets = monitor.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"]
    public = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"]
    assert len(subnets) == 6 and len(private) == 3 and len(public) == 3
    assert sorted(s.inputs["availabilityZone"] for s in private) == ZONES
    assert sorted(s.inputs["availabilityZone"] for s in public) == ZONES
    for subnet in subnets:
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        assert subnet.inputs["tags"]["kubernetes.io/cluster/mcpfleet-prod"] == "shared"
        assert ipaddress.IPv4Network(subnet.inputs["cidrBlock"]).subnet_of(
            ipaddress.IPv4Network("10.40.0.0/16")
        )

    assert len(monitor.of_type("aws:ec2/internetGateway:InternetGateway")) == 1
    nats = monitor.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3 and len(monitor.of_type("aws:ec2/eip:Eip")) == 3
    assert {n.inputs["subnetId"] for n in nats} == {f"{s.name}-id" for s in public}
    routes = monitor.of_type("aws:ec2/route:Route")
    assert sorted(bool(r.inputs.get("natGatewayId")) for r in routes) == [False, True, True, True]
    associations = monitor.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    assert {a.inputs["subnetId"] for a in associations} == {f"{s.name}-id" for s in subnets}


def test_cluster_is_encrypted_audited_and_private_without_cidrs(monitor: Recorder) -> None:
    built = build(eks_settings())
    cluster = monitor.one("aws:eks/cluster:Cluster")
    key = monitor.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    assert statements[0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert monitor.one("aws:kms/alias:Alias").inputs["targetKeyId"] == key.name
    assert cluster.inputs["name"] == "mcpfleet-prod" and cluster.inputs["version"] == "1.33"
    assert cluster.inputs["encryptionConfig"] == {
        "resources": ["secrets"],
        "provider": {"keyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key.name}"},
    }
    assert cluster.inputs["enabledClusterLogTypes"] == list(CLUSTER_LOG_TYPES)
    assert "audit" in cluster.inputs["enabledClusterLogTypes"]
    assert cluster.inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    vpc_config = cluster.inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc_config
    assert len(vpc_config["subnetIds"]) == 6

    log_group = monitor.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == "/aws/eks/mcpfleet-prod/cluster"
    assert log_group.inputs["retentionInDays"] > 0
    assert monitor.registrations.index(log_group) < monitor.registrations.index(cluster)

    assert built.cluster_name == "mcpfleet-prod"
    assert built.oidc_issuer == f"oidc.eks.{REGION}.amazonaws.com/id/TEST"


def test_public_endpoint_is_restricted_to_the_given_cidrs(monitor: Recorder) -> None:
    build(eks_settings(endpoint_public_access_cidrs=["203.0.113.0/24", "198.51.100.7/32"]))
    vpc_config = monitor.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24", "198.51.100.7/32"]


def test_nodes_use_imdsv2_only_and_encrypted_root_volumes(monitor: Recorder) -> None:
    built = build(eks_settings())
    template = monitor.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (volume,) = template.inputs["blockDeviceMappings"]
    key = monitor.one("aws:kms/key:Key")
    assert volume["ebs"]["encrypted"] == "true"
    assert volume["ebs"]["volumeType"] == "gp3"
    assert volume["ebs"]["volumeSize"] == 50
    assert volume["ebs"]["kmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key.name}"
    assert "networkInterfaces" not in template.inputs

    node_group = monitor.one("aws:eks/nodeGroup:NodeGroup")
    private = [
        f"{s.name}-id"
        for s in monitor.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    ]
    assert sorted(node_group.inputs["subnetIds"]) == sorted(private)
    assert sorted(built.private_subnet_ids or []) == sorted(private)
    assert node_group.inputs["launchTemplate"] == {"id": f"{template.name}-id", "version": "1"}
    assert node_group.inputs["scalingConfig"] == {"minSize": 3, "desiredSize": 3, "maxSize": 9}
    assert node_group.inputs["instanceTypes"] == ["m7i.large"]
    assert node_group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert node_group.inputs["updateConfig"] == {"maxUnavailable": 1}
    assert "diskSize" not in node_group.inputs

    node_role = next(r for r in monitor.of_type("aws:iam/role:Role") if r.name.endswith("-node-role"))
    assert node_group.inputs["nodeRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{node_role.name}"
    policies = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == node_role.name
    }
    assert policies == {
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
    }


def test_oidc_provider_addons_and_admin_access_entries(monitor: Recorder) -> None:
    build(eks_settings(admin_principal_arns=[*ADMINS, ADMINS[0]]))
    oidc = monitor.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == ISSUER
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert "thumbprintLists" not in oidc.inputs

    addons = {a.inputs["addonName"]: a.inputs for a in monitor.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
        "metrics-server",
    }
    for addon in addons.values():
        assert "addonVersion" not in addon
        assert addon["resolveConflictsOnCreate"] == addon["resolveConflictsOnUpdate"] == "OVERWRITE"
    (association,) = addons["aws-ebs-csi-driver"]["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"

    entries = monitor.of_type("aws:eks/accessEntry:AccessEntry")
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(ADMINS)
    grants = monitor.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(g.inputs["principalArn"] for g in grants) == sorted(ADMINS)
    for grant in grants:
        assert (
            grant.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        )
        assert grant.inputs["accessScope"] == {"type": "cluster"}


def test_kubeconfig_is_secret_and_feeds_the_kubernetes_provider(monitor: Recorder) -> None:
    built = build(eks_settings())
    assert built.kubeconfig_secret is True
    assert built.kubeconfig is not None
    document = json.loads(built.kubeconfig)
    assert document["clusters"][0]["cluster"]["server"] == ENDPOINT
    assert "--region" in document["users"][0]["user"]["exec"]["args"]
    k8s_provider = monitor.one("pulumi:providers:kubernetes")
    assert k8s_provider.name == "mcpfleet-prod-k8s"
    # Reaches the provider still wrapped as a secret: the engine would encrypt it in the state.
    wrapped = k8s_provider.inputs["kubeconfig"]
    assert wrapped[rpc._special_sig_key] == rpc._special_secret_sig
    assert json.loads(wrapped["value"]) == document


def test_every_taggable_resource_is_tagged(monitor: Recorder) -> None:
    build(eks_settings())
    tagged = [r for r in monitor.registrations if "tags" in r.inputs]
    assert len(tagged) > 20
    for registration in tagged:
        assert registration.inputs["tags"]["Project"] == "mcpfleet", registration.name
        assert registration.inputs["tags"]["ManagedBy"] == "pulumi", registration.name


def test_vpc_cni_enforces_network_policies(monitor: Recorder) -> None:
    # Without the agent on, every NetworkPolicy of the fleet (default deny, egress allowlists) is a no-op.
    build(eks_settings())
    addons = {a.inputs["addonName"]: a.inputs for a in monitor.of_type("aws:eks/addon:Addon")}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # The others keep EKS's defaults: a configuration document would have to match each one's schema.
    assert all("configurationValues" not in a for name, a in addons.items() if name != "vpc-cni")


def test_metrics_server_and_dns_wait_for_nodes_and_the_cni_does_not(monitor: Recorder) -> None:
    # A Deployment add-on created before any node stays DEGRADED until its create times out.
    build(eks_settings())
    nodes = monitor.one("aws:eks/nodeGroup:NodeGroup")
    by_name = {a.inputs["addonName"]: a for a in monitor.of_type("aws:eks/addon:Addon")}
    for addon in ("metrics-server", "coredns", "aws-ebs-csi-driver"):
        assert nodes.urn in by_name[addon].dependencies, addon
    for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert nodes.urn not in by_name[addon].dependencies, addon
        assert by_name[addon].urn in nodes.dependencies, addon
    # Whatever the Kubernetes provider deploys (HPAs included) comes after the metrics source.
    provider = monitor.one("pulumi:providers:kubernetes")
    assert by_name["metrics-server"].urn in provider.dependencies


def test_ebs_csi_driver_may_use_the_cluster_key_and_nothing_else(monitor: Recorder) -> None:
    build(eks_settings())
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mcpfleet-prod-kms"
    policy = monitor.named("mcpfleet-prod-ebs-csi-kms")
    assert policy.inputs["role"] == "mcpfleet-prod-ebs-csi-role"
    document = json.loads(policy.inputs["policy"])
    assert {r for statement in document["Statement"] for r in statement["Resource"]} == {key_arn}
    grants = [s for s in document["Statement"] if "kms:CreateGrant" in s["Action"]]
    assert [g["Condition"] for g in grants] == [{"Bool": {"kms:GrantIsForAWSResource": "true"}}]
    # The driver starts only once it may encrypt, or its first volume fails.
    (driver,) = [
        a for a in monitor.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"
    ]
    assert policy.urn in driver.dependencies
