"""Per-environment settings, read from `stacks/Pulumi.<env>.yaml` under the `mcpfleet:environment` key."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mcpfleet.catalog.models import ImageRepository
from mcpfleet.errors import field_error
from mcpfleet.model import Cidr, DnsLabel, Hostname, HttpsUrl, Model, RateLimits

CONFIG_KEY = "mcpfleet:environment"

KubernetesVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}$")]
# Graviton (arm64) families carry a `g` right after the generation digit (m7g, c7gn, r8g, x2gd, im4gn,
# g5g), besides the first, `a1`. One node group runs one architecture's AMI (components/cluster/eks.py).
GRAVITON_FAMILY = re.compile(r"^([a-z]+[0-9]+g|a1$)")


class NodeGroup(Model):
    """Managed worker nodes of an EKS cluster."""

    instance_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+\.[a-z0-9]+$")]] = Field(
        min_length=1, description="EC2 instance types, e.g. `m7i.large`."
    )
    min_size: int = Field(ge=1, le=1000, description="Fewest nodes.")
    desired_size: int = Field(ge=1, le=1000, description="Nodes at rest.")
    max_size: int = Field(ge=1, le=1000, description="Most nodes.")
    disk_size_gib: int = Field(default=50, ge=20, le=16384, description="Encrypted root volume size.")

    @model_validator(mode="after")
    def _ordered(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise field_error("need minSize <= desiredSize <= maxSize", "desiredSize")
        if len({is_arm64(instance_type) for instance_type in self.instance_types}) > 1:
            raise field_error(
                "instanceTypes mix arm64 (Graviton) and x86_64 types: one node group runs one"
                " architecture's image; list types of one kind",
                "instanceTypes",
            )
        return self


def is_arm64(instance_type: str) -> bool:
    return GRAVITON_FAMILY.match(instance_type.split(".")[0]) is not None


class Cluster(Model):
    """Where the fleet runs: an existing cluster (kind for local) or an EKS cluster we create."""

    provider: Literal["existing", "eks"] = Field(
        description="`existing`: use a kubeconfig context; `eks`: create the cluster with pulumi-aws."
    )
    context: str | None = Field(
        default=None, min_length=1, description="existing: kubeconfig context, e.g. `kind-mcpfleet`."
    )
    kubeconfig: str | None = Field(
        default=None,
        description="existing: kubeconfig file; default is $KUBECONFIG or ~/.kube/config.",
    )
    region: str | None = Field(
        default=None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="eks: AWS region."
    )
    version: KubernetesVersion | None = Field(default=None, description="eks: Kubernetes version, pinned.")
    endpoint_public_access_cidrs: list[Cidr] = Field(
        default_factory=list,
        description=(
            "eks: public CIDRs that may reach the API endpoint: those of the machines that run `pulumi up`"
            " (the deploy workflow's runners, your operators). The program talks to the cluster's API in"
            " the same run that creates it, from outside the VPC, so a deploy needs at least one."
        ),
    )
    node_group: NodeGroup | None = Field(default=None, description="eks: managed node group.")
    availability_zones: list[
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")]
    ] = Field(
        default_factory=list,
        description="eks: exactly three availability zones of the region, e.g. `eu-west-1a`.",
    )
    vpc_cidr: Cidr | None = Field(
        default=None, description="eks: IPv4 range of the VPC, e.g. `10.40.0.0/16`."
    )
    admin_principal_arns: list[
        Annotated[
            str,
            StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$"),
        ]
    ] = Field(
        default_factory=list,
        description=(
            "eks: IAM roles or users of the platform team, granted cluster admin by access entries; the"
            " identity that runs `pulumi up` must be one of them (the creator gets no implicit access)."
        ),
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_holds_six_subnets(cls, value: str | None) -> str | None:
        if value is None:
            return None
        network = ipaddress.IPv4Network(value, strict=False)
        if str(network) != value:
            raise ValueError(f"has host bits set: the network is {network}")
        if not 16 <= network.prefixlen <= 25:
            # The cluster's six subnets are eighths of the VPC; AWS allows VPCs of /16 to /28 and subnets
            # no smaller than /28, the eighth of a /25.
            raise ValueError("must be a /16 to /25: the cluster's six subnets are eighths of it")
        return value

    @field_validator("region")
    @classmethod
    def _region_in_aws_partition(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(("cn-", "us-gov-")):
            raise ValueError(
                "is outside the `aws` partition: the AWS Load Balancer Controller's IAM policy shipped in"
                " components/cluster names only `aws` ARNs"
            )
        return value

    @model_validator(mode="after")
    def _fields_for_provider(self) -> Cluster:
        eks_only = {
            "region",
            "version",
            "endpoint_public_access_cidrs",
            "node_group",
            "availability_zones",
            "vpc_cidr",
            "admin_principal_arns",
        }
        existing_only = {"context", "kubeconfig"}
        given = {name for name in self.model_fields_set if getattr(self, name)}
        if self.provider == "existing":
            wrong = given & eks_only
            if self.context is None:
                raise field_error("an existing cluster needs `context`", "context")
        else:
            wrong = given & existing_only
            missing = [f for f in ("region", "version", "node_group", "vpc_cidr") if getattr(self, f) is None]
            if missing:
                raise field_error(f"an eks cluster needs {', '.join(_camel(m) for m in missing)}", "provider")
            if len(self.availability_zones) != 3 or len(set(self.availability_zones)) != 3:
                raise field_error(
                    "an eks cluster needs three distinct availabilityZones", "availabilityZones"
                )
            if any(not zone.startswith(self.region or "") for zone in self.availability_zones):
                raise field_error("availabilityZones must be in the cluster's region", "availabilityZones")
        if wrong:
            raise field_error(
                f"{', '.join(sorted(_camel(w) for w in wrong))} not allowed with provider {self.provider}",
                _camel(sorted(wrong)[0]),
            )
        return self


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Route53 hosted zone ids are upper-case letters and digits (`Z` and up to 31 more in practice).
HostedZoneId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,32}$")]
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class Dns(Model):
    """eks: the public Route53 zone that holds `domain`. The program writes the gateway's record there
    (a CNAME to its load balancer) and cert-manager answers the ACME DNS-01 challenge for `domain` there,
    as a role allowed to change only that name's TXT record in only this zone."""

    hosted_zone_id: HostedZoneId = Field(
        description="Id of the public hosted zone `domain` belongs to (`aws route53 list-hosted-zones`)."
    )


class Acme(Model):
    """The ACME account of the ClusterIssuer the program creates (`gateway.clusterIssuer`, eks)."""

    server: HttpsUrl = Field(
        default=LETS_ENCRYPT,
        description="ACME directory: Let's Encrypt's production one by default (its staging directory"
        " issues untrusted certificates).",
    )
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = Field(
        default=None, description="Contact address given to the ACME server (optional)."
    )


class Mesh(Model):
    """Istio service mesh. Mutual TLS is STRICT in every environment; that is not a setting."""

    istio_version: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+\.[0-9]+$")] = Field(
        default="1.27.3", description="Version of the pinned Istio charts (base, istiod)."
    )
    outbound_traffic_policy: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = Field(
        default="REGISTRY_ONLY",
        description="`REGISTRY_ONLY`: servers reach only declared egress hosts (ServiceEntry per host).",
    )


class Secrets(Model):
    """Secret delivery. Cloud: Secrets Manager synced by External Secrets; local: Pulumi config secrets."""

    refresh_interval: Annotated[str, StringConstraints(pattern=r"^[0-9]+(s|m|h)$")] = Field(
        default="1h", description="How often External Secrets re-reads the store (picks up rotations)."
    )
    name_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]*$")] = Field(
        default="mcpfleet/", description="Prefix of Secrets Manager names: `<prefix><env>/<key>`."
    )


class Monitoring(Model):
    """kube-prometheus-stack: Prometheus, Alertmanager, Grafana."""

    retention: Annotated[str, StringConstraints(pattern=r"^[0-9]+(h|d|w)$")] = Field(
        default="15d", description="How long Prometheus keeps samples."
    )
    storage_size: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(Gi|Ti)$")] | None = Field(
        default=None, description="Persistent volume per Prometheus replica; none keeps data on the node."
    )
    prometheus_replicas: int = Field(default=1, ge=1, le=5, description="Prometheus replicas.")


# Asymmetric only: with an HMAC algorithm the gateway would hold the issuer's signing secret.
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class GatewayAuth(Model):
    """How the gateway checks callers' bearer tokens (JWT) before any request reaches a server.

    Each server's audience is its own public URL, `https://<domain>/servers/<name>`: a token minted for
    one server is refused at every other. The issuer's public key is environment-specific and set per
    stack: `pulumi config set mcpfleet:gatewayJwtPublicKey -- "$(cat issuer-public.pem)"`.
    """

    issuer: HttpsUrl = Field(description="The tokens' `iss` claim, exactly.")
    algorithm: JwtAlgorithm = Field(default="RS256", description="The one signature algorithm accepted.")
    roles_claim: ClaimName = Field(
        default="roles",
        description=(
            "Claim holding the caller's roles: one space-separated string (as OAuth `scope`) or a list of"
            " strings. The MCP router reads it from the verified token; the gateway refuses other types."
        ),
    )
    subject_claim: ClaimName = Field(
        default="sub", description="Claim naming the caller, for rate limits and access logs."
    )


class Gateway(Model):
    """The HAProxy gateway in front of every server."""

    replicas: int = Field(default=1, ge=1, le=50, description="Gateway replicas at rest.")
    max_replicas: int = Field(default=2, ge=1, le=100, description="Most replicas the autoscaler adds.")
    tls: Literal["cert-manager", "acm", "self-signed"] = Field(
        default="cert-manager",
        description=(
            "`cert-manager`: a Certificate from `clusterIssuer`; `acm`: TLS ends at the NLB;"
            " `self-signed`: a self-signed cert-manager issuer (local only)."
        ),
    )
    cluster_issuer: str | None = Field(
        default=None, description="cert-manager ClusterIssuer name (with `tls: cert-manager`)."
    )
    acm_certificate_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$",
        description="ACM certificate for the NLB listener (with `tls: acm`).",
    )
    auth: GatewayAuth = Field(description="Bearer-token checks for every server.")
    rate_limits: RateLimits = Field(
        default_factory=RateLimits, description="Default rate limits; a catalog entry may set its own."
    )
    node_port: int | None = Field(
        default=None,
        ge=30000,
        le=32767,
        description=(
            "An existing cluster with nothing serving LoadBalancer Services (kind): expose the gateway on"
            " this port of every node (a NodePort Service) instead of through a load balancer; kind maps it"
            " to the host (stacks/kind-local.yaml)."
        ),
    )
    unauthenticated_per_source_per_minute: int = Field(
        default=120,
        ge=1,
        le=1_000_000,
        description=(
            "Requests a minute one client address may make without a valid token (metadata lookups,"
            " unknown paths, refusals) before the gateway answers 429; counted per gateway replica."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Gateway:
        if self.max_replicas < self.replicas:
            raise field_error("maxReplicas is below replicas", "maxReplicas")
        if self.tls == "acm" and self.acm_certificate_arn is None:
            raise field_error("tls acm needs acmCertificateArn", "tls")
        if self.tls == "cert-manager" and self.cluster_issuer is None:
            raise field_error("tls cert-manager needs clusterIssuer", "tls")
        return self


class Router(Model):
    """The MCP router behind the gateway (docs/router.md): the one place that reads each MCP message and
    decides on it (method, tool, access, session ownership). Only the gateway reaches it; only it reaches
    the servers.

    Its image is built and pushed by `.github/workflows/release-router.yml`; the build a stack runs is
    named by digest outside the repository, as the deploy workflow does:
    `pulumi config set routerImage <imageRepository>@sha256:<digest>`.
    """

    image_repository: ImageRepository = Field(
        default="ghcr.io/example/mcpfleet-router",
        description=(
            "Where the release workflow pushes the router's image: `ghcr.io/<GitHub owner>/mcpfleet-router`."
            " `routerImage` must name an image of this repository."
        ),
    )
    replicas: int = Field(default=1, ge=1, le=50, description="Router replicas at rest.")
    max_replicas: int = Field(default=2, ge=1, le=100, description="Most replicas the autoscaler adds.")
    unpinned_tools: Literal["serve", "withhold"] = Field(
        default="withhold",
        description=(
            "Tools the catalog declares without a `sha256` pin: `withhold` lists and runs none of them (what"
            " a server serves under such a name is unchecked), `serve` serves them while tools are still"
            " changing (dev, local). Pinned tools are always checked: one whose live definition differs"
            " from its pin is never served."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Router:
        if self.max_replicas < self.replicas:
            raise field_error("maxReplicas is below replicas", "maxReplicas")
        return self


class Environment(Model):
    """One environment's settings. prod is the strictest."""

    cluster: Cluster = Field(description="Cluster the environment deploys to.")
    domain: Hostname = Field(description="DNS domain the gateway serves, e.g. `mcp.dev.example.com`.")
    dns: Dns | None = Field(
        default=None, description="eks: the Route53 zone of `domain` (needed to deploy, not to plan)."
    )
    acme: Acme = Field(
        default_factory=Acme, description="eks with `gateway.tls: cert-manager`: the issuer's ACME account."
    )
    namespace_strategy: Literal["per-team", "per-server", "single"] = Field(
        default="per-team",
        description=(
            "`per-team`: one namespace per owning team (`<prefix><team>`); `per-server`: one per"
            " server; `single`: all servers in `<prefix>servers`."
        ),
    )
    namespace_prefix: Annotated[str, StringConstraints(pattern=r"^([a-z][-a-z0-9]{0,11}-)?$")] = Field(
        default="mcp-", description="Prefix of server namespaces."
    )
    gateway_namespace: DnsLabel = Field(default="mcp-gateway", description="Namespace of the gateway.")
    monitoring_namespace: DnsLabel = Field(
        default="monitoring", description="Namespace of the monitoring stack."
    )
    default_replicas: int = Field(default=1, ge=1, le=100, description="Replicas of a server that sets none.")
    minimum_replicas: int = Field(
        default=1, ge=1, le=100, description="No server runs fewer replicas than this here (HA floor)."
    )
    default_max_replicas: int = Field(
        default=3, ge=1, le=1000, description="Autoscaler ceiling of a server that sets none."
    )
    strictness: Literal["relaxed", "standard", "strict"] = Field(
        description=(
            "`relaxed`: spread across zones when possible; `standard`: same, and policy mandatory;"
            " `strict`: pods must spread across zones and hosts."
        )
    )
    mesh: Mesh = Field(default_factory=Mesh, description="Service mesh.")
    secrets: Secrets = Field(default_factory=Secrets, description="Secret delivery.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Metrics, alerts, dashboards.")
    gateway: Gateway = Field(description="The gateway in front of the servers.")
    router: Router = Field(default_factory=Router, description="The MCP router between gateway and servers.")
    servers: list[Annotated[str, StringConstraints(pattern=r"^(\*|[a-z]([-a-z0-9]*[a-z0-9])?)$")]] = Field(
        default_factory=lambda: ["*"],
        description="Servers to deploy among those the catalog enables here; `*` for all of them.",
    )

    @model_validator(mode="after")
    def _dns_on_eks_only(self) -> Environment:
        if self.dns is not None and self.cluster.provider != "eks":
            raise field_error("dns is an eks setting (Route53); an existing cluster takes none", "dns")
        return self

    @model_validator(mode="after")
    def _node_port_on_existing_only(self) -> Environment:
        if self.gateway.node_port is not None and self.cluster.provider == "eks":
            raise field_error(
                "nodePort is for an existing cluster; on eks the AWS Load Balancer Controller serves the"
                " gateway's LoadBalancer Service",
                "gateway",
                "nodePort",
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        if self.default_replicas < self.minimum_replicas:
            raise field_error("defaultReplicas is below minimumReplicas", "defaultReplicas")
        if self.default_max_replicas < self.default_replicas:
            raise field_error("defaultMaxReplicas is below defaultReplicas", "defaultMaxReplicas")
        return self
