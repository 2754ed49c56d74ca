"""Supply chain: in prod, images are pinned by digest, so what was reviewed is what runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import PROD_ONLY, Case, Context, Rule
from policies.rules._images import images


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    return [
        f"{w} runs {image.text}, not pinned by digest"
        for w, image in images(resource_type, inputs)
        if not image.pinned
    ]


RULE = Rule(
    id="image-pinned-by-digest",
    description="Container images are pinned by sha256 digest (blocking in prod, advisory elsewhere).",
    severity="high",
    remediation="Set image.digest (with image.digestSource, the public page that lists it) in the catalog "
    "entry, or in environments.prod.image; never copy a digest from an unverified source.",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    tags=("supply-chain",),
    cases=(
        Case("tag and digest", "pass", (deployment(),)),
        Case("tag only", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),)),
        Case(
            "malformed digest", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha@sha256:abc"}),)
        ),
    ),
)
