"""What a stack needs before `pulumi up` besides what a plan needs: values only its owner can give.

These are the values without which a first deploy fails half-way or deploys something nobody can use:
nobody could reach the EKS API (no admin access entry, an endpoint closed to the deploying machine), the
gateway's certificate would never be issued (no Route53 zone to answer the DNS-01 challenge in, a domain
nobody owns), the router's image would come from a repository nobody pushes to, and no real token would
name the issuer. Each problem names the setting and the command that sets it, and is one of two kinds:

- missing or unusable (no admin principal, an endpoint open to the whole internet): refused everywhere,
  by `mcpfleet validate` and `pulumi up` (and the review of a plan or preview blocks on it);
- a documented example value the shipped stack files hold (marked EXAMPLE there): a plan, a preview and
  `mcpfleet validate` accept it, the latter warning "not deployable yet"; `mcpfleet validate --deploy`
  and `pulumi up` refuse it. So a pull request that only adds a server validates clean, and the deploy
  workflow still stops before touching a cloud with an example in its stack.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mcpfleet.stacks.models import CONFIG_KEY, Environment

# Account ids AWS's own documentation uses in its examples (the EKS user guide: 111122223333,
# 123456789012, 444455556666). A principal there is an example, never a platform team's role.
DOCUMENTATION_ACCOUNTS = frozenset({"111122223333", "123456789012", "444455556666"})
# RFC 5737: the IPv4 ranges reserved for documentation (TEST-NET-1, -2, -3).
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(block) for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
# RFC 2606 and RFC 6761: names nobody can own, so no certificate authority issues for them.
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TOP_LEVEL = ("example", "test", "invalid", "localhost")
# Zone ids in AWS's and cert-manager's examples carry this word (cert-manager: `DIKER8JEXAMPLE`).
EXAMPLE_MARK = "EXAMPLE"
# The shipped stacks' router repository: the release workflow pushes to ghcr.io/<GitHub owner>/...
EXAMPLE_IMAGE_OWNER = "ghcr.io/example/"

# "missing": no value, or one no deploy can work with; "example": a shipped example value.
ProblemKind = Literal["missing", "example"]


@dataclass(frozen=True)
class DeployProblem:
    """A setting a deploy needs: where it is (a path under `mcpfleet:environment`), what is wrong, the
    command that sets it, and whether the value is missing (or unusable) or still a shipped example."""

    path: tuple[str | int, ...]
    message: str
    command: str
    kind: ProblemKind = "missing"

    @property
    def field(self) -> str:
        """`cluster.adminPrincipalArns[0]`, as `pulumi config set --path` spells it."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def describe(self) -> str:
        return f"{self.message}; set it with: {self.command}"


def config_command(env: str, path: tuple[str | int, ...], value: str) -> str:
    """`pulumi config set --path 'mcpfleet:environment.<path>' <value> -s <env>`."""
    problem = DeployProblem(path, "", "")
    return f"pulumi config set --path '{CONFIG_KEY}.{problem.field}' {value} -s {env}"


def is_documentation_account(principal_arn: str) -> bool:
    fields = principal_arn.split(":", 5)
    return len(fields) == 6 and fields[4] in DOCUMENTATION_ACCOUNTS


def cidr_problem(cidr: str) -> str | None:
    """Why a CIDR cannot be one the deploying machines come from, or None."""
    network = ipaddress.IPv4Network(cidr, strict=False)
    if network.prefixlen == 0:
        return "opens the API endpoint to the whole internet"
    if any(network.overlaps(block) for block in DOCUMENTATION_RANGES):
        return "is in a documentation range (RFC 5737), the shipped example"
    if not network.is_global:
        # EKS refuses reserved blocks in publicAccessCidrs; the private endpoint serves the VPC itself.
        return "is not a public range (EKS accepts only public addresses there)"
    return None


def is_reserved_domain(domain: str) -> bool:
    name = domain.lower().removeprefix("*.")
    if name.rsplit(".", 1)[-1] in RESERVED_TOP_LEVEL:
        return True
    return is_example_domain(name)


def is_example_domain(domain: str) -> bool:
    """example.com, .net, .org and their subdomains: the names documentation (and our stacks) use."""
    name = domain.lower().removeprefix("*.")
    return any(name == reserved or name.endswith(f".{reserved}") for reserved in RESERVED_DOMAINS)


def is_documentation_cidr(cidr: str) -> bool:
    network = ipaddress.IPv4Network(cidr, strict=False)
    return network.prefixlen > 0 and any(network.overlaps(block) for block in DOCUMENTATION_RANGES)


def deploy_problems(settings: Environment, env: str) -> list[DeployProblem]:
    """What keeps a valid stack from deploying: user values missing or still the shipped examples.

    Every stack names where the router's image comes from; EKS stacks also need their admins, the
    deploying machines' addresses, a Route53 zone and domain, and a real token issuer. An existing
    cluster (kind) is reached through its kubeconfig context and serves a self-signed certificate.
    """
    problems = _router_problems(settings, env)
    if settings.cluster.provider != "eks":
        return problems
    problems += _eks_problems(settings, env)
    return problems


def _router_problems(settings: Environment, env: str) -> list[DeployProblem]:
    repository = settings.router.image_repository
    if not repository.startswith(EXAMPLE_IMAGE_OWNER):
        return []
    path: tuple[str | int, ...] = ("router", "imageRepository")
    return [
        DeployProblem(
            path,
            f"{repository} is the shipped example: name the repository .github/workflows/release-router.yml"
            " pushes the MCP router's image to (ghcr.io/<GitHub owner>/mcpfleet-router)",
            config_command(env, path, "ghcr.io/GITHUB_OWNER/mcpfleet-router"),
            "example",
        )
    ]


def _eks_problems(settings: Environment, env: str) -> list[DeployProblem]:
    cluster = settings.cluster
    problems: list[DeployProblem] = []
    admin_value = "arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME"
    if not cluster.admin_principal_arns:
        path: tuple[str | int, ...] = ("cluster", "adminPrincipalArns", 0)
        problems.append(
            DeployProblem(
                ("cluster", "adminPrincipalArns"),
                "no IAM principal gets cluster admin: with creator rights off, nobody, the deploy"
                " included, could reach the Kubernetes API",
                config_command(env, path, admin_value),
            )
        )
    for index, arn in enumerate(cluster.admin_principal_arns):
        if is_documentation_account(arn):
            path = ("cluster", "adminPrincipalArns", index)
            problems.append(
                DeployProblem(
                    path,
                    f"{arn} is in AWS's documentation account, the shipped example: name your platform"
                    " team's role, the one `pulumi up` runs as",
                    config_command(env, path, admin_value),
                    "example",
                )
            )
    cidr_value = "RUNNER_EGRESS_IP/32"
    if not cluster.endpoint_public_access_cidrs:
        path = ("cluster", "endpointPublicAccessCidrs", 0)
        problems.append(
            DeployProblem(
                ("cluster", "endpointPublicAccessCidrs"),
                "the API endpoint would be private, and the machine running `pulumi up` is outside the VPC"
                " it creates: list the public addresses your deploy runners and operators come from",
                config_command(env, path, cidr_value),
            )
        )
    for index, cidr in enumerate(cluster.endpoint_public_access_cidrs):
        why = cidr_problem(cidr)
        if why is not None:
            path = ("cluster", "endpointPublicAccessCidrs", index)
            kind: ProblemKind = "example" if is_documentation_cidr(cidr) else "missing"
            problems.append(DeployProblem(path, f"{cidr} {why}", config_command(env, path, cidr_value), kind))
    zone_value = "HOSTED_ZONE_ID"
    if settings.dns is None:
        path = ("dns", "hostedZoneId")
        problems.append(
            DeployProblem(
                ("dns",),
                "no Route53 zone: nothing would point the domain at the gateway, and cert-manager could not"
                " answer the DNS-01 challenge of its certificate",
                config_command(env, path, zone_value),
            )
        )
    elif EXAMPLE_MARK in settings.dns.hosted_zone_id:
        path = ("dns", "hostedZoneId")
        problems.append(
            DeployProblem(
                path,
                f"{settings.dns.hosted_zone_id} is the shipped example zone id",
                config_command(env, path, zone_value),
                "example",
            )
        )
    if is_reserved_domain(settings.domain):
        path = ("domain",)
        problems.append(
            DeployProblem(
                path,
                f"{settings.domain} is a reserved example name nobody owns: no certificate can be issued"
                " for it; use a name in your Route53 zone",
                config_command(env, path, "mcp.YOUR_DOMAIN"),
                "example" if is_example_domain(settings.domain) else "missing",
            )
        )
    issuer = settings.gateway.auth.issuer
    host = (urlsplit(str(issuer)).hostname or "").lower()
    if is_reserved_domain(host):
        path = ("gateway", "auth", "issuer")
        problems.append(
            DeployProblem(
                path,
                f"{issuer} is a reserved example name: no real token names it as its issuer, so the gateway"
                " would refuse every caller; name your identity provider's issuer (the tokens' `iss`)",
                config_command(env, path, "https://YOUR_IDENTITY_PROVIDER/"),
                "example" if is_example_domain(host) else "missing",
            )
        )
    return problems
