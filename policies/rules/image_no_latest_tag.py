"""Supply chain: no `latest` and no untagged image (which means latest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Rule
from policies.rules._images import images


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    messages = []
    for w, image in images(resource_type, inputs):
        if image.tag == "latest" and not image.pinned:
            messages.append(f"{w} runs {image.text}: `latest` moves under you")
        elif image.tag is None and not image.pinned:
            messages.append(f"{w} runs {image.text} with no tag, which pulls `latest`")
    return messages


RULE = Rule(
    id="image-no-latest-tag",
    description="Container images name a fixed version: no `latest` tag, no untagged image.",
    severity="high",
    remediation="Set image.tag in the catalog entry to the release the project publishes (e.g. v1.2.3), "
    "ideally with image.digest.",
    catalog_fix="set `environments.{env}.image.tag` (or `image.tag`, for every environment) to a release "
    "the project publishes; if it publishes no version tags, pin today's image instead with "
    "`environments.{env}.image.digest` and `environments.{env}.image.digestSource`",
    validate_resource=validate,
    tags=("supply-chain",),
    cases=(
        Case("versioned tag", "pass", (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),)),
        Case(
            "digest only", "pass", (deployment({f"{C0}.image": "ghcr.io/example/alpha@sha256:" + "1" * 64}),)
        ),
        Case("latest", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha:latest"}),)),
        Case("untagged", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha"}),)),
        Case("registry port is not a tag", "violate", (deployment({f"{C0}.image": "localhost:5000/alpha"}),)),
    ),
)
