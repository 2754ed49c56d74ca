"""The review of whole plans: the sample catalog in prod (whichever servers it holds), and a bad server in
staging and prod."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfleet.plan.run import PlanResult, load_inputs, plan
from mcpfleet.stacks.models import CONFIG_KEY
from policies.review import FIX_PLACES, mandatory, review
from policies.rules import all_rules
from tests.conftest import REPO, minimal_server
from tests.sample import SAMPLE_CATALOG, sample_catalog

# Mandatory prod violations of the shipped inputs that only new facts can fix, as (rule, server or
# resource); remove an entry when it is fixed. None: prod runs only servers pinned by digest and tool
# hash (catalog/SOURCES.md); the others wait outside prod until `mcpfleet pin` pins them.
KNOWN_PROD_GAPS: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def prod_plan() -> PlanResult:
    return plan("prod", SAMPLE_CATALOG, REPO / "stacks", None)


@sample_catalog
def test_shipped_prod_plan_has_no_mandatory_violation_but_the_known_gaps(prod_plan: PlanResult) -> None:
    violations = mandatory(review(prod_plan.registrations, "prod", prod_plan.fleet))
    found = {(v.rule_id, v.server or v.resource_name) for v in violations}
    unexpected = [
        v.describe() for v in violations if (v.rule_id, v.server or v.resource_name) not in KNOWN_PROD_GAPS
    ]
    assert not unexpected, "\n".join(unexpected)
    assert found == KNOWN_PROD_GAPS, f"fixed, remove from KNOWN_PROD_GAPS: {sorted(KNOWN_PROD_GAPS - found)}"


@sample_catalog
def test_review_does_not_change_the_plan(prod_plan: PlanResult) -> None:
    before = [r.as_json() for r in prod_plan.registrations]
    review(prod_plan.registrations, "prod", prod_plan.fleet)
    assert [r.as_json() for r in prod_plan.registrations] == before


def _privileged(result: PlanResult, server: str) -> list[Any]:
    """The catalog cannot ask for a privileged container (no securityContext field), so the test edits the
    rendered Deployment, as a hand-written or patched manifest would arrive."""
    registrations: list[Any] = []
    for r in result.registrations:
        if r.type == "kubernetes:apps/v1:Deployment" and r.name == f"{server}-deployment":
            inputs = dict(r.inputs)
            spec = dict(inputs["spec"])
            template = dict(spec["template"])
            pod = dict(template["spec"])
            container = dict(pod["containers"][0])
            container["securityContext"] = {**container["securityContext"], "privileged": True}
            pod["containers"] = [container, *pod["containers"][1:]]
            template["spec"] = pod
            spec["template"] = template
            inputs["spec"] = spec
            r = dataclasses.replace(r, inputs=inputs)
        registrations.append(r)
    return registrations


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_privileged_latest_plaintext_secret_server_fails(
    environment: Any, catalog_dir: Callable[..., Path], stacks_dir: Path
) -> None:
    entry = minimal_server(
        "leaky",
        image={"repository": "ghcr.io/example/leaky", "tag": "latest"},
        env={"GITHUB_TOKEN": "ghp_" + "a1B2" * 9},
        environments={"local": {}, "dev": {}, "staging": {}, "prod": {}},
    )
    result = plan(environment, catalog_dir(leaky=entry), stacks_dir, None)
    violations = mandatory(review(_privileged(result, "leaky"), environment, result.fleet))
    by_rule = {v.rule_id: v for v in violations if v.server == "leaky"}
    assert {"pod-no-privileged", "image-no-latest-tag", "secrets-no-literal-configmap"} <= set(by_rule)
    for rule_id in ("pod-no-privileged", "image-no-latest-tag", "secrets-no-literal-configmap"):
        text = by_rule[rule_id].describe()
        assert text.startswith("[mandatory / ") and rule_id in text and "server leaky" in text
        assert f"fix ({FIX_PLACES[by_rule[rule_id].fix_place]}): {by_rule[rule_id].fix}" in text
    assert "GITHUB_TOKEN" in by_rule["secrets-no-literal-configmap"].message
    assert "ghp_" not in by_rule["secrets-no-literal-configmap"].describe(), (
        "the report must not leak the secret"
    )


def test_same_server_is_only_advised_in_dev(catalog_dir: Callable[..., Path], stacks_dir: Path) -> None:
    entry = minimal_server("leaky", image={"repository": "ghcr.io/example/leaky", "tag": "latest"})
    result = plan("dev", catalog_dir(leaky=entry), stacks_dir, None)
    violations = review(result.registrations, "dev", result.fleet)
    assert any(v.rule_id == "image-no-latest-tag" and v.enforcement == "advisory" for v in violations)
    assert not [v for v in mandatory(violations) if v.server == "leaky"]


def _settings(stacks_dir: Path, environment: str, **settings: Any) -> None:
    """Change the environment's stack settings (`mcpfleet:environment`) in the copied stack file."""
    path = stacks_dir / f"Pulumi.{environment}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["config"][CONFIG_KEY].update(settings)
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


def _dev_entries() -> dict[str, dict[str, Any]]:
    """One replica each (dev's default), tags not digests, a tool without its hash; one on `latest`."""
    return {
        "steady": minimal_server("steady", tools=[{"name": "search"}], environments={"dev": {}}),
        "moving": minimal_server(
            "moving",
            image={"repository": "ghcr.io/example/moving", "tag": "latest"},
            environments={"dev": {}},
        ),
    }


def test_relaxed_review_holds_only_what_is_wrong_there(
    catalog_dir: Callable[..., Path], stacks_dir: Path
) -> None:
    """A relaxed environment asks for no second replica, no disruption budget on one pod, no digest and
    no tool hash: the moving tag is the one finding, with the catalog change that fixes it."""
    _settings(stacks_dir, "dev", strictness="relaxed")
    result = plan("dev", catalog_dir(**_dev_entries()), stacks_dir, None)
    violations = review(result.registrations, "dev", result.fleet)
    assert [(v.rule_id, v.server, v.fix_place) for v in violations] == [
        ("image-no-latest-tag", "moving", "catalog")
    ]
    assert "`environments.dev.image.tag`" in violations[0].fix


def test_strict_review_asks_for_replicas_and_pins_where_each_is_fixed(
    catalog_dir: Callable[..., Path], stacks_dir: Path
) -> None:
    """The same entries where the stack file says strict: each server's findings are fixed in its catalog
    entry for this environment, the gateway's in the stack file."""
    _settings(stacks_dir, "dev", strictness="strict")
    result = plan("dev", catalog_dir(**_dev_entries()), stacks_dir, None)
    found = {(v.rule_id, v.server, v.fix_place) for v in review(result.registrations, "dev", result.fleet)}
    assert found == {
        ("image-no-latest-tag", "moving", "catalog"),
        ("image-pinned-by-digest", "moving", "catalog"),
        ("image-pinned-by-digest", "steady", "catalog"),
        ("fleet-tool-hashes-pinned", "steady", "catalog"),
        ("deployment-min-replicas", "moving", "catalog"),
        ("deployment-min-replicas", "steady", "catalog"),
        ("deployment-min-replicas", None, "stack"),
        # dev's stack file serves unpinned tools, which a strict environment does not.
        ("fleet-unpinned-tools-withheld", None, "stack"),
        # The MCP router runs its release tag in a plan; its digest comes at deploy (routerImage).
        ("image-digest-at-deploy", None, "platform"),
    }
    by_key = {(v.rule_id, v.server): v for v in review(result.registrations, "dev", result.fleet)}
    assert "`environments.dev.scaling.minReplicas`" in by_key["deployment-min-replicas", "steady"].fix
    assert "`gateway.replicas`" in by_key["deployment-min-replicas", None].fix
    assert "`tools[].sha256`" in by_key["fleet-tool-hashes-pinned", "steady"].fix
    assert "`router.unpinnedTools` to withhold" in by_key["fleet-unpinned-tools-withheld", None].fix


def test_a_bad_domain_is_one_platform_finding(catalog_dir: Callable[..., Path], stacks_dir: Path) -> None:
    _settings(stacks_dir, "dev", domain="*.mcp.example.com")
    entries = {name: minimal_server(name, environments={"dev": {}}) for name in ("alpha", "beta")}
    _, fleet = load_inputs("dev", catalog_dir(**entries), stacks_dir)
    rules = [rule for rule in all_rules() if rule.id == "fleet-token-audience"]
    [violation] = review([], "dev", fleet, rules=rules)
    assert violation.server is None and violation.fix_place == "stack"
    assert "`domain`" in violation.fix
