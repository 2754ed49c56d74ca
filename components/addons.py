"""Cluster add-ons the gateway relies on: cert-manager and, on EKS, the AWS Load Balancer Controller.

cert-manager (tls `cert-manager` or `self-signed`) issues the gateway's Certificate from its ClusterIssuer.
The AWS Load Balancer Controller (eks only) turns the gateway's annotated LoadBalancer Service into an NLB;
it acts in AWS as its own IAM role, assumed through IRSA by exactly its ServiceAccount.

Where the pinned facts come from:

- cert-manager `v1.20.2`: the release notes in cert-manager/website,
  `content/docs/releases/release-notes/release-notes-1.20.md`. The values used (`crds.enabled`,
  `startupapicheck.enabled`) and the chart's default security contexts, which its README says meet the
  `restricted` Pod Security Standard, are documented in cert-manager/cert-manager,
  `deploy/charts/cert-manager/README.template.md`.
- aws-load-balancer-controller chart `1.13.2`, appVersion `v2.13.2`: the version table of
  `AlbControllerVersion` in aws/aws-cdk (`V2_13_2 = new AlbControllerVersion('v2.13.2', '1.13.2', ...)`).
- `components/cluster/aws-load-balancer-controller-iam-policy.json`, stored verbatim: AWS CDK's copy of
  the controller's `docs/install/iam_policy.json` (kubernetes-sigs/aws-load-balancer-controller) for
  `v2.13.2`, which CDK attaches for that version: aws/aws-cdk,
  `packages/@aws-cdk/aws-eks-v2-alpha/lib/addons/alb-iam_policy-v2.13.2.json` (commit 398a393a). Taken from
  there because no tagged version of the controller's own file could be read; check it against
  `https://raw.githubusercontent.com/kubernetes-sigs/aws-load-balancer-controller/v2.13.2/docs/install/iam_policy.json`
  when you can. It names the `aws` partition only.
- Chart values `clusterName`, `region`, `vpcId`, `serviceAccount.*` and `enableServiceMutatorWebhook`:
  `helm/aws-load-balancer-controller/values.yaml` and the installation guide of
  kubernetes-sigs/aws-load-balancer-controller.

Bump a chart only together with what came from it: the policy file must be the one of the new appVersion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster.eks import EksCluster, partition_of, tags
from components.kube import kubernetes_resource
from components.manifests import K8sObject
from components.manifests.labels import PART_OF
from components.manifests.mesh import ChartRelease
from components.manifests.secrets import ROLE_ARN_ANNOTATION
from components.mesh import install_chart
from components.secrets import irsa_trust_policy
from mcpfleet.stacks.models import Environment

TYPE_TOKEN = "mcpfleet:index:ClusterAddons"

CERT_MANAGER_REPOSITORY = "https://charts.jetstack.io"
CERT_MANAGER_CHART = "cert-manager"
# jetstack's chart versions carry the `v` of the release tag (`helm install --version v1.x.y`).
CERT_MANAGER_VERSION = "v1.20.2"
CERT_MANAGER_NAMESPACE = "cert-manager"
# The gateway's issuers need cert-manager; `acm` ends TLS at the NLB and needs none.
CERT_MANAGER_TLS_MODES = frozenset({"cert-manager", "self-signed"})

LBC_REPOSITORY = "https://aws.github.io/eks-charts"
LBC_CHART = "aws-load-balancer-controller"
LBC_VERSION = "1.13.2"
LBC_APP_VERSION = "v2.13.2"
LBC_NAMESPACE = "kube-system"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"
LBC_POLICY_FILE = Path(__file__).resolve().parent / "cluster" / "aws-load-balancer-controller-iam-policy.json"


def needs_cert_manager(settings: Environment) -> bool:
    return settings.gateway.tls in CERT_MANAGER_TLS_MODES


def cert_manager_namespace() -> K8sObject:
    """`restricted` Pod Security: the chart's default pod and container security contexts meet it (chart
    README, "Default Security Contexts"). Not in the mesh: the API server calls cert-manager's webhook
    directly, and mesh-wide STRICT mTLS would refuse it."""
    labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": CERT_MANAGER_NAMESPACE, "labels": labels},
    }


def cert_manager_chart() -> ChartRelease:
    """cert-manager with its CRDs, which the gateway's Certificate and ClusterIssuer need.

    helm.v4.Chart skips Helm hooks. The chart's hooks, per its README, are the startupapicheck Job, its
    ServiceAccount and its RBAC (post-install), which only wait for the webhook to answer; nothing the
    installation needs comes from them. Disabled here so that no hook object is rendered at all; Pulumi's
    own readiness checks on the Deployments take their place.
    """
    return ChartRelease(
        release=CERT_MANAGER_CHART,
        chart=CERT_MANAGER_CHART,
        version=CERT_MANAGER_VERSION,
        repository=CERT_MANAGER_REPOSITORY,
        namespace=CERT_MANAGER_NAMESPACE,
        values={"crds": {"enabled": True}, "startupapicheck": {"enabled": False}},
    )


def load_balancer_controller_chart(
    cluster_name: pulumi.Input[str],
    region: str,
    vpc_id: pulumi.Input[str],
    role_arn: pulumi.Input[str],
) -> ChartRelease:
    """The controller, told its region and VPC: pods cannot reach the instance metadata it would otherwise
    ask (the node launch template sets a hop limit of 1)."""
    values: dict[str, Any] = {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {
            "create": True,
            "name": LBC_SERVICE_ACCOUNT,
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        },
        # The mutating webhook would intercept every Service created in the cluster and fail them while the
        # controller is not up yet (other charts create Services concurrently). The gateway's Service names
        # the controller by its `aws-load-balancer-type: external` annotation and needs no defaulting.
        "enableServiceMutatorWebhook": False,
    }
    return ChartRelease(
        release=LBC_CHART,
        chart=LBC_CHART,
        version=LBC_VERSION,
        repository=LBC_REPOSITORY,
        namespace=LBC_NAMESPACE,
        values=values,
    )


def load_balancer_controller_subject() -> str:
    return f"system:serviceaccount:{LBC_NAMESPACE}:{LBC_SERVICE_ACCOUNT}"


def load_balancer_controller_policy() -> str:
    """The controller's documented IAM policy, as committed (see the module docstring for its source)."""
    return LBC_POLICY_FILE.read_text(encoding="utf-8")


class ClusterAddons(pulumi.ComponentResource):
    """cert-manager when the gateway's TLS needs it; the AWS Load Balancer Controller on eks.

    `ready` lists what the gateway must wait for: the charts, whose CRDs, webhooks and controllers its
    Certificate, ClusterIssuer and load-balanced Service need.
    """

    def __init__(
        self,
        name: str,
        settings: Environment,
        cluster: EksCluster | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.ready: list[pulumi.Resource] = []
        self.cert_manager: pulumi.Resource | None = None
        self.load_balancer_controller: pulumi.Resource | None = None
        self.load_balancer_controller_role: aws.iam.Role | None = None

        if needs_cert_manager(settings):
            namespace = kubernetes_resource(
                f"{name}-cert-manager-namespace",
                cert_manager_namespace(),
                pulumi.ResourceOptions(parent=self),
            )
            release = cert_manager_chart()
            self.cert_manager = install_chart(
                f"{name}-{release.release}",
                release,
                pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            self.ready.append(self.cert_manager)

        if settings.cluster.provider == "eks":
            if cluster is None:
                raise ValueError("the AWS Load Balancer Controller on eks needs the EksCluster")
            self._load_balancer_controller(name, settings, cluster)

        self.register_outputs(
            {
                "certManager": CERT_MANAGER_VERSION if self.cert_manager is not None else None,
                "loadBalancerController": LBC_APP_VERSION
                if self.load_balancer_controller is not None
                else None,
            }
        )

    def _load_balancer_controller(self, name: str, settings: Environment, cluster: EksCluster) -> None:
        region = settings.cluster.region
        if region is None:
            raise ValueError("an eks cluster needs region")
        if partition_of(region) != "aws":
            # The committed policy's ARNs name the `aws` partition; the controller ships others separately.
            raise ValueError(f"no AWS Load Balancer Controller policy for the partition of {region}")
        aws_opts = pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider)
        prefix = f"{name}-load-balancer-controller"
        role = aws.iam.Role(
            f"{prefix}-role",
            description="AWS Load Balancer Controller: manages the NLBs of the cluster's Services",
            assume_role_policy=pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], load_balancer_controller_subject())
            ),
            tags=tags(f"{prefix}-role"),
            opts=aws_opts,
        )
        policy = aws.iam.Policy(
            f"{prefix}-policy",
            description=f"AWS Load Balancer Controller {LBC_APP_VERSION} (its documented iam_policy.json)",
            policy=load_balancer_controller_policy(),
            tags=tags(f"{prefix}-policy"),
            opts=aws_opts,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{prefix}-policy-attachment",
            role=role.name,
            policy_arn=policy.arn,
            opts=aws_opts,
        )
        release = load_balancer_controller_chart(cluster.cluster_name, region, cluster.vpc_id, role.arn)
        # After the attachment: a controller that starts without its permissions backs off and retries slowly.
        self.load_balancer_controller = install_chart(
            f"{name}-{release.release}",
            release,
            pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        self.load_balancer_controller_role = role
        self.ready.append(self.load_balancer_controller)
