"""Supply chain: images come only from registries the platform team trusts (a config list)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._images import images

DEFAULT_REGISTRIES = [
    "docker.io",
    "ghcr.io",
    "quay.io",
    "mcr.microsoft.com",
    "public.ecr.aws",
    "registry.k8s.io",
]


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    allowed = [str(r) for r in context.config.get("allowedRegistries", DEFAULT_REGISTRIES)]
    return [
        f"{w} pulls from {image.registry}, which is not an allowed registry ({', '.join(allowed)})"
        for w, image in images(resource_type, inputs)
        if image.registry not in allowed
    ]


RULE = Rule(
    id="image-registry-allowlist",
    description="Container images come from an allowed registry.",
    severity="high",
    remediation="Use an image published on an allowed registry, or ask the platform team to add the registry "
    "to allowedRegistries in policies/config/<env>.json.",
    catalog_fix="set `image.repository` to the image on an allowed registry, or ask the platform team to "
    "allow its registry (allowedRegistries in policies/config/{env}.json)",
    validate_resource=validate,
    config_schema={
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_REGISTRIES,
            "description": "Registry hosts images may come from (docker.io for unqualified names).",
        }
    },
    tags=("supply-chain",),
    cases=(
        Case("ghcr.io", "pass", (deployment(),)),
        Case("unqualified Docker Hub name", "pass", (deployment({f"{C0}.image": "haproxy:2.6.18"}),)),
        Case(
            "unknown registry", "violate", (deployment({f"{C0}.image": "registry.evil.example/alpha:1.2.3"}),)
        ),
    ),
)
