"""Supply chain: images are pinned by digest, so what was reviewed is what runs.

Asked of environments whose strictness is `standard` or `strict` (staging warns of what prod will
block); a relaxed environment (dev) runs what its tags name today, and image-no-latest-tag keeps those
tags fixed. A workload whose pod template says its digest is supplied at deploy (the MCP router in an
offline plan or a preview) is image-digest-at-deploy's to report: `pulumi up` refuses to run it unpinned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rules._examples import C0, deployment
from policies.rules._framework import PROD_ONLY, Case, Context, Rule
from policies.rules._images import DIGEST_AT_DEPLOY_ANNOTATION, digest_at_deploy, images


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    if not context.at_least("standard") or digest_at_deploy(resource_type, inputs):
        return []
    return [
        f"{w} runs {image.text}, not pinned by digest"
        for w, image in images(resource_type, inputs)
        if not image.pinned
    ]


RULE = Rule(
    id="image-pinned-by-digest",
    description="Container images are pinned by sha256 digest where strictness is standard or strict "
    "(blocking in prod).",
    severity="high",
    remediation="Set image.digest (with image.digestSource, the public page that lists it) in the catalog "
    "entry, or in environments.<env>.image; never copy a digest from an unverified source.",
    catalog_fix="set `environments.{env}.image.digest` to the digest of the tag you run, with "
    "`environments.{env}.image.digestSource` naming the public page or registry that lists it (or "
    "`image.digest` and `image.digestSource` for every environment); never copy a digest from an "
    "unverified source",
    validate_resource=validate,
    enforcement=PROD_ONLY,
    tags=("supply-chain",),
    cases=(
        Case("tag and digest", "pass", (deployment(),)),
        Case("tag only", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),)),
        Case(
            "malformed digest", "violate", (deployment({f"{C0}.image": "ghcr.io/example/alpha@sha256:abc"}),)
        ),
        Case(
            "tag only where standard",
            "violate",
            (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),),
            environment="staging",
            stack={"strictness": "standard"},
        ),
        Case(
            "tag with its digest supplied at deploy (reported by image-digest-at-deploy)",
            "pass",
            (
                deployment(
                    {
                        f"{C0}.image": "ghcr.io/example/alpha:1.2.3",
                        "spec.template.metadata.annotations": {DIGEST_AT_DEPLOY_ANNOTATION: "at deploy"},
                    }
                ),
            ),
        ),
        Case(
            "tag only where relaxed",
            "pass",
            (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
    ),
)
