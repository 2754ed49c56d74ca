"""scripts/bench_gateway.py: its building blocks, and the whole script with a handful of calls.

Correctness only: calls succeed on every path (straight, HAProxy alone, HAProxy and the router, HAProxy
and fastmcp's proxy) and are refused without a valid token, replay exactly what the SDK client sent, go
through the processes each path names, and the figures come out. Never timing: speed is the script's
output.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from components.gateway.config import ROUTER_BACKEND, render_gateway_config
from components.manifests.gateway import CONFIG_KEY, terminates_tls
from mcpfleet.dev import gateway, process
from scripts import bench_gateway as bench

ROW = re.compile(
    r"^(?P<mode>modern|legacy)\s+(?P<path>direct|haproxy\+hop|haproxy\+router|haproxy\+fastmcp|haproxy)\s+"
    r"(?P<rate>[0-9]+)\s+(?P<p50>[0-9.]+)\s+(?P<p99>[0-9.]+)"
    r"(?:\s+(?P<rate_x>[0-9.]+)x\s+[0-9.]+x\s+[0-9.]+x\s+[-+][0-9.]+\s+[-+][0-9.]+)?"
    r"\s+(?P<server_cpu>[0-9.]+)\s+(?P<haproxy_cpu>[0-9.]+|-)\s+(?P<proxy_cpu>[0-9.]+|-)"
    r"(?:\s+(?P<proxy_x>[0-9.]+)x)?\s+(?P<all_cpu>[0-9.]+)$"
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
        ["--peer-backend", "none"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_cpu_time_is_read_from_proc() -> None:
    before = bench.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert bench.cpu_seconds(os.getpid()) - before >= 0.1
    result = bench.PathResult(sequential=bench.Run(latencies=[0.001] * 3), concurrent=bench.Run([0.001]))
    with bench.cpu_charged({"server": os.getpid()}, result):
        deadline = time.process_time() + 0.1
        while time.process_time() < deadline:
            pass
    assert result.cpu["server"] >= 0.05
    assert result.cpu_ms_per_call("server") == pytest.approx(result.cpu["server"] / 4 * 1000)
    assert result.cpu_ms_per_call("router") is None


def test_a_process_gone_is_reported() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(bench.BenchError, match=f"process {child.pid} is gone"):
        bench.cpu_seconds(child.pid)


def test_a_profile_is_summed_by_function() -> None:
    main = "<module> (/v/site-packages/mcpfleet/router/__main__.py:3)"
    raw = "\n".join(
        [
            f"{main};run (/usr/lib/python3.11/asyncio/runners.py:9) 6",
            f"{main};handle (/v/site-packages/aiohttp/client.py:7) 3",
            f"{main};handle (/v/site-packages/aiohttp/client.py:8) 1",
            "",
        ]
    )
    lines = bench.profile_summary(raw, top=2)
    assert lines[0] == (
        "  router profile (py-spy, 10 samples of the router while busy): self% total% function"
    )
    assert lines[1:] == [
        "   60.0%  60.0%  run (asyncio/runners.py)",
        "   40.0%  40.0%  handle (aiohttp/client.py)",
    ]
    assert bench.profile_summary("") == ["  profile: no samples"]


def test_the_benchmark_runs_a_stack_configuration_with_tls_at_the_load_balancer() -> None:
    fleet = bench.load_fleet("dev")
    assert terminates_tls(fleet.settings), "dev's own gateway terminates TLS: the variant must not"
    variant = bench.gateway_variant(fleet)
    assert not terminates_tls(variant.settings)
    # Only what the benchmark must change: the checks, issuer and algorithm stay the stack's.
    assert variant.settings.gateway.rate_limits == bench.UNLIMITED
    assert variant.settings.gateway.auth == fleet.settings.gateway.auth
    assert sorted(s.name for s in variant.servers) == ["notes", "text"]
    assert all(s in fleet.servers for s in variant.servers)


def haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6 on Debian bookworm)")
    return binary


def test_haproxy_alone_reaches_each_server_at_its_own_path(tmp_path: Path) -> None:
    fleet = bench.gateway_variant(bench.load_fleet("dev"))
    config = render_gateway_config(fleet, upstreams=["127.0.0.1:1"])[CONFIG_KEY]
    rewritten = bench.direct_backend(
        config, {"text": ("127.0.0.1:41001", "/mcp"), "notes": ("127.0.0.1:41002", "/x")}
    )
    # Everything before the router pool is the environment's own.
    assert rewritten.startswith(config[: config.index(f"\nbackend {ROUTER_BACKEND}\n")])
    backend = rewritten[rewritten.index(f"\nbackend {ROUTER_BACKEND}\n") :]
    assert "router1" not in backend and "httpchk" not in backend
    assert "http-request set-path /x if { var(txn.server) -m str notes }" in backend
    assert "use-server text if { var(txn.server) -m str text }" in backend
    assert "server text 127.0.0.1:41001" in backend
    files = gateway.prepare(fleet, ["127.0.0.1:1"], 41000, tmp_path, {"PATH": os.environ["PATH"]})
    files.config.write_text(
        bench.direct_backend(files.config.read_text(), {"text": ("127.0.0.1:41001", "/mcp")})
    )
    check = subprocess.run(
        [haproxy(), "-c", "-f", str(files.config)], env=files.env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with pytest.raises(bench.BenchError, match="no longer ends with"):
        bench.direct_backend(config + "backend other\n", {})
    with pytest.raises(bench.BenchError, match="no longer ends with"):
        bench.direct_backend("frontend mcp\n", {})


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bench.Stand]:
    """The two servers, the three HAProxy configurations, the router and the peers, as the benchmark
    starts them."""
    binary = haproxy()
    fleet = bench.gateway_variant(bench.load_fleet("dev"))
    run_dir = tmp_path_factory.mktemp("bench")
    children: list[process.Child] = []
    try:
        yield bench.start_stand(binary, fleet, "shared", run_dir, children)
    finally:
        for child in reversed(children):
            process.stop(child)
    assert all(not child.running() and not process.group_members(child.pgid) for child in children)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["modern", "legacy"])
def test_calls_replay_the_sdk_request_on_every_path(stand: bench.Stand, mode: bench.Mode) -> None:
    workload = bench.WORKLOADS[mode]
    targets = bench.targets_for(workload, stand)
    assert [target.path for target in targets] == list(bench.PATHS)
    # Each path names the processes a call runs through, which the CPU figures are read from.
    assert [sorted(target.pids) for target in targets] == [
        ["client", "server"],
        ["client", "haproxy", "server"],
        ["client", "haproxy", "hop", "server"],
        ["client", "haproxy", "router", "server"],
        ["client", "fastmcp", "haproxy", "server"],
    ]
    assert {target.pids["client"] for target in targets} == {os.getpid()}
    assert len({target.pids["server"] for target in targets}) == 1
    assert len({target.pids.get("haproxy") for target in targets[1:]}) == 4
    audited = bench.audited_calls(stand.audit, workload)
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
                    assert headers["host"] == stand.gateways[target.path].fleet.settings.domain

                caller = bench.Caller(template, workload)
                try:
                    # Each call checks its answer: the id, no tool error, and the expected content (for
                    # legacy, a note of this session's: the session held through every path).
                    seconds = [caller.call() for _ in range(3)]
                finally:
                    caller.close()
                assert all(s > 0 for s in seconds)
                # Only HAProxy adds X-Request-ID: the gateway paths really went through it.
                assert ("x-request-id" in caller.last_headers) == through_gateway
            if target.path == "haproxy+router":
                # The SDK's own call and the three replays, each in the router's audit.
                bench.check_router_saw(stand.audit, workload, audited + 4)
            else:
                assert bench.audited_calls(stand.audit, workload) == audited
            audited = bench.audited_calls(stand.audit, workload)


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["haproxy", "haproxy+hop", "haproxy+router", "haproxy+fastmcp"])
def test_a_replay_without_a_valid_token_is_refused(stand: bench.Stand, path: bench.PathName) -> None:
    workload = bench.WORKLOADS["modern"]
    [target] = [t for t in bench.targets_for(workload, stand) if t.path == path]
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
def test_concurrent_run_counts_every_call(stand: bench.Stand) -> None:
    workload = bench.WORKLOADS["legacy"]
    [target] = [t for t in bench.targets_for(workload, stand) if t.path == "haproxy+router"]
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
def test_the_script_prints_every_figure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    haproxy()
    argv = [
        "--calls",
        "8",
        "--concurrency",
        "2",
        "--warmup",
        "2",
        "--rounds",
        "2",
        "--profile",
        str(tmp_path),
    ]
    status = bench.main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [match for line in out.splitlines() if (match := ROW.match(line))]
    assert [(row["mode"], row["path"]) for row in rows] == [
        (mode, path) for mode in ("modern", "legacy") for path in bench.PATHS
    ], out
    for row in rows:
        assert int(row["rate"]) > 0
        assert float(row["p50"]) > 0
        assert float(row["p99"]) >= float(row["p50"])
        direct = row["path"] == "direct"
        assert (row["rate_x"] is None) == direct
        assert (row["haproxy_cpu"] == "-") == direct
        assert (row["proxy_cpu"] == "-") == (row["path"] in ("direct", "haproxy"))
        if row["proxy_cpu"] == "-":
            assert row["proxy_x"] is None
        else:
            # A ratio to the server's CPU on the direct path, unless so few calls cost it under a clock tick.
            direct_row = next(r for r in rows if r["mode"] == row["mode"] and r["path"] == "direct")
            assert (row["proxy_x"] is None) == (float(direct_row["server_cpu"]) == 0), row
        # The whole chain's CPU holds the server's (a handful of calls may cost the rest under one tick).
        assert float(row["all_cpu"]) >= float(row["server_cpu"])
    for mode in ("modern", "legacy"):
        verdicts = re.findall(rf"^{mode}: (.*): (?:met|NOT met)$", out, re.M)
        expected = [
            r"router adds [-+][0-9.]+ ms at p50 over HAProxy alone \(<= 0\.5\)",
            r"router adds [-+][0-9.]+ ms at p99 over HAProxy alone \(<= 2\.0\)",
            r"calls/s through HAProxy \+ router [0-9.]+x direct \(>= 0\.7\)",
            r"faster than fastmcp's proxy at p50, p99 and calls/s"
            r" \([0-9./]+ ms, [0-9./]+ ms, [0-9/]+ calls/s\)",
        ]
        assert len(verdicts) == len(expected), out
        for verdict, pattern in zip(verdicts, expected, strict=True):
            assert re.fullmatch(pattern, verdict), verdict
        assert re.search(
            rf"^{mode}: a bare Python hop alone adds [-+][0-9.]+ ms at p50 over HAProxy alone;"
            r" the router's own work adds [-+][0-9.]+ ms at p50 and [-+][0-9.]+ ms of CPU per call"
            r" over that hop$",
            out,
            re.M,
        ), out
    # The router was sampled while measured: its hottest functions, and the raw stacks for flame graphs.
    assert re.search(r"^  router profile \(py-spy, [1-9][0-9]* samples of the router while busy\)", out, re.M)
    assert (tmp_path / bench.PROFILE_FILE).read_text().strip()
    assert re.search(r"^  load average before: [0-9.]+ [0-9.]+ [0-9.]+$", out, re.M)
    assert re.search(r"^  load average after: [0-9.]+ [0-9.]+ [0-9.]+$", out, re.M)
