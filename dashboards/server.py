"""One MCP server in depth, chosen with the `server` variable: replicas; per tool, response-time
percentiles, calls by outcome and error codes, refusals (from the MCP router); traffic by status class,
time spent at the gateway, authentication failures (HAProxy); each pod's CPU, throttling, memory, restarts."""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from dashboards.common import (
    ALL_SERVERS,
    DATASOURCE,
    EXCHANGES,
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

_GATEWAY = 'proxy="server_$server"'
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
        query=f"label_values(haproxy_backend_http_requests_total{{{ALL_SERVERS}}}, proxy)",
        regex="/^server_(.+)$/",
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
            "Healthy endpoints at the gateway",
            "Servers of the gateway's backend that pass its health checks (worst gateway replica).",
            f"min(haproxy_backend_active_servers{{{_GATEWAY}}})",
            "none",
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
            "Responses by status class",
            "Responses per second the gateway returned for this server, by HTTP status class.",
            [
                target(
                    f"sum by (code) (rate(haproxy_backend_http_responses_total{{{_GATEWAY}}}"
                    "[$__rate_interval]))",
                    "{{code}}",
                )
            ],
            "reqps",
            grid(12, 20, 12, 8),
        ),
        timeseries(
            "5xx share",
            "Share of responses that were 5xx; McpServerHighErrorRate fires above 1% for 5m.",
            [
                target(
                    f'sum(rate(haproxy_backend_http_responses_total{{{_GATEWAY},code="5xx"}}[$__rate_interval]))'
                    f"\n/\nsum(rate(haproxy_backend_http_requests_total{{{_GATEWAY}}}[$__rate_interval]))",
                    "5xx",
                )
            ],
            "percentunit",
            grid(0, 28, 12, 8),
        ),
        timeseries(
            "Average time at the gateway",
            "Means over each gateway replica's last 1024 requests (worst replica): queue, connect,"
            " response headers, and total (includes streamed responses). HAProxy 2.6 has no percentiles:"
            " the router's are in the panels above.",
            [
                target(f"max(haproxy_backend_queue_time_average_seconds{{{_GATEWAY}}})", "queue", "A"),
                target(f"max(haproxy_backend_connect_time_average_seconds{{{_GATEWAY}}})", "connect", "B"),
                target(f"max(haproxy_backend_response_time_average_seconds{{{_GATEWAY}}})", "response", "C"),
                target(f"max(haproxy_backend_total_time_average_seconds{{{_GATEWAY}}})", "total", "D"),
            ],
            "s",
            grid(12, 28, 12, 8),
        ),
        timeseries(
            "Authentication failures and sessions",
            "Requests a minute refused for failed authentication (401), sessions open, requests queued.",
            [
                target(
                    f"sum(rate(haproxy_backend_requests_denied_total{{{_GATEWAY}}}[$__rate_interval])) * 60",
                    "auth failures / min",
                    "A",
                ),
                target(f"sum(haproxy_backend_current_sessions{{{_GATEWAY}}})", "sessions", "B"),
                target(f"sum(haproxy_backend_current_queue{{{_GATEWAY}}})", "queued", "C"),
            ],
            "short",
            grid(0, 36, 12, 8),
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
            grid(12, 36, 12, 8),
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
            grid(0, 44, 8, 8),
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
            grid(8, 44, 8, 8),
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
            grid(16, 44, 8, 8),
        ),
    ]
    return dashboard(
        "MCP server",
        UID,
        "One MCP server: pick it in the `server` variable.",
        [datasource_variable(), namespace_variable(), _server_variable()],
        panels,
    )
