"""Run the real Pulumi program in-process under a mock engine that records every registration.

No CLI, no plugins, no cloud: the SDK's own mock monitor stands in for the engine. Registrations
arrive as the engine would see them (camelCase Kubernetes objects, parents, custom or component).
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2, source_pb2

from mcpfleet.plan.values import normalize_properties

STACK_TYPE = "pulumi:pulumi:Stack"

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


@dataclass(frozen=True)
class Registration:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    # What it is ordered after, as the engine records it: its `depends_on` and the resources its inputs
    # come from (a component among them stands for its children), sorted. Not its parent's.
    dependencies: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "dependencies": list(self.dependencies),
            "inputs": self.inputs,
        }


class DuplicateResource(Exception):
    """Two resources with one URN: `pulumi up` would refuse the program, so the plan does too."""


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: a plan's objects are scanned again and again for little.

    A program run keeps every resource, Output and future the SDK makes until it ends: hundreds of
    thousands of live objects, which the cyclic collector walks again each time its young generations
    fill, growing each time (for 300 servers, 15 full collections: 45% of the plan's time). Paused,
    that plan takes half the CPU for ~7% more memory: the reference cycles the SDK leaves behind
    (~1M objects for 300 servers) wait until the collector resumes, as it was, on the way out; a shard
    helper process exits without ever collecting them (see mcpfleet.plan.run).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, answering RegisterResource itself: records, and creates nothing.

    Every output is unknown, as in a preview of a new stack: no id and no state. (Echoing the inputs
    back would also triple the plan's time: the SDK converts every nested output into its typed class.)
    The base class would ask Mocks.new_resource for that empty state and serialize it (waiting on the
    event loop) for every resource; the answer is always the same empty struct, made here without the
    loop, so that RegisterResource can be answered on the loop's own thread (see _InlineLoop).
    """

    def __init__(self, registered: Callable[[], None] | None = None) -> None:
        super().__init__(_NoCloud())
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()
        self._registered = registered

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        registration = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=bool(request.custom),
            inputs=normalize_properties(request.object),
            dependencies=tuple(sorted(request.dependencies)),
        )
        with self._lock:
            self.registrations.append(registration)
            # As the base class keeps it (no id, no state), for `pulumi:pulumi:getResource` invokes.
            self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, None, {})  # type: ignore[arg-type]
        if self._registered is not None:
            self._registered()
        return resource_pb2.RegisterResourceResponse(urn=urn)

    # The base class answers these by serializing on an event loop of the calling thread: they keep
    # a thread of their own, as with the SDK's default executor. (The program calls neither today.)
    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        return _in_own_thread(super().Invoke, request)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        return _in_own_thread(super().ReadResource, request)


def _in_own_thread(call: Callable[[Any], Any], request: Any) -> Any:
    with ThreadPoolExecutor(1, thread_name_prefix="mcpfleet-plan-rpc") as thread:
        return thread.submit(call, request).result()


class _NoCloud(pulumi_mocks.Mocks):
    """Creates nothing (reads and invokes included): every output is unknown, as in a preview."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return None, {}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


class _InlineLoop(asyncio.SelectorEventLoop):
    """An event loop that answers the SDK's monitor calls on its own thread, at once.

    The SDK sends every registration to the engine through `loop.run_in_executor(None, ...)`: a
    gRPC call, which must not block the loop. Ours is a Python method that returns at once, so the
    default thread pool only added a thread hop and GIL hand-offs per resource (3-5% of a plan).
    Here the call runs when it is made and its future is already resolved: the SDK awaits it as any
    other future. No thread is left behind either, which keeps forking shard helpers safe.
    """

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*_Ts], _T], *args: *_Ts
    ) -> asyncio.Future[_T]:
        if executor is not None:
            return super().run_in_executor(executor, func, *args)
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future


def run_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, Any],
    registered: Callable[[], None] | None = None,
) -> list[Registration]:
    """Run program as `pulumi preview` would for stack, with config as its stack configuration.

    registered, if given, is called after each resource is registered (progress counts)."""
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )
    # A fresh root stack per run: the SDK keeps the previous one in a context variable.
    pulumi_settings.ROOT.set(None)
    # A fresh event loop per run too (closed at the end; the thread's previous loop is put back).
    previous_loop = _current_loop()
    loop = _InlineLoop()
    asyncio.set_event_loop(loop)
    monitor = _RecordingMonitor(registered)
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=True, monitor=monitor)
    # The SDK walks the Python stack at every registration so the engine can point error messages at
    # source lines; nothing reads them offline and the walk is an eighth of the plan's time.
    capture_stack_trace = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        with paused_gc():
            pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    finally:
        pulumi_resource._get_stack_trace = capture_stack_trace
        pulumi_settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(previous_loop)
    registrations = sorted(monitor.registrations, key=lambda r: r.urn)
    seen: set[str] = set()
    for registration in registrations:
        if registration.urn in seen:
            raise DuplicateResource(f"two resources share the URN {registration.urn}")
        seen.add(registration.urn)
    return registrations


def _current_loop() -> asyncio.AbstractEventLoop | None:
    """This thread's event loop (the one the SDK would have used), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None
