"""scripts/bench_gateway.py: its building blocks, and the whole script with a handful of calls.

Correctness only: calls succeed through the real gateway (and are refused without a valid token), replay
exactly what the SDK client sent, and the figures come out. Never timing: speed is the script's output.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
from collections.abc import Iterator

import pytest
from anyio.from_thread import start_blocking_portal

from components.manifests.gateway import terminates_tls
from mcpfleet.dev import process
from scripts import bench_gateway as bench

ROW = re.compile(
    r"^(?P<mode>modern|legacy)\s+(?P<path>direct|gateway\+tls|gateway)\s+(?P<rate>[0-9]+)\s+"
    r"(?P<p50>[0-9.]+)\s+(?P<p99>[0-9.]+)(?:\s+(?P<ratio>[0-9.]+)x\s+[0-9.]+x\s+[0-9.]+x\s+(?:yes|NO))?$"
)


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(100, 0, -1)]
    assert bench.percentile(samples, 50) == 50.0
    assert bench.percentile(samples, 99) == 99.0
    assert bench.percentile(samples, 100) == 100.0
    assert bench.percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        bench.percentile([], 50)


def test_run_figures() -> None:
    run = bench.Run(latencies=[0.001, 0.002, 0.003, 0.004], seconds=0.5)
    assert run.calls == 4
    assert run.calls_per_second == 8.0
    assert run.p50_ms == pytest.approx(2.0)
    assert run.p99_ms == pytest.approx(4.0)


def test_rounds_share_the_calls() -> None:
    assert bench.chunks(10, 3) == [4, 3, 3]
    assert sum(bench.chunks(1500, 7)) == 1500


def test_answers_as_json_or_server_sent_events() -> None:
    message = b'{"jsonrpc":"2.0","id":3,"result":{}}'
    assert bench.jsonrpc_answer("application/json", message)["id"] == 3
    stream = b"event: message\r\ndata: " + message + b"\r\n\r\n"
    assert bench.jsonrpc_answer("text/event-stream", stream)["id"] == 3
    with pytest.raises(bench.BenchError):
        bench.jsonrpc_answer("text/event-stream", b"event: message\r\n\r\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["--calls", "0"],
        ["--calls", "many"],
        ["--concurrency", "65"],
        ["--rounds", "30", "--calls", "20"],
        ["--warmup", "-1"],
        ["--env", "nowhere"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_gateway_variants_are_stack_configurations() -> None:
    fleet = bench.load_fleet("dev")
    assert terminates_tls(fleet.settings), "dev's own gateway terminates TLS: the gateway+tls path"
    plain = bench.gateway_variant(fleet, tls=False)
    shipped = bench.gateway_variant(fleet, tls=True)
    assert not terminates_tls(plain.settings)
    assert terminates_tls(shipped.settings)
    assert shipped.settings.gateway.tls == fleet.settings.gateway.tls
    for variant in (plain, shipped):
        # Only what the benchmark must change: the checks, issuer and algorithm stay the stack's.
        assert variant.settings.gateway.rate_limits == bench.UNLIMITED
        assert variant.settings.gateway.auth == fleet.settings.gateway.auth
        assert variant.servers == fleet.servers


def haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6 on Debian bookworm)")
    return binary


@dataclasses.dataclass(frozen=True)
class Running:
    servers: bench.Servers
    gateways: list[bench.RunningGateway]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The two servers and both gateways of dev, started as the benchmark starts them."""
    binary = haproxy()
    fleet = bench.load_fleet("dev")
    run_dir = tmp_path_factory.mktemp("bench")
    children: list[process.Child] = []
    try:
        servers = bench.start_servers(fleet, children, run_dir)
        taken: set[str] = set()
        variants: list[tuple[bench.PathName, bool]] = [("gateway", False), ("gateway+tls", True)]
        gateways = [
            bench.start_gateway(
                binary, path, bench.gateway_variant(fleet, tls=tls), servers, run_dir, children, taken
            )
            for path, tls in variants
        ]
        yield Running(servers, gateways)
    finally:
        for child in reversed(children):
            process.stop(child)
    assert all(not child.running() and not process.group_members(child.pgid) for child in children)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["modern", "legacy"])
def test_calls_replay_the_sdk_request_through_the_gateway(running: Running, mode: bench.Mode) -> None:
    workload = bench.WORKLOADS[mode]
    targets = bench.targets_for(workload, running.servers, running.gateways)
    assert [target.path for target in targets] == ["direct", "gateway", "gateway+tls"]
    with start_blocking_portal() as portal:
        for target in targets:
            with bench.held_open(portal, bench.sdk_client(target, workload)) as template:
                headers = {name.lower(): value for name, value in template.headers}
                # Replayed byte for byte: the body the SDK sent, and its headers.
                assert template.encode(int(template.message["id"])) == template.body
                assert template.message["method"] == "tools/call"
                assert template.message["params"]["name"] == workload.tool
                if mode == "modern":
                    assert headers["mcp-protocol-version"] == "2026-07-28"
                    assert headers["mcp-method"] == "tools/call"
                    assert headers["mcp-name"] == workload.tool
                    assert "mcp-session-id" not in headers
                else:
                    assert headers["mcp-protocol-version"] == "2025-11-25"
                    assert headers["mcp-session-id"]
                    assert "mcp-method" not in headers
                through_gateway = target.path != "direct"
                assert ("authorization" in headers) == through_gateway
                if through_gateway:
                    assert headers["host"] == running.gateways[0].fleet.settings.domain
                assert (template.tls is not None) == (target.path == "gateway+tls")

                caller = bench.Caller(template, workload)
                try:
                    # Each call checks its answer: the id, no tool error, and the expected content (for
                    # legacy, a note of this session's: the session held through the gateway).
                    seconds = [caller.call() for _ in range(3)]
                finally:
                    caller.close()
                assert all(s > 0 for s in seconds)
                # Only HAProxy adds X-Request-ID: the gateway paths really went through it.
                assert ("x-request-id" in caller.last_headers) == through_gateway


@pytest.mark.e2e
def test_the_gateway_refuses_a_replay_without_a_valid_token(running: Running) -> None:
    workload = bench.WORKLOADS["modern"]
    target = bench.targets_for(workload, running.servers, running.gateways)[1]
    with (
        start_blocking_portal() as portal,
        bench.held_open(portal, bench.sdk_client(target, workload)) as template,
    ):
        forged = dataclasses.replace(
            template,
            headers=tuple(
                (name, "Bearer not-a-token" if name.lower() == "authorization" else value)
                for name, value in template.headers
            ),
        )
        caller = bench.Caller(forged, workload)
        try:
            with pytest.raises(bench.BenchError, match="HTTP 401"):
                caller.call()
        finally:
            caller.close()


@pytest.mark.e2e
def test_concurrent_run_counts_every_call(running: Running) -> None:
    workload = bench.WORKLOADS["legacy"]
    target = bench.targets_for(workload, running.servers, running.gateways)[1]
    with (
        start_blocking_portal() as portal,
        bench.held_open(portal, bench.sdk_client(target, workload)) as first,
        bench.held_open(portal, bench.sdk_client(target, workload)) as second,
    ):
        assert dict(first.headers)["mcp-session-id"] != dict(second.headers)["mcp-session-id"]
        callers = [bench.Caller(first, workload), bench.Caller(second, workload)]
        run = bench.Run()
        try:
            bench.concurrent(callers, 7, run, threading.Event())
        finally:
            for caller in callers:
                caller.close()
    assert run.calls == 7
    assert run.seconds > 0
    assert run.calls_per_second > 0


@pytest.mark.e2e
def test_the_script_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    haproxy()
    status = bench.main(["--calls", "8", "--concurrency", "2", "--warmup", "2", "--rounds", "2"])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [match for line in out.splitlines() if (match := ROW.match(line))]
    assert [(row["mode"], row["path"]) for row in rows] == [
        (mode, path) for mode in ("modern", "legacy") for path in ("direct", "gateway", "gateway+tls")
    ], out
    for row in rows:
        assert int(row["rate"]) > 0
        assert float(row["p50"]) > 0
        assert float(row["p99"]) >= float(row["p50"])
        assert (row["ratio"] is None) == (row["path"] == "direct")
    assert re.search(
        r"^target p50 through the gateway <= 1\.5x direct .*: (met|NOT met) \(modern [0-9.]+x, legacy",
        out,
        re.M,
    )
