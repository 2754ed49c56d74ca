"""The plan's shortcuts write exactly what the plain way writes: shards, helpers, rendering, review."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any
from unittest import mock

import pytest
import yaml
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import rpc

from mcpfleet.model import ENVIRONMENTS, EnvName
from mcpfleet.plan.engine import Registration
from mcpfleet.plan.render import manifest_files, render_manifests, render_resources
from mcpfleet.plan.run import PlanResult, plan
from mcpfleet.plan.values import SECRET, UNKNOWN, normalize, normalize_properties
from policies.review import review
from tests.conftest import REPO
from tests.sample import SAMPLE_CATALOG, sample_catalog

SIG = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig


@cache
def planned(env: str, processes: int = 1) -> PlanResult:
    return plan(env, SAMPLE_CATALOG, REPO / "stacks", None, processes=processes)  # type: ignore[arg-type]


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("processes", [1, 3])
def test_the_plan_reviews_as_review_does(env: EnvName, processes: int) -> None:
    # Shards run the resource rules on their own registrations; the plan runs the stack rules.
    result = planned(env, processes)
    assert result.violations == review(result.registrations, env, result.fleet)


@sample_catalog
@pytest.mark.parametrize("env", ["local", "prod"])
def test_sharded_plans_review_and_write_what_one_shard_does(env: str) -> None:
    one, three = planned(env, 1), planned(env, 3)
    assert three.registrations == one.registrations
    assert three.files == one.files
    assert three.violations == one.violations


@pytest.fixture
def another_thread() -> Iterator[None]:
    """A thread of the caller's: the plan must not fork then, and runs shards in process or spawned."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@sample_catalog
@pytest.mark.parametrize("processes", [1, 2])
def test_a_caller_with_threads_gets_the_same_plan(another_thread: None, processes: int) -> None:
    result = plan("local", SAMPLE_CATALOG, REPO / "stacks", None, processes=processes)
    assert result.registrations == planned("local").registrations
    assert result.files == planned("local").files
    assert result.violations == planned("local").violations


@sample_catalog
def test_a_plan_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    plan("local", SAMPLE_CATALOG, REPO / "stacks", None, processes=2)
    assert threading.active_count() == before


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_resources_json_is_what_json_dumps_writes(env: str) -> None:
    registrations = planned(env).registrations
    assert render_resources(registrations) == _json_dumps(registrations)


def test_resources_json_of_odd_values_is_what_json_dumps_writes() -> None:
    odd = [
        Registration("urn:a", "t:a", "a", None, True, {}),
        Registration("urn:b", "t:b", "b", "urn:a", False, {"x": [], "y": {}, "z": [[], {}, [1, [2, {}]]]}),
        Registration("urn:c", "t:c", "c", None, True, {"float": 1.5, "big": 1e300, "nan": float("nan")}),
        Registration(
            "urn:d", "t:d", "d", None, True, {"text": 'é "q" \\ \n\t\u2028 ✓', "flags": [True, None]}
        ),
        Registration(
            "urn:e", "t:e", "e", None, True, {"keys": {1: "one", None: "none", False: "no", 2.5: "x"}}
        ),
    ]
    for registrations in ([], odd[:1], odd):
        assert render_resources(registrations) == _json_dumps(registrations)


def _json_dumps(registrations: list[Registration]) -> str:
    return json.dumps([r.as_json() for r in registrations], indent=1, ensure_ascii=False) + "\n"


@sample_catalog
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_manifests_are_what_the_safe_dumper_writes(env: str) -> None:
    for documents in manifest_files(planned(env).registrations).values():
        assert render_manifests(documents) == _safe_dump(documents)


def test_manifests_of_odd_values_are_what_the_safe_dumper_writes() -> None:
    shared = {"app": "x"}
    documents: list[dict[Any, Any]] = [
        {"metadata": {"labels": shared, "annotations": shared}, "list": [shared, shared]},
        {"strings": ["yes", "no", "on", "null", "~", "", "1", "1.5", "0x1f", "2024-01-01", "a: b", "- x"]},
        {"numbers": [1, -2, 1.5, 1e300, float("inf")], "flags": [True, False, None], 3: "int key"},
        {"text": "line one\nline two\n", "long": "word " * 40, "tuple": (1, 2), "unicode": "é ✓"},
        {},
    ]
    assert render_manifests(documents) == _safe_dump(documents)
    for document in documents:
        assert render_manifests([document]) == _safe_dump([document])


def _safe_dump(documents: list[dict[Any, Any]]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False, default_flow_style=False, width=120)


def _secret(value: Any) -> dict[str, Any]:
    return {SIG: SECRET_SIG, "value": value}


# Structs as the SDK serializes inputs: secrets wrapped, unknowns as the sentinel, numbers as floats.
STRUCTS: list[dict[str, Any]] = [
    {"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 3.0, "ratio": 0.5}, "zeta": None},
    {"list": [1.0, None, "x", rpc.UNKNOWN, [], {}], "map": {"a": None, "b": rpc.UNKNOWN, "c": {"d": None}}},
    {"stringData": _secret({"TOKEN": "s3cret", "EMPTY": None})},
    {"data": {"plain": "p", "hidden": _secret("s")}, "other": "o"},
    {"items": ["a", _secret("b")], "deep": {"x": [{"y": _secret(None)}]}},
    {"whole": _secret(["a", "b"]), "nothing": _secret(None), "twice": _secret(_secret({"k": 1.0}))},
    {"name": "n", "namespace": "ns", "metadata": {"name": "m"}, "B": True, "a": False},
    # Not shortcut: taken the general way.
    {"asset": {SIG: rpc._special_asset_sig, "text": "hello"}},
    {"odd": {SIG: "not a signature we know"}},
]


@pytest.mark.parametrize("properties", STRUCTS)
def test_struct_inputs_normalize_as_deserialized_ones(properties: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(properties)
    for dry_run in (True, False):
        with mock.patch("pulumi.runtime.settings.is_dry_run", return_value=dry_run):
            try:
                expected = normalize(rpc.deserialize_properties(struct))
            except Exception as exc:
                with pytest.raises(type(exc)):
                    normalize_properties(struct)
                continue
            # Equal, and in the same key order (the order a reviewer reads).
            assert _text(normalize_properties(struct)) == _text(expected)


def _text(value: Any) -> str:
    return json.dumps(value, default=lambda other: type(other).__name__)


def test_secrets_and_unknowns_are_masked_and_named() -> None:
    struct = struct_pb2.Struct()
    struct.update(STRUCTS[3] | {"later": rpc.UNKNOWN})
    with mock.patch("pulumi.runtime.settings.is_dry_run", return_value=True):
        assert normalize_properties(struct) == {
            "data": {"hidden": SECRET, "plain": SECRET},
            "later": UNKNOWN,
            "other": "o",
        }
