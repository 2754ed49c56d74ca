"""A recording mock engine for component tests: every registration kept in order, with its options.

(The plan's engine, mcpfleet.plan.engine, records what a reviewer reads; tests of one component also
need providers and dependencies, and outputs echoed back so the component's applies run.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor


@dataclass(frozen=True)
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]


class Echo(pulumi.runtime.Mocks):
    """Echoes inputs back; `outputs` adds provider-computed attributes by resource type."""

    def __init__(self, outputs: Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]] | None = None):
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        computed = self.outputs(args) if self.outputs else {}
        return f"{args.name}-id", {**args.inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


class Recorder(MockMonitor):
    """MockMonitor keeps one record per URN, which hides duplicates: keep them all, in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                provider=request.provider,
                dependencies=tuple(request.dependencies),
                inputs=rpc.deserialize_properties(request.object),
            )
        )
        return response

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def of_kind(self, kind: str) -> list[Registration]:
        return [r for r in self.registrations if r.inputs.get("kind") == kind]

    def one(self, type_: str) -> Registration:
        (found,) = self.of_type(type_)
        return found

    def named(self, name: str) -> Registration:
        (found,) = [r for r in self.registrations if r.name == name]
        return found

    def assert_unique_urns(self) -> None:
        urns = Counter(r.urn for r in self.registrations)
        assert [urn for urn, count in urns.items() if count > 1] == []


def recording(
    stack: str,
    outputs: Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
) -> Iterator[Recorder]:
    # A root stack left over from an earlier test would parent this test's resources.
    settings.ROOT.set(None)
    recorder = Recorder(mocks or Echo(outputs))
    pulumi.runtime.set_mocks(recorder.mocks, project="mcpfleet", stack=stack, preview=False, monitor=recorder)
    yield recorder
    settings.ROOT.set(None)


def run(program: Callable[[], None]) -> None:
    """Run program and wait for every registration it started."""
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]


class Parent(pulumi.ComponentResource):
    """Stands in for the McpServer component that owns a server's objects."""

    def __init__(self, name: str) -> None:
        super().__init__("mcpfleet:index:McpServer", name, None, None)
