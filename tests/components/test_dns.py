"""GatewayDns: GIVEN the gateway Service's load balancer hostname, THEN `domain` is a CNAME to it in the
stack's Route53 zone, made through the cluster's AWS provider."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.cluster.eks import EksCluster
from components.dns import (
    RECORD_TTL_SECONDS,
    TYPE_TOKEN,
    GatewayDns,
    ingress_hostname,
    load_balancer_hostname,
)
from tests.components.test_mesh import environment
from tests.components.test_secrets import aws_outputs
from tests.mock_engine import Recorder, recording, run

# What the AWS Load Balancer Controller writes into the Service's status (a made-up NLB name).
NLB = "k8s-mcpgatew-gateway-0123456789-0123456789abcdef.elb.eu-west-1.amazonaws.com"
RECORD_TYPE = "aws:route53/record:Record"


def outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    if args.typ == "kubernetes:core/v1:Service":
        return {"status": {"loadBalancer": {"ingress": [{"hostname": NLB}]}}}
    return aws_outputs(args)


@pytest.fixture
def cloud() -> Iterator[Recorder]:
    yield from recording("dev", outputs)


def test_the_record_points_the_domain_at_the_load_balancer(cloud: Recorder) -> None:
    settings = environment("dev")
    assert settings.dns is not None

    def program() -> None:
        cluster = EksCluster("mcpfleet-dev", settings.cluster)
        service = k8s.core.v1.Service(
            "gateway-service",
            metadata={"name": "gateway", "namespace": "mcp-gateway"},
            spec={"type": "LoadBalancer", "ports": [{"port": 443}]},
        )
        GatewayDns("gateway-dns", settings, cluster, load_balancer_hostname(service))

    run(program)
    cloud.assert_unique_urns()
    record = cloud.one(RECORD_TYPE)
    assert record.parent == cloud.one(TYPE_TOKEN).urn
    assert record.inputs["zoneId"] == settings.dns.hosted_zone_id
    assert record.inputs["name"] == settings.domain
    assert (record.inputs["type"], record.inputs["ttl"], record.inputs["records"]) == (
        "CNAME",
        RECORD_TTL_SECONDS,
        [NLB],
    )
    # Through the cluster's provider, pinned to the stack's region.
    assert record.provider.split("::")[-2] == cloud.one("pulumi:providers:aws").name
    # Made once the Service (and so its load balancer) exists.
    assert cloud.named("gateway-service").urn in record.dependencies


def test_a_stack_without_a_zone_is_refused(cloud: Recorder) -> None:
    settings = environment("dev").model_copy(update={"dns": None})

    def program() -> None:
        cluster = EksCluster("mcpfleet-dev", settings.cluster)
        GatewayDns("gateway-dns", settings, cluster, NLB)

    with pytest.raises(ValueError, match=r"dns\.hostedZoneId"):
        program()


@pytest.mark.parametrize(
    "status",
    [
        {"load_balancer": {"ingress": [{"hostname": NLB}]}},
        {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": NLB}]}},
        SimpleNamespace(load_balancer=SimpleNamespace(ingress=[SimpleNamespace(hostname=NLB)])),
    ],
)
def test_the_hostname_is_read_from_the_status_however_it_arrives(status: Any) -> None:
    assert ingress_hostname(status) == NLB


@pytest.mark.parametrize("status", [None, {}, {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}])
def test_a_status_without_a_hostname_is_an_error_not_an_empty_record(status: Any) -> None:
    with pytest.raises(ValueError, match="no load balancer hostname"):
        ingress_hostname(status)
