"""Image repositories map to the registry host and API name that `docker pull` would use."""

from __future__ import annotations

import pytest

from mcpfleet.pin.reference import Location, locate


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("docker.io/library/haproxy", Location("docker.io", "registry-1.docker.io", "library/haproxy")),
        # Docker Hub's one-part names are official images under library/.
        ("docker.io/haproxy", Location("docker.io", "registry-1.docker.io", "library/haproxy")),
        ("haproxy", Location("docker.io", "registry-1.docker.io", "library/haproxy")),
        ("mcp/fetch", Location("docker.io", "registry-1.docker.io", "mcp/fetch")),
        (
            "index.docker.io/grafana/mcp-grafana",
            Location("index.docker.io", "registry-1.docker.io", "grafana/mcp-grafana"),
        ),
        ("ghcr.io/github/github-mcp-server", Location("ghcr.io", "ghcr.io", "github/github-mcp-server")),
        (
            "quay.io/containers/kubernetes_mcp_server",
            Location("quay.io", "quay.io", "containers/kubernetes_mcp_server"),
        ),
        ("public.ecr.aws/a1b2/tool", Location("public.ecr.aws", "public.ecr.aws", "a1b2/tool")),
        ("gcr.io/project/deep/path", Location("gcr.io", "gcr.io", "project/deep/path")),
        (
            "mcr.microsoft.com/playwright/mcp",
            Location("mcr.microsoft.com", "mcr.microsoft.com", "playwright/mcp"),
        ),
        ("localhost/app", Location("localhost", "localhost", "app")),
        ("127.0.0.1:5000/pin/app", Location("127.0.0.1:5000", "127.0.0.1:5000", "pin/app")),
        ("registry:5000/app", Location("registry:5000", "registry:5000", "app")),
    ],
)
def test_locate(repository: str, expected: Location) -> None:
    assert locate(repository) == expected


def test_manifest_url_names_the_api_host_and_tag() -> None:
    assert (
        locate("haproxy").manifest_url("2.6.34")
        == "https://registry-1.docker.io/v2/library/haproxy/manifests/2.6.34"
    )
