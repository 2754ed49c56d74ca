"""An EKS cluster for the fleet, built from raw pulumi-aws resources.

pulumi-eks and awsx are remote components: under `pulumi.runtime.set_mocks` they register as one opaque
resource, so nothing inside them could be tested here. Everything below is a plain provider resource.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mcpfleet.stacks.models import Cluster, NodeGroup, is_arm64

TYPE_TOKEN = "mcpfleet:index:EksCluster"

BASE_TAGS: dict[str, str] = {"Project": "mcpfleet", "ManagedBy": "pulumi"}

CLUSTER_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_LOG_RETENTION_DAYS = 90

# Installed before the nodes so that they come up with the managed CNI and can hand out Pod Identity
# credentials from their first pod on; these are DaemonSets and go ACTIVE with no node at all.
ADDONS_BEFORE_NODES: tuple[str, ...] = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
# Deployments: with no node to run on they stay DEGRADED and the create times out, so they wait for nodes.
# metrics-server is the EKS community add-on of that name (AWS's catalog since 2025-03-31): without a
# metrics source every HorizontalPodAutoscaler stays inert, and EKS installs none by default.
ADDONS_AFTER_NODES: tuple[str, ...] = ("coredns", "aws-ebs-csi-driver", "metrics-server")

# The VPC CNI enforces NetworkPolicies only with its network policy agent on, which its add-on leaves off
# unless configured so: key and string value as the EKS user guide gives them ("Configure your cluster
# for Kubernetes network policies": `{"enableNetworkPolicy": "true"}`, vpc-cni v1.14.0-eksbuild.3+).
VPC_CNI_CONFIGURATION: dict[str, str] = {"enableNetworkPolicy": "true"}
ADDON_CONFIGURATION: dict[str, dict[str, str]] = {"vpc-cni": VPC_CNI_CONFIGURATION}

EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"

# The root device of the AL2023 EKS AMIs that `node_ami_type` selects.
ROOT_DEVICE_NAME = "/dev/xvda"

_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class EksSpec:
    """The eks-only fields of `Cluster`, no longer optional."""

    region: str
    version: str
    vpc_cidr: str
    availability_zones: tuple[str, str, str]
    node_group: NodeGroup
    endpoint_public_access_cidrs: tuple[str, ...]
    admin_principal_arns: tuple[str, ...]


def eks_spec(settings: Cluster) -> EksSpec:
    if settings.provider != "eks":
        raise ValueError(f"EksCluster needs a cluster with provider eks, not {settings.provider}")
    if (
        settings.region is None
        or settings.version is None
        or settings.vpc_cidr is None
        or settings.node_group is None
        or len(settings.availability_zones) != 3
    ):
        raise ValueError(
            "an eks cluster needs region, version, vpcCidr, nodeGroup and three availabilityZones"
        )
    first, second, third = settings.availability_zones
    return EksSpec(
        region=settings.region,
        version=settings.version,
        vpc_cidr=settings.vpc_cidr,
        availability_zones=(first, second, third),
        node_group=settings.node_group,
        endpoint_public_access_cidrs=tuple(settings.endpoint_public_access_cidrs),
        # A principal can hold only one access entry per cluster.
        admin_principal_arns=tuple(dict.fromkeys(settings.admin_principal_arns)),
    )


@dataclass(frozen=True)
class ZoneSubnets:
    zone: str
    private_cidr: str
    public_cidr: str


def subnet_layout(vpc_cidr: str, zones: Sequence[str]) -> list[ZoneSubnets]:
    """Eight equal blocks of the VPC: three private (nodes, pods), three public (load balancers), two spare.

    The VPC CNI gives every pod a VPC address, so the private subnets are as large as the public ones; the
    spare blocks leave room for a fourth zone or intra subnets without renumbering.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    if not 16 <= network.prefixlen <= 25:
        # AWS allows VPCs of /16../28 and subnets no smaller than /28, the eighth of a /25.
        raise ValueError(f"vpcCidr {vpc_cidr} must be a /16 to /25 to hold six subnets")
    if len(zones) != 3:
        raise ValueError(f"expected three availability zones, got {len(zones)}")
    blocks = list(network.subnets(prefixlen_diff=3))
    return [
        ZoneSubnets(zone=zone, private_cidr=str(blocks[index]), public_cidr=str(blocks[3 + index]))
        for index, zone in enumerate(zones)
    ]


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def node_ami_type(instance_types: Sequence[str]) -> str:
    """The AL2023 AMI of the instance types' architecture (Kubernetes 1.33 has no AL2 AMIs)."""
    arm = {is_arm64(instance_type) for instance_type in instance_types}
    if len(arm) != 1:
        raise ValueError(f"instance types mix arm64 and x86_64: {', '.join(instance_types)}")
    return "AL2023_ARM_64_STANDARD" if arm.pop() else "AL2023_x86_64_STANDARD"


def account_of(arn: str) -> str:
    fields = arn.split(":", 5)
    if len(fields) != 6 or not re.fullmatch(r"[0-9]{12}", fields[4]):
        raise ValueError(f"no account in ARN {arn}")
    return fields[4]


def principal_slug(principal_arn: str) -> str:
    """`arn:aws:iam::123456789012:role/team/platform-admin` -> `123456789012-role-platform-admin`.

    Resource names come from the principal, not from its position in the list, so removing one admin does
    not replace the others' entries; role and user names are unique per account whatever their path.
    """
    fields = principal_arn.split(":", 5)
    if len(fields) != 6:
        raise ValueError(f"not an IAM ARN: {principal_arn}")
    account, resource = fields[4], fields[5]
    kind, _, path = resource.partition("/")
    return f"{account}-{kind}-{path.rsplit('/', 1)[-1]}"


def assume_role_policy(service: str, actions: Sequence[str] = ("sts:AssumeRole",)) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}],
        }
    )


def key_policy(partition: str, account_id: str) -> str:
    """The default key policy, plus use of the key by the Auto Scaling service-linked role.

    Managed node groups launch through Auto Scaling, whose service-linked role needs the key to create the
    encrypted root volumes; without it instances fail at launch. The role is matched by `aws:PrincipalArn`
    instead of being named as principal because KMS rejects a policy naming a role that does not exist yet,
    and in a fresh account that role only appears with the first Auto Scaling group.
    """
    autoscaling = (
        f"arn:{partition}:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )
    is_autoscaling = {"StringEquals": {"aws:PrincipalArn": autoscaling}}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersKeyThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "AutoScalingEncryptsNodeVolumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": is_autoscaling,
                },
                {
                    "Sid": "AutoScalingAttachesNodeVolumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": {**is_autoscaling, "Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
            ],
        }
    )


def kubeconfig_document(cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig (JSON, hence also YAML) that gets its token from `aws eks get-token`.

    No credential is stored in it: the token is minted for whoever runs the deployment, in the cluster's
    region, and `--output json` keeps a user's `output = text` AWS profile from breaking the exec plugin.
    """
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority},
                }
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "--region",
                                region,
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--output",
                                "json",
                            ],
                        }
                    },
                }
            ],
            "preferences": {},
        },
        indent=2,
    )


def oidc_issuer_url(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    for identity in identities:
        for oidc in identity.oidcs or ():
            if oidc.issuer:
                return oidc.issuer
    raise ValueError("the EKS cluster reports no OIDC issuer")


def certificate_authority_data(certificate_authority: aws.eks.outputs.ClusterCertificateAuthority) -> str:
    if not certificate_authority.data:
        raise ValueError("the EKS cluster reports no certificate authority")
    return certificate_authority.data


def addon_configuration(addon: str) -> str | None:
    """The add-on's `configurationValues` (a JSON document, as EKS takes it), or None for its defaults."""
    values = ADDON_CONFIGURATION.get(addon)
    return json.dumps(values, sort_keys=True) if values else None


def ebs_csi_key_policy_document(key_arn: str) -> str:
    """What the EBS CSI driver needs to create, attach and read volumes encrypted with key_arn."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": [key_arn],
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    "Resource": [key_arn],
                },
            ],
        }
    )


def tags(name: str, **extra: str) -> dict[str, str]:
    return {**BASE_TAGS, "Name": name, **extra}


class EksCluster(pulumi.ComponentResource):
    """A private-by-default EKS cluster: three zones, encrypted Secrets, audit logs, IMDSv2-only nodes.

    `name` is also the EKS cluster name: subnets and the log group must carry it before the cluster exists.
    """

    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_role_arn: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    vpc_id: pulumi.Output[str]
    region: str
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, settings: Cluster, opts: pulumi.ResourceOptions | None = None) -> None:
        if not _CLUSTER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid EKS cluster name")
        spec = eks_spec(settings)
        super().__init__(TYPE_TOKEN, name, None, opts)
        partition = partition_of(spec.region)
        cluster_name = name

        # Every AWS child goes through this provider, so the stack settings' region wins over the ambient
        # AWS_REGION / `aws:region` config of whoever runs the deployment.
        self.aws_provider = aws.Provider(
            f"{name}-aws", region=spec.region, opts=pulumi.ResourceOptions(parent=self)
        )

        vpc_id, private_subnets, public_subnets = self._network(name, cluster_name, spec)
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=assume_role_policy("eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession")),
            tags=tags(f"{name}-cluster"),
            opts=self._opts(),
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=self._opts(),
        )
        key = self._kms_key(name, partition, cluster_role.arn)
        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=tags(f"{name}-node"),
            opts=self._opts(),
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=f"arn:{partition}:iam::aws:policy/{policy}",
                opts=self._opts(),
            )
            for policy in (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
            )
        ]

        # EKS starts writing control plane logs on creation and would create the group itself, with no
        # retention, if it did not exist yet.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-cluster-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=CLUSTER_LOG_RETENTION_DAYS,
            tags=tags(f"{name}-cluster-logs"),
            opts=self._opts(),
        )

        public_cidrs = list(spec.endpoint_public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=cluster_name,
            version=spec.version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                # Both tiers, as in the EKS-vended VPC templates; load balancers pick their subnets by the
                # kubernetes.io/role tags.
                subnet_ids=[subnet.id for subnet in private_subnets + public_subnets],
                endpoint_private_access=True,
                endpoint_public_access=bool(public_cidrs),
                # AWS defaults to 0.0.0.0/0 when public access is on and no CIDR is given; never leave it so.
                public_access_cidrs=public_cidrs or None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
            ),
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                # Access entries only: who is admin is stated in the stack settings, not in an aws-auth
                # ConfigMap or an implicit grant to whichever identity happened to create the cluster.
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            tags=tags(cluster_name),
            # The role's policy must outlive the cluster on delete, or EKS cannot remove the security groups
            # and ENIs it manages in the VPC.
            opts=self._opts(depends_on=[log_group, cluster_policy]),
        )

        issuer_url = cluster.identities.apply(oidc_issuer_url)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            # No thumbprint_lists, rather than a copied one: it is optional in pulumi-aws 7, and without it
            # IAM retrieves the issuer's top intermediate CA thumbprint itself (pulumi-aws docs).
            tags=tags(f"{name}-oidc"),
            opts=self._opts(),
        )

        early_addons = [self._addon(name, cluster, addon) for addon in ADDONS_BEFORE_NODES]
        node_group = self._node_group(
            name, spec, cluster, key, node_role, private_subnets, [*node_policies, *early_addons]
        )
        ebs_csi_role = self._pod_identity_role(
            name, "ebs-csi", partition, "service-role/AmazonEBSCSIDriverPolicy"
        )
        # The default StorageClass encrypts volumes with the cluster's key, which the managed policy does
        # not cover: the EKS user guide's statements for a customer key ("Store Kubernetes volumes with
        # Amazon EBS"), on this key only.
        ebs_csi_key_policy = aws.iam.RolePolicy(
            f"{name}-ebs-csi-kms",
            role=ebs_csi_role.name,
            policy=key.arn.apply(ebs_csi_key_policy_document),
            opts=self._opts(),
        )
        late_addons: list[aws.eks.Addon] = []
        for addon in ADDONS_AFTER_NODES:
            if addon == "aws-ebs-csi-driver":
                late_addons.append(
                    self._addon(
                        name,
                        cluster,
                        addon,
                        depends_on=[node_group, ebs_csi_key_policy],
                        pod_identity=(ebs_csi_role.arn, EBS_CSI_SERVICE_ACCOUNT),
                    )
                )
            else:
                late_addons.append(self._addon(name, cluster, addon, depends_on=[node_group]))

        admin_policy_arn = f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        admin_grants: list[pulumi.Resource] = []
        for principal_arn in spec.admin_principal_arns:
            slug = principal_slug(principal_arn)
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{slug}",
                cluster_name=cluster.name,
                principal_arn=principal_arn,
                type="STANDARD",
                tags=tags(f"{name}-admin-{slug}"),
                opts=self._opts(),
            )
            admin_grants.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-{slug}-cluster-admin",
                    cluster_name=cluster.name,
                    # The ARN itself, ordered after its entry: a review (eks-admin-access) pairs the two
                    # by principal, which an output would leave unknown until apply.
                    principal_arn=principal_arn,
                    policy_arn=admin_policy_arn,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=self._opts(depends_on=[entry]),
                )
            )

        self.cluster_name = cluster.name
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer_url.apply(lambda url: url.removeprefix("https://"))
        # The CA is read before Output.all, which would flatten the typed output object into a plain dict.
        certificate_authority = cluster.certificate_authority.apply(certificate_authority_data)
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, certificate_authority).apply(
                lambda values: kubeconfig_document(values[0], values[1], values[2], spec.region)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(
                parent=self,
                # Whatever uses this provider then waits for nodes, DNS, storage and for the admins' access:
                # with bootstrap_cluster_creator_admin_permissions off, the deploying identity can only talk
                # to the cluster through one of the admin access entries.
                depends_on=[node_group, *early_addons, *late_addons, *admin_grants],
            ),
        )
        self.node_role_arn = node_role.arn
        self.private_subnet_ids = pulumi.Output.all(*[subnet.id for subnet in private_subnets])
        self.vpc_id = vpc_id
        self.region = spec.region
        self.kms_key_arn = key.arn

        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "kubeconfig": self.kubeconfig,
                "node_role_arn": self.node_role_arn,
                "private_subnet_ids": self.private_subnet_ids,
                "vpc_id": self.vpc_id,
            }
        )

    def _opts(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self, provider=self.aws_provider, depends_on=list(depends_on) or None
        )

    def _network(
        self, name: str, cluster_name: str, spec: EksSpec
    ) -> tuple[pulumi.Output[str], list[aws.ec2.Subnet], list[aws.ec2.Subnet]]:
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=spec.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags(f"{name}-vpc"),
            opts=self._opts(),
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags(f"{name}-igw"), opts=self._opts()
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=tags(f"{name}-public"), opts=self._opts()
        )
        # Routes are separate resources, not inline, so that later components (endpoints, peering) can add
        # their own routes to these tables without the two fighting over the table's route list.
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=self._opts(),
        )
        cluster_tag = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        private_subnets: list[aws.ec2.Subnet] = []
        public_subnets: list[aws.ec2.Subnet] = []
        for layout in subnet_layout(spec.vpc_cidr, spec.availability_zones):
            zone = layout.zone
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=layout.public_cidr,
                # Only load balancers and NAT gateways live here, and they get their addresses explicitly.
                map_public_ip_on_launch=False,
                tags=tags(f"{name}-public-{zone}", **cluster_tag, **{"kubernetes.io/role/elb": "1"}),
                opts=self._opts(),
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=layout.private_cidr,
                map_public_ip_on_launch=False,
                tags=tags(
                    f"{name}-private-{zone}", **cluster_tag, **{"kubernetes.io/role/internal-elb": "1"}
                ),
                opts=self._opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{zone}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=self._opts(),
            )
            # One NAT gateway per zone: losing a zone then never cuts the other zones' nodes off the internet,
            # and no egress crosses zones (and pays for it).
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{zone}",
                domain="vpc",
                tags=tags(f"{name}-nat-{zone}"),
                opts=self._opts(depends_on=[gateway]),
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=eip.id,
                subnet_id=public.id,
                tags=tags(f"{name}-nat-{zone}"),
                opts=self._opts(depends_on=[gateway]),
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=vpc.id,
                tags=tags(f"{name}-private-{zone}"),
                opts=self._opts(),
            )
            aws.ec2.Route(
                f"{name}-private-default-{zone}",
                route_table_id=private_routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
                opts=self._opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{zone}",
                subnet_id=private.id,
                route_table_id=private_routes.id,
                opts=self._opts(),
            )
            private_subnets.append(private)
            public_subnets.append(public)
        return vpc.id, private_subnets, public_subnets

    def _kms_key(self, name: str, partition: str, role_arn: pulumi.Output[str]) -> aws.kms.Key:
        # The account comes from the ARN of a role this component creates rather than from a
        # get_caller_identity invoke: previews and the offline plan engine answer no invokes.
        key = aws.kms.Key(
            f"{name}-kms",
            description=f"Envelope encryption of {name} Kubernetes Secrets and node root volumes",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=role_arn.apply(lambda arn: key_policy(partition, account_of(arn))),
            tags=tags(f"{name}-kms"),
            opts=self._opts(),
        )
        aws.kms.Alias(
            f"{name}-kms-alias", name=f"alias/{name}-eks", target_key_id=key.key_id, opts=self._opts()
        )
        return key

    def _pod_identity_role(
        self, name: str, purpose: str, partition: str, managed_policy: str
    ) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{name}-{purpose}-role",
            assume_role_policy=assume_role_policy(
                "pods.eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession")
            ),
            tags=tags(f"{name}-{purpose}"),
            opts=self._opts(),
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-{purpose}-policy",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{managed_policy}",
            opts=self._opts(),
        )
        return role

    def _addon(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        addon: str,
        depends_on: Sequence[pulumi.Resource] = (),
        pod_identity: tuple[pulumi.Input[str], str] | None = None,
    ) -> aws.eks.Addon:
        # No addon_version: EKS installs its default version for the cluster's Kubernetes version, and no
        # version here has been checked against 1.33. Note that EKS does not move an installed add-on on a
        # cluster upgrade; bump (or pin) versions as part of each upgrade.
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            # EKS installs self-managed vpc-cni, kube-proxy and coredns with the cluster; take them over.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            configuration_values=addon_configuration(addon),
            pod_identity_associations=(
                [
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=pod_identity[0], service_account=pod_identity[1]
                    )
                ]
                if pod_identity
                else None
            ),
            tags=tags(f"{name}-{addon}"),
            opts=self._opts(depends_on=depends_on),
        )

    def _node_group(
        self,
        name: str,
        spec: EksSpec,
        cluster: aws.eks.Cluster,
        key: aws.kms.Key,
        node_role: aws.iam.Role,
        private_subnets: Sequence[aws.ec2.Subnet],
        depends_on: Sequence[pulumi.Resource],
    ) -> aws.eks.NodeGroup:
        node_tags = tags(f"{name}-node")
        template = aws.ec2.LaunchTemplate(
            f"{name}-node-template",
            description=f"Managed nodes of {name}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                # IMDSv2 only, and a hop limit of 1 so the token response never reaches a pod's network
                # namespace: pods cannot borrow the node role; they get their own through Pod Identity.
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE_NAME,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=spec.node_group.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            # No network_interfaces block: with one, EKS stops attaching the cluster security group, and
            # managed nodes follow the subnet's MapPublicIpOnLaunch, off in the private subnets they use.
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=resource_type, tags=node_tags)
                for resource_type in ("instance", "volume", "network-interface")
            ],
            tags=tags(f"{name}-node-template"),
            opts=self._opts(),
        )
        return aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            # Following the cluster's version (an output) upgrades nodes right after the control plane.
            version=cluster.version,
            node_role_arn=node_role.arn,
            subnet_ids=[subnet.id for subnet in private_subnets],
            ami_type=node_ami_type(spec.node_group.instance_types),
            capacity_type="ON_DEMAND",
            instance_types=list(spec.node_group.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=spec.node_group.min_size,
                desired_size=spec.node_group.desired_size,
                max_size=spec.node_group.max_size,
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags(f"{name}-nodes"),
            opts=self._opts(depends_on=depends_on),
        )
