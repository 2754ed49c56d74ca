"""Cluster add-ons the platform relies on: cert-manager and its issuer, storage, metrics, load balancers.

cert-manager (tls `cert-manager` or `self-signed`) issues the gateway's Certificate. On EKS with tls
`cert-manager` this component also creates the ClusterIssuer the Certificate names (`gateway.clusterIssuer`):
an ACME account (Let's Encrypt by default) answering DNS-01 challenges in the stack's Route53 zone, as an
IAM role of cert-manager's own (IRSA) that may change only `_acme-challenge.<domain>` TXT records of only
that zone. DNS-01 rather than HTTP-01: the gateway (HAProxy) routes only MCP paths, and DNS-01 needs
nothing from the gateway, which itself waits for the certificate to start.
The AWS Load Balancer Controller (eks only) turns the gateway's annotated LoadBalancer Service into an NLB;
it acts in AWS as its own IAM role, assumed through IRSA by exactly its ServiceAccount.
On EKS, a default StorageClass (`gp3`, EBS CSI driver, encrypted with the cluster's key): EKS 1.30+ has
none, and a claim that names no class (Prometheus') would stay Pending forever. On an existing cluster
(kind), metrics-server from its pinned chart (on EKS it is an add-on, see components/cluster/eks.py).

Where the pinned facts come from:

- cert-manager `v1.20.2`: tag `v1.20.2` of cert-manager/cert-manager (commit e5b7b18450dd2c4b, 2026-04-10);
  the chart values used (`crds.enabled`, `startupapicheck.enabled`,
  `webhook.validatingWebhookConfigurationAnnotations`, `webhook.mutatingWebhookConfigurationAnnotations`)
  are in that tag's `deploy/charts/cert-manager/values.yaml` and its webhook templates; its default
  security contexts, which its README says meet the `restricted` Pod Security Standard, are documented in
  `deploy/charts/cert-manager/README.template.md`. (The release notes in cert-manager/website,
  `content/docs/releases/release-notes/release-notes-1.20.md`, list v1.20.0 and v1.20.1 in the copy we
  read.)
- aws-load-balancer-controller chart `1.13.2`, appVersion `v2.13.2`:
  `stable/aws-load-balancer-controller/Chart.yaml` of aws/eks-charts at commit
  a4b8061ee4c36fc0e4338013955eb628258e53b0 ("aws-load-balancer-controller: v2.13.2"), the repository
  behind `https://aws.github.io/eks-charts`; also the version table of `AlbControllerVersion` in
  aws/aws-cdk (`V2_13_2 = new AlbControllerVersion('v2.13.2', '1.13.2', ...)`).
- `components/cluster/aws-load-balancer-controller-iam-policy.json`: the controller's own
  `docs/install/iam_policy.json` at tag `v2.13.2` of kubernetes-sigs/aws-load-balancer-controller (commit
  ac0e1ffc76adfb6af8342534f13f178a24b65e92), the same JSON document (compared parsed: identical) as AWS
  CDK's copy for that version (aws/aws-cdk,
  `packages/@aws-cdk/aws-eks-v2-alpha/lib/addons/alb-iam_policy-v2.13.2.json`, commit 398a393a), which it
  was first taken from. It names the `aws` partition only.
- Chart values `clusterName`, `region`, `vpcId`, `serviceAccount.*` and `enableServiceMutatorWebhook`:
  `helm/aws-load-balancer-controller/values.yaml` and the installation guide of
  kubernetes-sigs/aws-load-balancer-controller.

- cert-manager's Route53 permissions, ClusterIssuer fields (`hostedZoneID`, `region`, `dnsZones`) and
  ambient credentials for ClusterIssuers: cert-manager/website,
  `content/docs/configuration/acme/dns01/route53.md`, and `pkg/apis/acme/v1/types_issuer.go` of
  cert-manager/cert-manager. The record-name and record-type conditions are Route53's IAM condition keys
  `route53:ChangeResourceRecordSetsNormalizedRecordNames` and `...RecordTypes`.
- metrics-server chart `3.13.1` (appVersion 0.8.1): tag `metrics-server-helm-chart-3.13.1` of
  kubernetes-sigs/metrics-server (commit 842dcc8c42f22cc1), `charts/metrics-server/Chart.yaml`; its repository
  `https://kubernetes-sigs.github.io/metrics-server/` and `--kubelet-insecure-tls` from the same
  repository's chart README and README.
- StorageClass parameters `type`, `encrypted`, `kmsKeyId`: kubernetes-sigs/aws-ebs-csi-driver,
  `docs/parameters.md`.

Bump a chart only together with what came from it: the policy file must be the one of the new appVersion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

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

CERT_MANAGER_SERVICE_ACCOUNT = "cert-manager"
# pulumi-kubernetes (4.18+; pinned 4.34.2) waits on an object carrying this annotation until the JSONPath
# matches: here, until cainjector has put the CA into cert-manager's webhook configurations. Before that the
# API server cannot call the webhook, and a ClusterIssuer or Certificate created then fails for good
# (Pulumi retries only NotFound). The expression is the one of pulumi/pulumi-kubernetes#3134, whose
# end-to-end test deploys cert-manager with it.
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
CA_BUNDLE_INJECTED = "jsonpath={.webhooks[*].clientConfig.caBundle}"
CERT_MANAGER_API_VERSION = "cert-manager.io/v1"
# The Secret holding the ACME account's private key, in cert-manager's namespace (ClusterIssuer secrets
# live in the chart's `clusterResourceNamespace`, by default the namespace cert-manager runs in).
ACME_ACCOUNT_KEY_SECRET = "acme-account-key"

STORAGE_CLASS = "gp3"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"

METRICS_SERVER_REPOSITORY = "https://kubernetes-sigs.github.io/metrics-server/"
METRICS_SERVER_CHART = "metrics-server"
METRICS_SERVER_VERSION = "3.13.1"
METRICS_SERVER_NAMESPACE = "kube-system"


def needs_cert_manager(settings: Environment) -> bool:
    return settings.gateway.tls in CERT_MANAGER_TLS_MODES


def platform_labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}


def cert_manager_namespace() -> K8sObject:
    """`restricted` Pod Security: the chart's default pod and container security contexts meet it (chart
    README, "Default Security Contexts"). Not in the mesh: the API server calls cert-manager's webhook
    directly, and mesh-wide STRICT mTLS would refuse it."""
    labels = platform_labels()
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": CERT_MANAGER_NAMESPACE, "labels": labels},
    }


def cert_manager_chart(role_arn: pulumi.Input[str] | None = None) -> ChartRelease:
    """cert-manager with its CRDs, which the gateway's Certificate and ClusterIssuer need.

    helm.v4.Chart skips Helm hooks. The chart's hooks, per its README, are the startupapicheck Job, its
    ServiceAccount and its RBAC (post-install), which only wait for the webhook to answer; nothing the
    installation needs comes from them. Disabled here so that no hook object is rendered at all; Pulumi's
    own readiness checks on the Deployments take their place.

    The chart counts as ready (and what depends on it starts) only once its webhook can be called: its
    webhook configurations carry the `pulumi.com/waitFor` annotation for their injected CA bundle, the
    check the skipped startupapicheck hook would have made.

    role_arn: the IAM role the controller acts as in Route53 (IRSA annotation on its ServiceAccount, named
    explicitly so the role's trust policy can name it too).
    """
    ready_when_injected = {WAIT_FOR_ANNOTATION: CA_BUNDLE_INJECTED}
    values: dict[str, Any] = {
        "crds": {"enabled": True},
        "startupapicheck": {"enabled": False},
        # Chart values `webhook.validatingWebhookConfigurationAnnotations` and `...mutating...` (its
        # values.yaml and templates/webhook-*-webhook.yaml).
        "webhook": {
            "validatingWebhookConfigurationAnnotations": ready_when_injected,
            "mutatingWebhookConfigurationAnnotations": dict(ready_when_injected),
        },
    }
    if role_arn is not None:
        values["serviceAccount"] = {
            "name": CERT_MANAGER_SERVICE_ACCOUNT,
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        }
    return ChartRelease(
        release=CERT_MANAGER_CHART,
        chart=CERT_MANAGER_CHART,
        version=CERT_MANAGER_VERSION,
        repository=CERT_MANAGER_REPOSITORY,
        namespace=CERT_MANAGER_NAMESPACE,
        values=values,
    )


def cert_manager_subject() -> str:
    return f"system:serviceaccount:{CERT_MANAGER_NAMESPACE}:{CERT_MANAGER_SERVICE_ACCOUNT}"


def acme_challenge_name(domain: str) -> str:
    """The TXT record a DNS-01 challenge for domain is answered in, as Route53 normalizes record names
    for its IAM conditions (lower case, no trailing dot)."""
    return f"_acme-challenge.{domain.lower().rstrip('.')}"


def dns01_policy(partition: str, hosted_zone_id: str, domain: str) -> str:
    """cert-manager's documented Route53 permissions, narrowed to one zone, TXT records and the domain's
    challenge name (no ListHostedZonesByName: the issuer names the zone)."""
    zone = f"arn:{partition}:route53:::hostedzone/{hosted_zone_id}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "route53:GetChange",
                    "Resource": f"arn:{partition}:route53:::change/*",
                },
                {"Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": zone},
                {
                    "Effect": "Allow",
                    "Action": "route53:ChangeResourceRecordSets",
                    "Resource": zone,
                    "Condition": {
                        "ForAllValues:StringEquals": {
                            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                                acme_challenge_name(domain)
                            ],
                        }
                    },
                },
            ],
        }
    )


def acme_cluster_issuer(settings: Environment, region: str) -> K8sObject:
    """The ClusterIssuer `gateway.clusterIssuer`: the stack's ACME account, DNS-01 in its Route53 zone for
    the gateway's domain, with cert-manager's ambient (IRSA) credentials."""
    if settings.dns is None or settings.gateway.cluster_issuer is None:
        raise ValueError("an ACME ClusterIssuer needs dns.hostedZoneId and gateway.clusterIssuer")
    acme: dict[str, Any] = {
        "server": settings.acme.server,
        "privateKeySecretRef": {"name": ACME_ACCOUNT_KEY_SECRET},
        "solvers": [
            {
                "selector": {"dnsZones": [settings.domain]},
                "dns01": {"route53": {"region": region, "hostedZoneID": settings.dns.hosted_zone_id}},
            }
        ],
    }
    if settings.acme.email is not None:
        acme["email"] = settings.acme.email
    return {
        "apiVersion": CERT_MANAGER_API_VERSION,
        "kind": "ClusterIssuer",
        "metadata": {
            "name": settings.gateway.cluster_issuer,
            "labels": platform_labels(),
        },
        "spec": {"acme": acme},
    }


def needs_acme_issuer(settings: Environment) -> bool:
    """eks with tls `cert-manager`: the Certificate's issuer is ours to create."""
    return settings.cluster.provider == "eks" and settings.gateway.tls == "cert-manager"


def default_storage_class_parameters(kms_key_arn: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    return {"type": "gp3", "encrypted": "true", "kmsKeyId": kms_key_arn}


def metrics_server_chart() -> ChartRelease:
    """metrics-server for an existing cluster (kind). kind's kubelets serve self-signed certificates,
    which metrics-server refuses unless told not to verify them (its README: `--kubelet-insecure-tls`);
    acceptable on a laptop cluster, and never rendered for EKS, whose add-on needs no such flag."""
    return ChartRelease(
        release=METRICS_SERVER_CHART,
        chart=METRICS_SERVER_CHART,
        version=METRICS_SERVER_VERSION,
        repository=METRICS_SERVER_REPOSITORY,
        namespace=METRICS_SERVER_NAMESPACE,
        values={"args": ["--kubelet-insecure-tls"]},
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
    """cert-manager (and on eks its ACME ClusterIssuer) when the gateway's TLS needs it; on eks the AWS Load
    Balancer Controller and the default StorageClass; on an existing cluster metrics-server.

    `ready` lists what the gateway must wait for: the charts, whose CRDs, webhooks and controllers its
    Certificate, ClusterIssuer and load-balanced Service need, and the issuer its Certificate names.
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
        self.cert_manager_role: aws.iam.Role | None = None
        self.cluster_issuer: pulumi.Resource | None = None
        self.load_balancer_controller: pulumi.Resource | None = None
        self.load_balancer_controller_role: aws.iam.Role | None = None
        self.storage_class: pulumi.Resource | None = None
        self.metrics_server: pulumi.Resource | None = None
        if settings.cluster.provider == "eks" and cluster is None:
            raise ValueError("the add-ons of an eks cluster need the EksCluster")

        if needs_cert_manager(settings):
            self._cert_manager(name, settings, cluster)

        if cluster is not None:
            self._load_balancer_controller(name, settings, cluster)
            self.storage_class = k8s.storage.v1.StorageClass(
                f"{name}-storage-class",
                metadata={
                    "name": STORAGE_CLASS,
                    "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                    "labels": platform_labels(),
                },
                provisioner=EBS_CSI_PROVISIONER,
                parameters=default_storage_class_parameters(cluster.kms_key_arn),
                # The volume is made in the zone of the node its pod lands on, not in a zone of its own.
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True,
                reclaim_policy="Delete",
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            release = metrics_server_chart()
            self.metrics_server = install_chart(
                f"{name}-{release.release}", release, pulumi.ResourceOptions(parent=self)
            )

        self.register_outputs(
            {
                "certManager": CERT_MANAGER_VERSION if self.cert_manager is not None else None,
                "clusterIssuer": settings.gateway.cluster_issuer if self.cluster_issuer is not None else None,
                "loadBalancerController": LBC_APP_VERSION
                if self.load_balancer_controller is not None
                else None,
                "defaultStorageClass": STORAGE_CLASS if self.storage_class is not None else None,
                "metricsServer": METRICS_SERVER_VERSION if self.metrics_server is not None else None,
            }
        )

    def _cert_manager(self, name: str, settings: Environment, cluster: EksCluster | None) -> None:
        namespace = kubernetes_resource(
            f"{name}-cert-manager-namespace",
            cert_manager_namespace(),
            pulumi.ResourceOptions(parent=self),
        )
        acme = needs_acme_issuer(settings) and settings.dns is not None and cluster is not None
        role_arn: pulumi.Input[str] | None = None
        after: list[pulumi.Resource] = [namespace]
        if acme:
            assert cluster is not None and settings.dns is not None
            permissions = self._cert_manager_role(name, settings.domain, settings.dns.hosted_zone_id, cluster)
            role_arn = permissions[0].arn
            after.append(permissions[1])
        release = cert_manager_chart(role_arn)
        # After its permissions: a controller started without them fails its first challenge, then backs off.
        self.cert_manager = install_chart(
            f"{name}-{release.release}", release, pulumi.ResourceOptions(parent=self, depends_on=after)
        )
        self.ready.append(self.cert_manager)
        if acme:
            assert cluster is not None
            # After the chart: its CRD and its webhook, which validates every ClusterIssuer, must be up.
            self.cluster_issuer = kubernetes_resource(
                f"{name}-cluster-issuer",
                acme_cluster_issuer(settings, cluster.region),
                pulumi.ResourceOptions(parent=self, depends_on=[self.cert_manager]),
            )
            self.ready.append(self.cluster_issuer)

    def _cert_manager_role(
        self, name: str, domain: str, hosted_zone_id: str, cluster: EksCluster
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        aws_opts = pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider)
        prefix = f"{name}-cert-manager"
        role = aws.iam.Role(
            f"{prefix}-role",
            description=f"cert-manager: answers ACME DNS-01 challenges for {domain} in Route53",
            assume_role_policy=pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], cert_manager_subject())
            ),
            tags=tags(f"{prefix}-role"),
            opts=aws_opts,
        )
        policy = aws.iam.RolePolicy(
            f"{prefix}-dns01",
            role=role.name,
            policy=dns01_policy(partition_of(cluster.region), hosted_zone_id, domain),
            opts=aws_opts,
        )
        self.cert_manager_role = role
        return role, policy

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
