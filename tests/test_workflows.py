"""The GitHub workflows: triggers, least privilege, pinned actions, promotion order, and that every
command they run exists here (a Makefile target or a registered `mcpfleet` command)."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import pytest
import yaml

from mcpfleet.cli.main import app
from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
# An exact release (v1.2.3) or a full commit SHA: a moving major tag (v4) could change under us.
PINNED = re.compile(r"^[^@\s]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")
# Commands a run step may use besides make and mcpfleet: the CI entry point itself.
ENTRY_POINTS = {("bash", ".ci/run")}


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    assert isinstance(on, dict), on
    return on


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):(?!=)", text, re.MULTILINE)}


def cli_commands() -> set[str]:
    return {
        command.name or (command.callback.__name__ if command.callback else "")
        for command in app.registered_commands
    }


ALL = sorted(path.name for path in WORKFLOWS.glob("*.yml"))


def test_the_expected_workflows_exist() -> None:
    assert {"ci.yml", "review.yml", "deploy.yml", "release-router.yml"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_run_step_calls_our_own_commands(name: str) -> None:
    targets, commands = make_targets(), cli_commands()
    assert {"plan", "validate", "test"} <= targets and {"plan", "validate", "diff", "new"} <= commands
    for step in steps(load(name)):
        if "run" not in step:
            continue
        words = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "X", step["run"]))
        assert words, step
        program = words[0]
        if program == "make":
            named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            assert named and set(named) <= targets, f"{name}: unknown make target in {step['run']!r}"
        elif program.endswith("mcpfleet") and program in ("mcpfleet", ".venv/bin/mcpfleet"):
            assert words[1] in commands, f"{name}: unknown mcpfleet command in {step['run']!r}"
            if words[1] == "diff":
                assert {"--env", "--base"} <= set(words), f"{name}: diff needs --env and --base"
        else:
            assert tuple(words) in ENTRY_POINTS, f"{name}: runs {step['run']!r}, not make or mcpfleet"


@pytest.mark.parametrize("name", ALL)
def test_actions_are_pinned(name: str) -> None:
    for step in steps(load(name)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned to a release or SHA"


@pytest.mark.parametrize("name", ALL)
def test_permissions_are_declared_and_read_only_by_default(name: str) -> None:
    workflow = load(name)
    permissions = workflow.get("permissions")
    assert isinstance(permissions, dict), f"{name}: declare permissions; the default token can write"
    assert permissions.get("contents") == "read"
    for job in workflow["jobs"].values():
        assert "write-all" not in str(job.get("permissions", ""))


def test_ci_runs_the_entry_point_on_every_push_and_pull_request() -> None:
    workflow = load("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    assert any(step.get("run") == "bash .ci/run" for step in steps(workflow))


def test_ci_takes_the_readmes_path_with_no_install_step_of_its_own() -> None:
    """.ci/run runs the README's fresh-machine commands, then the benchmark: `make test` installs the rest."""
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    lines = [
        line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    commands = [
        line for line in lines if line.split()[0] not in ("set", "cd") and line != "python3 --version"
    ]
    assert commands == ["make plan ENV=dev", "make test", "make bench"]
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README: no command block"
    readme = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert readme == commands[:2]


def test_make_test_installs_the_tools_before_the_tests() -> None:
    dry = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    install = next(i for i, line in enumerate(dry) if "scripts.install_tools --tools .tools" in line)
    assert install < next(i for i, line in enumerate(dry) if "pytest" in line)


def test_review_triggers_permissions_and_steps() -> None:
    workflow = load("review.yml")
    on = triggers(workflow)
    assert set(on) == {"pull_request"}
    assert set(on["pull_request"]["paths"]) == {
        "catalog/**",
        "stacks/**",
        "components/**",
        "policies/**",
        "mcpfleet/**",
    }
    assert workflow["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "security-events": "write",
    }
    all_steps = steps(workflow)
    checkout = next(s for s in all_steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the diff reads the base branch from git history
    runs = [s.get("run", "") for s in all_steps]
    assert "make validate" in runs
    assert {f"make plan ENV={env}" for env in ("local", "dev", "staging", "prod")} <= set(runs)
    diff = next(r for r in runs if " diff " in r)
    assert "--base origin/${{ github.base_ref }}" in diff
    assert all(f"--env {env}" in diff for env in ("local", "dev", "staging", "prod"))
    comments = [
        s for s in all_steps if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")
    ]
    assert len(comments) == 1 and comments[0]["with"]["header"]  # one comment, updated in place
    assert comments[0]["with"]["path"] in diff
    sarif = [s["with"]["sarif_file"] for s in all_steps if "upload-sarif@" in s.get("uses", "")]
    assert sarif and all(re.fullmatch(r"build/(dev|staging|prod)/policy-report\.sarif", f) for f in sarif)


# Where each deploy job reads the MCP router's pinned image: the one build release-router.yml made.
ROUTER_IMAGE_SOURCE = {
    "dev": "needs.router-image.outputs.image",
    "staging": "needs.dev.outputs.router-image",
    "prod": "needs.staging.outputs.router-image",
}


def test_deploy_promotes_dev_then_staging_then_prod() -> None:
    workflow = load("deploy.yml")
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    jobs = workflow["jobs"]
    assert set(jobs) == {"router-image", "dev", "staging", "prod"}
    assert jobs["dev"]["needs"] in ("router-image", ["router-image"])
    assert jobs["staging"]["needs"] in ("dev", ["dev"]) and jobs["prod"]["needs"] in ("staging", ["staging"])
    for env in ("dev", "staging", "prod"):
        job = jobs[env]
        assert job["environment"] == env
        pulumi = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert [s["with"]["command"] for s in pulumi] == ["preview", "up"]
        for step in pulumi:
            assert step["with"]["stack-name"] == env
            assert step["with"]["policyPacks"] == "policies"
            assert step["with"]["policyPackConfigs"] == f"policies/config/{env}.json"
            # The router's digest, as the stack setting `pulumi up` requires (YAML flow text).
            config = yaml.safe_load(step["with"]["config-map"])
            assert config == {
                "routerImage": {"value": f"${{{{ {ROUTER_IMAGE_SOURCE[env]} }}}}", "secret": False}
            }
        aws = next(
            s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
        )
        assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"  # OIDC, no key
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
    assert "protected" in (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8").lower()


def test_deploy_builds_the_router_image_once_and_passes_its_digest_down() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["router-image"]["uses"] == "./.github/workflows/release-router.yml"
    assert jobs["router-image"]["permissions"] == {"contents": "read", "packages": "write"}
    assert jobs["dev"]["outputs"]["router-image"] == "${{ needs.router-image.outputs.image }}"
    assert jobs["staging"]["outputs"]["router-image"] == "${{ needs.dev.outputs.router-image }}"


def test_release_router_pushes_the_dockerfiles_image_and_reports_its_digest() -> None:
    workflow = load("release-router.yml")
    on = triggers(workflow)
    assert on["push"]["tags"] == ["router-v*"] and "workflow_dispatch" in on
    assert on["workflow_call"]["outputs"]["image"]["value"] == "${{ jobs.image.outputs.image }}"
    assert workflow["permissions"] == {"contents": "read"}
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    # The pin is the digest the registry computed, never a tag.
    assert job["outputs"]["image"] == "${{ vars.ROUTER_IMAGE_REPOSITORY }}@${{ steps.build.outputs.digest }}"
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["id"] == "build" and build["with"]["push"] is True
    assert build["with"]["context"] == "." and build["with"]["file"] == "images/router/Dockerfile"
    assert (REPO / build["with"]["file"]).is_file()
    meta = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/metadata-action@"))
    assert "type=match,pattern=router-v(.*),group=1" in meta["with"]["tags"]
    assert build["with"]["tags"] == "${{ steps.meta.outputs.tags }}"


def test_codeowners_cover_catalog_and_policies_with_teams() -> None:
    rules = {}
    for line in (REPO / ".github" / "CODEOWNERS").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *owners = line.split()
            rules[pattern] = owners
    for folder in ("/catalog/", "/policies/"):
        assert rules[folder] and all(re.fullmatch(r"@[\w-]+/[\w-]+", owner) for owner in rules[folder])
