"""One MCP server in depth, chosen with the `server` variable: replicas; from the MCP router, response-time
percentiles per tool and method, calls by outcome, JSON-RPC errors by code, refusals by reason, the failed
share and the pods it resolves; the tools it withholds and its listing of the server; each pod's CPU,
throttling, memory and restarts."""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from components.manifests.monitoring import failed_share
from dashboards.common import (
    DATASOURCE,
    EXCHANGES,
    FAILED_SHARE,
    NO_STREAMS,
    SLOW_SECONDS,
    dashboard,
    datasource_variable,
    grid,
    namespace_variable,
    quantile,
    stat,
    target,
    timeseries,
)

UID = "mcp-server"

_PODS = 'namespace=~"$namespace",pod=~"$server-[a-z0-9]+-[a-z0-9]+",container="server"'
_DEPLOYMENT = 'namespace=~"$namespace",deployment="$server"'
# The MCP router's series of this server; tool calls alone carry a `tool`.
_ROUTER = 'server="$server"'
_TOOL_CALLS = f'{_ROUTER},method="tools/call"'
_PERCENTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))


def _server_variable() -> Any:
    return g.Template(
        name="server",
        label="Server",
        dataSource=DATASOURCE,
        # Every server the router has handled a message for (any outcome).
        query="label_values(mcp_router_requests_total, server)",
        type="query",
        refresh=2,
    )


def _per_pod(usage: str, limit_resource: str) -> str:
    return (
        f"{usage}\n/\n"
        f'sum by (pod) (kube_pod_container_resource_limits{{{_PODS},resource="{limit_resource}"}})'
    )


def build() -> Any:
    panels = [
        stat(
            "Available replicas",
            "Replicas of the Deployment that are available (kube-state-metrics).",
            f"max(kube_deployment_status_replicas_available{{{_DEPLOYMENT}}})",
            "none",
            grid(0, 0, 4, 4),
        ),
        stat(
            "Desired replicas",
            "Replicas the Deployment asks for, as set by the autoscaler.",
            f"max(kube_deployment_spec_replicas{{{_DEPLOYMENT}}})",
            "none",
            grid(4, 0, 4, 4),
        ),
        stat(
            "Calls per second",
            "MCP messages per second the router handled for this server over the last 5 minutes, refusals"
            " included.",
            f"sum(rate(mcp_router_requests_total{{{_ROUTER}}}[5m]))",
            "reqps",
            grid(8, 0, 4, 4),
        ),
        stat(
            "Pods the router resolves",
            "Pods of the server the MCP router sends calls to (worst router replica);"
            " McpServerNoRouterEndpoints fires when no replica resolves any for 2m.",
            f"min(mcp_router_upstream_endpoints{{{_ROUTER}}})",
            "none",
            grid(12, 0, 4, 4),
        ),
        stat(
            "p99 response time, last 5m",
            "99th percentile of the server's response times at the MCP router over the last 5 minutes;"
            " McpServerSlowResponses fires above 1 s for 10m.",
            quantile(0.99, f"{_ROUTER},{EXCHANGES}", window="5m"),
            "s",
            grid(16, 0, 4, 4),
            red_from=SLOW_SECONDS,
        ),
        stat(
            "Firing alerts",
            "McpServer alerts of this server that fire now.",
            'count(ALERTS{server="$server",alertstate="firing"}) or vector(0)',
            "none",
            grid(20, 0, 4, 4),
            red_from=1,
        ),
        timeseries(
            "Response time per tool (p50, p95, p99)",
            "Percentiles of each tool's call times at the MCP router (tools/call, buckets summed over the"
            " router replicas); McpServerSlowTool fires when a tool's p99 stays above 1 s for 10m.",
            [
                target(quantile(q, _TOOL_CALLS, "tool"), f"{{{{tool}}}} {name}", ref)
                for (q, name), ref in zip(_PERCENTILES, "ABC", strict=True)
            ],
            "s",
            grid(0, 4, 12, 8),
            red_from=SLOW_SECONDS,
        ),
        timeseries(
            "p99 response time per method",
            "99th percentile of the response times at the MCP router for each JSON-RPC method (GET streams"
            " left out), and for the whole server's requests (notifications and posted responses left out"
            " too); McpServerSlowResponses fires when the server's stays above 1 s for 10m.",
            [
                target(quantile(0.99, f"{_ROUTER},{NO_STREAMS}", "method"), "{{method}}", "A"),
                target(quantile(0.99, f"{_ROUTER},{EXCHANGES}"), "whole server", "B"),
            ],
            "s",
            grid(12, 4, 12, 8),
            red_from=SLOW_SECONDS,
        ),
        timeseries(
            "Tool calls by outcome",
            "Calls per second of each tool through the MCP router, by outcome: ok, tool_error (the tool"
            " answered with an error), rpc_error, refused, upstream_error (the server was not reached).",
            [
                target(
                    f"sum by (tool, outcome) (rate(mcp_router_requests_total{{{_TOOL_CALLS}}}"
                    "[$__rate_interval]))",
                    "{{tool}} {{outcome}}",
                )
            ],
            "reqps",
            grid(0, 12, 12, 8),
        ),
        timeseries(
            "JSON-RPC errors by tool and code",
            "Calls per second answered with a JSON-RPC error, by method, tool and error code (docs/router.md,"
            ' "Refusals": -32700 parse, -32600 invalid, -32601 method, -32001 auth or gone, -32003 denied,'
            " -32603 upstream; other codes come from the server).",
            [
                target(
                    f'sum by (method, tool, code) (rate(mcp_router_requests_total{{{_ROUTER},code!=""}}'
                    "[$__rate_interval]))",
                    "{{method}} {{tool}} {{code}}",
                )
            ],
            "reqps",
            grid(12, 12, 12, 8),
        ),
        timeseries(
            "Refusals by reason",
            "Requests a minute the MCP router refused, by reason; McpServerRefusalSurge fires above 10 a"
            " minute for one reason for 10m.",
            [
                target(
                    f"sum by (reason) (rate(mcp_router_refusals_total{{{_ROUTER}}}[$__rate_interval])) * 60",
                    "{{reason}}",
                )
            ],
            "short",
            grid(0, 20, 12, 8),
            red_from=10,
        ),
        timeseries(
            "Calls by outcome",
            "MCP messages per second through the router for this server, every method, by outcome: ok,"
            " tool_error, rpc_error, refused, upstream_error (the server was not reached or gave no answer).",
            [
                target(
                    f"sum by (outcome) (rate(mcp_router_requests_total{{{_ROUTER}}}[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            "reqps",
            grid(12, 20, 12, 8),
        ),
        timeseries(
            "Failed share",
            "Share of the calls that failed on the way or at the server: no pod to send them to,"
            " unreachable, timed out, HTTP 5xx without an answer, or a JSON-RPC internal error (-32603);"
            " McpServerHighErrorRate fires above 1% for 5m.",
            [target(failed_share(_ROUTER, window="$__rate_interval"), "failed")],
            "percentunit",
            grid(0, 28, 12, 8),
            red_from=FAILED_SHARE,
        ),
        timeseries(
            "Container restarts per pod",
            "Restarts of the server container in the last hour (crashes, OOM kills, failed liveness probes).",
            [
                target(
                    f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{_PODS}}}[1h]))",
                    "{{pod}}",
                )
            ],
            "short",
            grid(12, 28, 12, 8),
        ),
        timeseries(
            "CPU per pod, share of limit",
            "CPU used over the CPU limit; McpServerCpuNearLimit fires above 80% for 15m.",
            [
                target(
                    _per_pod(
                        f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{_PODS}}}"
                        "[$__rate_interval]))",
                        "cpu",
                    ),
                    "{{pod}}",
                )
            ],
            "percentunit",
            grid(0, 36, 8, 8),
        ),
        timeseries(
            "CPU throttling per pod",
            "Share of CPU periods in which the container was throttled at its limit.",
            [
                target(
                    f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{_PODS}}}"
                    "[$__rate_interval]))"
                    f"\n/\nsum by (pod) (rate(container_cpu_cfs_periods_total{{{_PODS}}}[$__rate_interval]))",
                    "{{pod}}",
                )
            ],
            "percentunit",
            grid(8, 36, 8, 8),
        ),
        timeseries(
            "Memory per pod, share of limit",
            "Working set over the memory limit; McpServerMemoryNearLimit fires above 85% for 15m.",
            [
                target(
                    _per_pod(f"max by (pod) (container_memory_working_set_bytes{{{_PODS}}})", "memory"),
                    "{{pod}}",
                )
            ],
            "percentunit",
            grid(16, 36, 8, 8),
        ),
        timeseries(
            "Tools withheld",
            "Tools the MCP router withholds on at least one replica, and why: drifted (the live definition"
            " no longer matches the catalog pin; MCPToolDrifted fires after 2m) or unpinned (no pin, where"
            " the stack withholds unpinned tools). Withheld tools are neither listed nor callable.",
            [
                target(
                    f"max by (tool, reason) (mcp_router_tool_withheld{{{_ROUTER}}}) > 0",
                    "{{tool}} ({{reason}})",
                )
            ],
            "none",
            grid(0, 44, 12, 8),
        ),
        timeseries(
            "Listing by the router",
            "Whether every MCP router replica holds a listing of the server (1) or one cannot list it (0:"
            " it refuses the server's tools; McpServerNotListed fires after 10m), and the items listed by"
            " kind.",
            [
                target(f"min(mcp_router_listing_up{{{_ROUTER}}})", "listed on every replica"),
                target(f"max by (kind) (mcp_router_listing_items{{{_ROUTER}}})", "{{kind}}", ref="B"),
            ],
            "short",
            grid(12, 44, 12, 8),
        ),
    ]
    return dashboard(
        "MCP server",
        UID,
        "One MCP server: pick it in the `server` variable.",
        [datasource_variable(), namespace_variable(), _server_variable()],
        panels,
    )
