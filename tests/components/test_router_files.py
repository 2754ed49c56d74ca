"""A fleet too large for one ConfigMap: router.json and the server files it names, one ConfigMap each, in one
projected volume; the router given that directory serves every server, and the prod review passes.

The fleet is this module's own: 1,000 servers of 16 tools each, every tool pinned (as prod asks), about
the size of the sample catalog's entries once pinned. Pins and image digests here are test data for sizes
and the review's checks, not hashes of anything real.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import shutil
import time
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import kubernetes_validate
import pulumi
import pytest
import yaml

from components.gateway.router import TYPE_TOKEN, Router
from components.gateway.router_config import (
    CONFIG_MAP_BUDGET_BYTES,
    render_router_config,
    render_router_files,
    split_servers,
)
from components.manifests import K8sObject
from components.manifests.gateway import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_MAP_LIMIT_BYTES,
    config_hash,
    config_map_size,
)
from components.manifests.router import CONFIG_DIR, CONFIG_KEY, CONFIG_MAP_NAME, router_objects
from mcpfleet.catalog.loader import Catalog, CatalogEntry
from mcpfleet.catalog.models import Server
from mcpfleet.fleet import Fleet, audience_prefix, resolve_fleet
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.engine import run_program
from mcpfleet.plan.run import plan
from mcpfleet.router.config import load_config, parse_config
from mcpfleet.router.local import ConfigFiles, new_session_keys, router_process
from mcpfleet.stacks.loader import load_stack_config
from policies.review import review
from tests.components.edge import REPO, edge_fleet
from tests.conftest import minimal_server
from tests.examples.running import reference_server
from tests.router.support import Issuer

KUBERNETES_VERSION = "1.33.0"
PINNED = "ghcr.io/example/mcpfleet-router@sha256:" + "ab" * 32
SERVERS = 1000
VERBS = ("get", "list", "create", "update")
NOUNS = ("record", "comment", "attachment", "label")
LEGACY = "2025-06-18"


def server_name(index: int) -> str:
    """Names no two of which are one edit apart (the review's lookalike rule reads them)."""
    digest = hashlib.sha256(f"server {index}".encode()).digest()
    return "t-" + "".join("abcdefghijklmnopqrstuvwxyz"[byte % 26] for byte in digest[:10])


def entry(index: int) -> dict[str, Any]:
    name = server_name(index)
    tools = [
        {
            "name": f"{verb}_{noun}",
            "description": f"{verb.title()} a {noun}.",
            "sha256": hashlib.sha256(f"{name}/{verb}_{noun}".encode()).hexdigest(),
        }
        for verb in VERBS
        for noun in NOUNS
    ]
    return minimal_server(
        name,
        owner={"team": f"team-{index % 40}", "contact": "team@example.com"},
        image={
            "repository": f"ghcr.io/example/{name}",
            "tag": "1.2.3",
            "digest": "sha256:" + hashlib.sha256(name.encode()).hexdigest(),
            "digestSource": f"https://github.com/example/{name}/releases/tag/v1.2.3",
        },
        tools=tools,
        access=[
            {"roles": ["support"], "tools": ["get_record", "list_record"]},
            {"roles": ["engineer"], "tools": ["*"]},
        ],
        environments={
            "prod": {
                "scaling": {"replicas": 2, "minReplicas": 2, "maxReplicas": 4},
                # Small pods, so the review's node capacity check is about the platform, not 2,000 pods.
                "resources": {
                    "requests": {"cpu": "10m", "memory": "32Mi"},
                    "limits": {"cpu": "100m", "memory": "64Mi"},
                },
            }
        },
    )


def fleet_of(entries: list[dict[str, Any]]) -> Fleet:
    catalog = Catalog(
        Path("catalog"),
        tuple(CatalogEntry(Server.model_validate(e), f"{e['name']}.yaml") for e in entries),
    )
    _, settings = load_stack_config(REPO / "stacks", "prod")
    return resolve_fleet(catalog, "prod", settings, "stacks/Pulumi.prod.yaml")


@cache
def large_fleet() -> Fleet:
    return fleet_of([entry(index) for index in range(SERVERS)])


def write(files: dict[str, str], directory: Path) -> Path:
    """The files as the pod's volume shows them: one each, bytes unchanged."""
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode("utf-8"))
    return directory


def config_maps(objects: dict[str, K8sObject]) -> list[K8sObject]:
    return [o for o in objects.values() if o["kind"] == "ConfigMap"]


def deployment_of(objects: dict[str, K8sObject]) -> K8sObject:
    [found] = [o for o in objects.values() if o["kind"] == "Deployment"]
    return found


# Small fleets: one ConfigMap, router.json as before


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_small_fleet_keeps_one_configmap_holding_router_json(env: str) -> None:
    fleet = edge_fleet(env)
    files = render_router_files(fleet)
    assert files == {CONFIG_KEY: render_router_config(fleet)}
    objects = router_objects(fleet, files, "keys", PINNED)
    assert [m["data"] for m in config_maps(objects)] == [files]
    pod = deployment_of(objects)["spec"]["template"]["spec"]
    [config] = [v for v in pod["volumes"] if v["name"] == "config"]
    assert config == {"name": "config", "configMap": {"name": CONFIG_MAP_NAME}}
    # The same objects whether given router.json or its files.
    assert objects == router_objects(fleet, render_router_config(fleet), "keys", PINNED)


# A thousand pinned servers


def test_a_thousand_pinned_servers_split_into_configmaps_under_the_limit(tmp_path: Path) -> None:
    fleet = large_fleet()
    whole = render_router_config(fleet)
    # The reason: one router.json would not fit one ConfigMap.
    assert config_map_size({CONFIG_KEY: whole}) > CONFIG_MAP_LIMIT_BYTES
    files = render_router_files(fleet)
    objects = router_objects(fleet, files, "keys", PINNED)
    maps = config_maps(objects)
    assert len(maps) == len(files) >= 3
    for config_map in maps:
        assert config_map_size(config_map["data"]) <= CONFIG_MAP_BUDGET_BYTES < CONFIG_MAP_LIMIT_BYTES
        assert config_map["metadata"]["namespace"] == fleet.settings.gateway_namespace
    # router.json names every other file with the sha256 of its bytes, and holds no server itself.
    head = json.loads(files[CONFIG_KEY])
    assert head["servers"] == {}
    assert head["serverFiles"] == {
        name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items() if name != CONFIG_KEY
    }
    # Each server in exactly one file, one a line, sorted within its file.
    placed: list[str] = []
    for name, text in files.items():
        if name != CONFIG_KEY:
            servers = list(json.loads(text)["servers"])
            assert servers == sorted(servers) and len(text.splitlines()) == len(servers) + 4
            placed += servers
    assert sorted(placed) == sorted(s.name for s in fleet.servers)
    # What the router loads from the directory is what one router.json holding every server says.
    assert load_config(write(files, tmp_path / "config")) == parse_config(json.loads(whole))


def test_the_pods_read_every_file_from_one_projected_volume() -> None:
    fleet = large_fleet()
    files = render_router_files(fleet)
    objects = router_objects(fleet, files, "keys", PINNED)
    deployment = deployment_of(objects)
    pod = deployment["spec"]["template"]["spec"]
    [config] = [v for v in pod["volumes"] if v["name"] == "config"]
    names = [m["metadata"]["name"] for m in config_maps(objects)]
    assert names[0] == CONFIG_MAP_NAME
    assert config == {"name": "config", "projected": {"sources": [{"configMap": {"name": n}} for n in names]}}
    [container] = pod["containers"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    # router.json where it always was; the server files beside it.
    assert args["--config"] == f"{CONFIG_DIR}/{CONFIG_KEY}"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["config"] == CONFIG_DIR
    for obj in objects.values():
        if not obj["apiVersion"].startswith("security.istio.io/"):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_change_in_any_file_rolls_the_pods() -> None:
    fleet = large_fleet()
    files = render_router_files(fleet)
    annotation = deployment_of(router_objects(fleet, files, "keys", None))["spec"]["template"]["metadata"][
        "annotations"
    ][CONFIG_HASH_ANNOTATION]
    assert annotation == config_hash(files)
    last = max(name for name in files if name != CONFIG_KEY)
    changed = {**files, last: files[last].replace('"get_record"', '"get_recorc"', 1)}
    assert changed != files
    rolled = deployment_of(router_objects(fleet, changed, "keys", None))["spec"]["template"]["metadata"]
    assert rolled["annotations"][CONFIG_HASH_ANNOTATION] != annotation


def test_adding_or_removing_a_server_changes_only_its_own_server_file() -> None:
    fleet = large_fleet()
    files = render_router_files(fleet)
    # The renderer is byte-stable: the catalog's order does not matter.
    assert render_router_files(dataclasses.replace(fleet, servers=fleet.servers[::-1])) == files
    grown = render_router_files(fleet_of([entry(index) for index in range(SERVERS + 1)]))
    shrunk = render_router_files(dataclasses.replace(fleet, servers=fleet.servers[1:]))
    for other in (grown, shrunk):
        assert set(other) == set(files)
        changed = [name for name in files if other[name] != files[name]]
        # One server file, and router.json's sha256 of it.
        assert len(changed) == 2 and CONFIG_KEY in changed
        head, other_head = json.loads(files[CONFIG_KEY]), json.loads(other[CONFIG_KEY])
        [file] = [name for name in changed if name != CONFIG_KEY]
        assert {k: v for k, v in head["serverFiles"].items() if k != file} == {
            k: v for k, v in other_head["serverFiles"].items() if k != file
        }


def test_a_server_too_large_for_any_configmap_is_named() -> None:
    entries = [("alpha", '"alpha":{"tools":[]}'), ("beta", '"beta":{"tools":["' + "x" * 500 + '"]}')]
    with pytest.raises(ValueError, match=r"server beta's entry in router\.json takes \d+ bytes: more than"):
        split_servers(entries, budget=400)
    # Entries that fit each go to a file of their own once two do not fit together.
    files = split_servers(
        [("alpha", '"alpha":{"x":"' + "a" * 200 + '"}'), ("beta", '"beta":{"x":"' + "b" * 200 + '"}')],
        budget=300,
    )
    assert len(files) == 2 and all(config_map_size({n: t}) <= 300 for n, t in files.items())


def test_the_deployment_is_ordered_after_every_configmap() -> None:
    fleet = large_fleet()

    def run() -> None:
        Router("router", fleet, pulumi.Output.secret("a-session-key-line"), PINNED)

    registrations = run_program(run, project="mcpfleet", stack="prod", config={})
    [component] = [r for r in registrations if r.type == TYPE_TOKEN]
    children = [r for r in registrations if r.parent == component.urn]
    maps = {r.urn for r in children if r.type == "kubernetes:core/v1:ConfigMap"}
    [deployment] = [r for r in children if r.type == "kubernetes:apps/v1:Deployment"]
    assert len(maps) == len(render_router_files(fleet)) >= 3
    # Pods roll once every file of the new configuration is in place.
    assert maps <= set(deployment.dependencies)


# The router serves them, and the review passes them


@pytest.mark.slow
def test_the_router_given_the_directory_serves_every_server(tmp_path: Path) -> None:
    fleet = large_fleet()
    settings = fleet.settings
    issuer = Issuer(settings.gateway.auth.algorithm)
    with reference_server("units", log_dir=tmp_path) as units:
        # Every server's replicas at the one reference server: the router forwards by its own entries.
        upstreams = {s.name: [f"127.0.0.1:{units.port}"] for s in fleet.servers}
        files = render_router_files(fleet, upstreams=upstreams)
        assert len(files) >= 3
        with router_process(
            ConfigFiles(files), issuer.public_pem, new_session_keys(), tmp_path / "router"
        ) as router:
            # Started with the directory as its --config, as the pods' volume shows it.
            assert sorted(p.name for p in (tmp_path / "router" / "config").iterdir()) == sorted(files)
            connection = http.client.HTTPConnection(router.host, router.port, timeout=30)
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": LEGACY,
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "0"},
                    },
                }
            ).encode()
            answered = {}
            for server in fleet.servers:
                now = int(time.time())
                claims = {
                    "iss": settings.gateway.auth.issuer,
                    "aud": audience_prefix(settings.domain) + server.name,
                    settings.gateway.auth.subject_claim: "alice",
                    settings.gateway.auth.roles_claim: ["engineer"],
                    "iat": now,
                    "exp": now + 600,
                }
                token = jwt.encode(claims, issuer.private_key, algorithm=issuer.algorithm)
                connection.request(
                    "POST",
                    f"/servers/{server.name}/mcp",
                    body,
                    {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                response = connection.getresponse()
                answered[server.name] = (response.status, b'"serverInfo"' in response.read())
            connection.request("POST", "/servers/t-unknown/mcp", body, {"Content-Type": "application/json"})
            unknown = connection.getresponse()
            unknown.read()
            connection.close()
    assert {name for name, answer in answered.items() if answer != (200, True)} == set()
    assert len(answered) == SERVERS
    assert unknown.status == 404
    # Each message reached the upstream as that server's, by the router's own account.
    records = [r for r in router.audit_records() if r.get("method") == "initialize"]
    assert {r["server"] for r in records if r["outcome"] == "ok"} == {s.name for s in fleet.servers}


@pytest.mark.slow
def test_the_prod_review_passes_a_thousand_pinned_servers(tmp_path: Path) -> None:
    servers = tmp_path / "catalog" / "servers"
    servers.mkdir(parents=True)
    for index in range(SERVERS):
        data = entry(index)
        (servers / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # prod's stack with nodes for 2,000 server pods, so the review's node capacity check passes.
    stacks = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", stacks)
    prod = stacks / "Pulumi.prod.yaml"
    text = prod.read_text(encoding="utf-8")
    sized = text.replace("instanceTypes: [m7i.xlarge]", "instanceTypes: [m7i.2xlarge]")
    sized = sized.replace("minSize: 3\n", "minSize: 45\n").replace("desiredSize: 6\n", "desiredSize: 45\n")
    sized = sized.replace("maxSize: 12\n", "maxSize: 60\n")
    assert sized.count("45\n") == 2 and "m7i.2xlarge" in sized
    prod.write_text(sized, encoding="utf-8")
    result = plan("prod", tmp_path / "catalog", stacks, None)
    router_maps = [
        r
        for r in result.registrations
        if r.type == "kubernetes:core/v1:ConfigMap"
        and r.inputs["metadata"]["name"].startswith(CONFIG_MAP_NAME)
    ]
    assert len(router_maps) >= 3
    assert all(config_map_size(r.inputs["data"]) <= CONFIG_MAP_BUDGET_BYTES for r in router_maps)
    violations = review(result.registrations, "prod", result.fleet)
    # The router's image digest comes at deploy (an offline plan): said, and nothing else.
    assert [v.rule_id for v in violations] == ["image-digest-at-deploy"], "\n".join(
        v.describe() for v in violations
    )
