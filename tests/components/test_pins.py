"""Every chart version and image pin in components/ names, beside it, the public source that shows it exists:
GIVEN each pinned constant, THEN its module's text cites that exact version at its source (a tag, a commit,
a recorded digest), so bumping a pin without its source fails here; and the node-capacity figures are those
of the pinned versions."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

from components import addons
from components.manifests import gateway, monitoring, secrets
from mcpfleet.stacks.models import Mesh
from policies.rules._capacity import CHARTS


def source_of(module: ModuleType) -> str:
    return inspect.getsource(module)


PINS = [
    # (module, the pinned value, the citation that must name it beside the pin)
    (
        monitoring,
        monitoring.CHART_VERSION,
        f"tag `kube-prometheus-stack-{monitoring.CHART_VERSION}` of\n"
        "# prometheus-community/helm-charts (commit ",
    ),
    (
        addons,
        addons.CERT_MANAGER_VERSION,
        f"tag `{addons.CERT_MANAGER_VERSION}` of cert-manager/cert-manager (commit ",
    ),
    (addons, addons.LBC_VERSION, f"chart `{addons.LBC_VERSION}`, appVersion `{addons.LBC_APP_VERSION}`:"),
    (addons, addons.LBC_APP_VERSION, f"`docs/install/iam_policy.json` at tag `{addons.LBC_APP_VERSION}`"),
    (
        addons,
        addons.METRICS_SERVER_VERSION,
        f"tag `metrics-server-helm-chart-{addons.METRICS_SERVER_VERSION}` of",
    ),
    (secrets, secrets.ESO_CHART_VERSION, f"at tag helm-chart-{secrets.ESO_CHART_VERSION}:"),
    (gateway, gateway.HAPROXY_VERSION, f"`repos/haproxy/remote/{gateway.HAPROXY_VERSION}.md` at commit"),
    (
        importlib.import_module("components.manifests.mesh"),
        Mesh().istio_version,
        f"default {Mesh().istio_version}: tag {Mesh().istio_version} of istio/istio, commit",
    ),
]


@pytest.mark.parametrize(
    ("module", "pinned", "citation"), PINS, ids=[f"{m.__name__}:{v}" for m, v, _ in PINS]
)
def test_each_pin_names_its_public_source(module: ModuleType, pinned: str, citation: str) -> None:
    assert pinned in citation
    assert citation in source_of(module), f"{module.__name__}: no source cited for {pinned}"


def test_the_gateway_image_is_pinned_by_digest_to_its_tag() -> None:
    assert f"docker.io/library/haproxy:{gateway.HAPROXY_VERSION}@{gateway.HAPROXY_DIGEST}" == gateway.IMAGE
    assert gateway.HAPROXY_DIGEST.startswith("sha256:") and len(gateway.HAPROXY_DIGEST) == 71


def test_the_capacity_figures_are_those_of_the_pinned_charts() -> None:
    pinned = {
        ("kube-prometheus-stack", monitoring.CHART_VERSION),
        ("cert-manager", addons.CERT_MANAGER_VERSION),
        ("aws-load-balancer-controller", addons.LBC_VERSION),
        ("metrics-server", addons.METRICS_SERVER_VERSION),
        ("external-secrets", secrets.ESO_CHART_VERSION),
        *((chart, Mesh().istio_version) for chart in ("base", "istiod", "cni", "ztunnel")),
    }
    assert pinned == set(CHARTS)
