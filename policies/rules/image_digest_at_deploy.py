"""Supply chain: an image whose digest is supplied at deploy is shown for what it is, never as pinned.

The MCP router's image is built from this repository by the release workflow, which reports its digest;
the deploy workflow hands that digest to `pulumi up` (`pulumi config set routerImage
<repository>@sha256:<digest>`), and `pulumi up` refuses to run without it. Until then (an offline plan, a
preview without the setting) the program names the release tag and marks the pod template. This rule
reports such an image wherever image-pinned-by-digest would ask for a digest (strictness `standard` or
`strict`), so a reader of the review sees where its pin comes from; image-pinned-by-digest leaves it to
this rule. Advisory everywhere: the block is `pulumi up`'s refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpfleet.model import ENVIRONMENTS, EnvName
from policies.rules._examples import C0, deployment
from policies.rules._framework import Case, Context, Level, Rule
from policies.rules._images import DIGEST_AT_DEPLOY_ANNOTATION, digest_at_deploy, images

ADVISORY_EVERYWHERE: Mapping[EnvName, Level] = dict.fromkeys(ENVIRONMENTS, "advisory")


def validate(resource_type: str, inputs: Mapping[str, Any], context: Context) -> list[str]:
    source = digest_at_deploy(resource_type, inputs)
    if source is None or not context.at_least("standard"):
        return []
    return [
        f"{w} runs {image.text} here; its digest is {source}"
        for w, image in images(resource_type, inputs)
        if not image.pinned
    ]


_AT_DEPLOY = {"spec.template.metadata.annotations": {DIGEST_AT_DEPLOY_ANNOTATION: "supplied at deploy"}}

RULE = Rule(
    id="image-digest-at-deploy",
    description="Images whose digest is supplied at deploy (the MCP router's) are named, with where the "
    "digest comes from.",
    severity="medium",
    remediation="Nothing to change in a review: the deploy workflow sets the stack's `routerImage` to the "
    "digest the release workflow reports, and `pulumi up` refuses to run without it. To preview the image "
    "a deploy would run, set `routerImage` the same way.",
    validate_resource=validate,
    enforcement=ADVISORY_EVERYWHERE,
    tags=("supply-chain",),
    cases=(
        Case("pinned, nothing to say", "pass", (deployment(),)),
        Case(
            "tag only, unmarked (image-pinned-by-digest's)",
            "pass",
            (deployment({f"{C0}.image": "ghcr.io/example/alpha:1.2.3"}),),
        ),
        Case(
            "pinned although marked",
            "pass",
            (deployment(_AT_DEPLOY),),
        ),
        Case(
            "release tag, digest supplied at deploy",
            "violate",
            (deployment({f"{C0}.image": "ghcr.io/example/mcpfleet-router:0.1.0", **_AT_DEPLOY}),),
        ),
        Case(
            "release tag where relaxed: no digest is asked there",
            "pass",
            (deployment({f"{C0}.image": "ghcr.io/example/mcpfleet-router:0.1.0", **_AT_DEPLOY}),),
            environment="dev",
            stack={"strictness": "relaxed"},
        ),
    ),
)
