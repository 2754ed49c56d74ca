"""The gateway's DNS name: a Route53 record for `domain` pointing at the gateway's load balancer (eks).

The AWS Load Balancer Controller creates the NLB when the gateway's LoadBalancer Service appears and
writes its DNS name into the Service's `status.loadBalancer.ingress[0].hostname`; pulumi-kubernetes waits
for that field before the Service counts as created, so the record is made as soon as the NLB exists.
A CNAME, not an alias: an alias needs the NLB's own hosted zone id, which the Service's status does not
carry. Hence `domain` must be a name inside the zone, not the zone's apex (no CNAME may sit there).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster.eks import EksCluster
from mcpfleet.stacks.models import Environment

TYPE_TOKEN = "mcpfleet:index:GatewayDns"
# Short enough that a replaced load balancer is followed within minutes.
RECORD_TTL_SECONDS = 300


def ingress_hostname(status: Any) -> str:
    """The load balancer's DNS name out of a Service's status (typed output or plain dict)."""
    load_balancer = getattr(status, "load_balancer", None)
    if load_balancer is None and isinstance(status, dict):
        load_balancer = status.get("load_balancer") or status.get("loadBalancer")
    ingress = getattr(load_balancer, "ingress", None)
    if ingress is None and isinstance(load_balancer, dict):
        ingress = load_balancer.get("ingress")
    for entry in ingress or ():
        hostname = entry.get("hostname") if isinstance(entry, dict) else getattr(entry, "hostname", None)
        if hostname:
            return str(hostname)
    raise ValueError("the gateway's Service reports no load balancer hostname")


def load_balancer_hostname(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    """`status.load_balancer.ingress[0].hostname` of the gateway's Service."""
    return service.status.apply(ingress_hostname)


class GatewayDns(pulumi.ComponentResource):
    """`domain` CNAME to the gateway's load balancer, in the stack's Route53 zone (`dns.hostedZoneId`)."""

    def __init__(
        self,
        name: str,
        settings: Environment,
        cluster: EksCluster,
        hostname: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        if settings.dns is None:
            raise ValueError("the gateway's DNS record needs dns.hostedZoneId in the stack file")
        self.record = aws.route53.Record(
            f"{name}-record",
            zone_id=settings.dns.hosted_zone_id,
            name=settings.domain,
            type="CNAME",
            ttl=RECORD_TTL_SECONDS,
            records=[hostname],
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider),
        )
        self.fqdn = settings.domain
        self.register_outputs({"fqdn": self.fqdn})
