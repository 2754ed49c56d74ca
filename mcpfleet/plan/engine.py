"""Run the real Pulumi program in-process under a mock engine that records every registration.

No CLI, no plugins, no cloud: the SDK's own mock monitor stands in for the engine. Registrations
arrive as the engine would see them (camelCase Kubernetes objects, parents, custom or component).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import source_pb2

from mcpfleet.plan.values import normalize


@dataclass(frozen=True)
class Registration:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
        }


class DuplicateResource(Exception):
    """Two resources with one URN: `pulumi up` would refuse the program, so the plan does too."""


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_NoCloud(self))
        self.registrations: list[Registration] = []
        self._request = threading.local()
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self._request.value = request
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    def record(self, args: pulumi_mocks.MockResourceArgs) -> None:
        request = self._request.value
        urn = self.make_urn(request.parent, request.type, request.name)
        registration = Registration(
            urn=urn,
            type=args.typ,
            name=args.name,
            parent=request.parent or None,
            custom=bool(args.custom),
            inputs=normalize(args.inputs),
        )
        with self._lock:
            self.registrations.append(registration)


class _NoCloud(pulumi_mocks.Mocks):
    """Creates nothing: every output is unknown, as in a preview of a new stack."""

    def __init__(self, monitor: _RecordingMonitor) -> None:
        self.monitor = monitor

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.monitor.record(args)
        # No id and no state: under preview both are "known after apply", as the engine shows them.
        # (Echoing the inputs back would also triple the plan's time: the SDK converts every nested
        # output into its typed class.)
        return None, {}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


def run_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, Any],
) -> list[Registration]:
    """Run program as `pulumi preview` would for stack, with config as its stack configuration."""
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )
    # A fresh root stack per run: the SDK keeps the previous one in a context variable.
    pulumi_settings.ROOT.set(None)
    monitor = _RecordingMonitor()
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=True, monitor=monitor)
    # The SDK walks the Python stack at every registration so the engine can point error messages at
    # source lines; nothing reads them offline and the walk is an eighth of the plan's time.
    capture_stack_trace = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    finally:
        pulumi_resource._get_stack_trace = capture_stack_trace
        pulumi_settings.ROOT.set(None)
    registrations = sorted(monitor.registrations, key=lambda r: r.urn)
    seen: set[str] = set()
    for registration in registrations:
        if registration.urn in seen:
            raise DuplicateResource(f"two resources share the URN {registration.urn}")
        seen.add(registration.urn)
    return registrations
