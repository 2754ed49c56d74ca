"""Every manifest of every environment is valid Kubernetes 1.33, strictly (no unknown fields).

Custom resources (Istio, Prometheus Operator, External Secrets, cert-manager) have no schema in
kubernetes-validate; they are checked by their components' own tests.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.run import plan
from tests.sample import SAMPLE_CATALOG, sample_catalog

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"
CUSTOM_RESOURCE_GROUPS = {
    "security.istio.io",
    "networking.istio.io",
    "monitoring.coreos.com",
    "external-secrets.io",
    "cert-manager.io",
}


@pytest.mark.parametrize(
    "catalog",
    [
        pytest.param(SAMPLE_CATALOG, id="sample", marks=sample_catalog),
        pytest.param(REPO / "tests" / "golden" / "catalog", id="golden"),
    ],
)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_manifests_pass_strict_validation(env: str, catalog: Path) -> None:
    result = plan(env, catalog, REPO / "stacks", None)  # type: ignore[arg-type]
    documents = [
        r.inputs for r in result.registrations if r.type.startswith("kubernetes:") and "kind" in r.inputs
    ]
    assert documents
    for document in documents:
        if document["apiVersion"].split("/")[0] in CUSTOM_RESOURCE_GROUPS:
            continue
        # Raises ValidationError naming the field when a manifest is not valid Kubernetes.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_catches_a_broken_manifest() -> None:
    broken = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
