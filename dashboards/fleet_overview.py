"""The fleet at a glance: traffic, errors, p99 response time, authentication failures and refusals per
server; calls by outcome; servers down; the pods closest to their CPU and memory limits."""

from __future__ import annotations

from typing import Any

from dashboards.common import (
    ALL_SERVERS,
    EXCHANGES,
    SLOW_SECONDS,
    by_server,
    dashboard,
    datasource_variable,
    grid,
    namespace_variable,
    quantile,
    stat,
    target,
    timeseries,
)

UID = "mcp-fleet-overview"

_REQUESTS = f"sum by (proxy) (rate(haproxy_backend_http_requests_total{{{ALL_SERVERS}}}[$__rate_interval]))"
_ERRORS = (
    f'sum by (proxy) (rate(haproxy_backend_http_responses_total{{{ALL_SERVERS},code="5xx"}}'
    "[$__rate_interval]))"
)
_PODS = 'namespace=~"$namespace",container="server"'


def _share_of_limit(usage: str, resource: str) -> str:
    return (
        f"topk(10, {usage}\n/\n"
        f'sum by (namespace, pod) (kube_pod_container_resource_limits{{{_PODS},resource="{resource}"}}))'
    )


def build() -> Any:
    panels = [
        stat(
            "Servers down",
            "Servers whose McpServerDown or McpServerNoRouterEndpoints alert fires: no available replica,"
            " no healthy endpoint at the gateway, or no pod the MCP router resolves.",
            'count(count by (server) (ALERTS{alertname=~"McpServerDown|McpServerNoRouterEndpoints",'
            'alertstate="firing"})) or vector(0)',
            "none",
            grid(0, 0, 6, 4),
            red_from=1,
        ),
        stat(
            "Servers with firing alerts",
            "Servers with at least one McpServer alert firing.",
            'count(count by (server) (ALERTS{alertname=~"McpServer.+",alertstate="firing"})) or vector(0)',
            "none",
            grid(6, 0, 6, 4),
            red_from=1,
        ),
        stat(
            "Requests through the gateway",
            "Requests per second the gateway passed to all servers.",
            f"sum(rate(haproxy_backend_http_requests_total{{{ALL_SERVERS}}}[$__rate_interval]))",
            "reqps",
            grid(12, 0, 6, 4),
        ),
        stat(
            "5xx share, whole fleet",
            "Share of all server responses that were 5xx.",
            f'sum(rate(haproxy_backend_http_responses_total{{{ALL_SERVERS},code="5xx"}}[$__rate_interval]))\n/\n'
            f"sum(rate(haproxy_backend_http_requests_total{{{ALL_SERVERS}}}[$__rate_interval]))",
            "percentunit",
            grid(18, 0, 6, 4),
            red_from=0.01,
        ),
        timeseries(
            "Requests per server",
            "Requests per second the gateway passed to each server (haproxy_backend_http_requests_total).",
            [target(by_server(_REQUESTS), "{{server}}")],
            "reqps",
            grid(0, 4, 12, 8),
        ),
        timeseries(
            "5xx share per server",
            "Share of each server's responses that were 5xx; McpServerHighErrorRate fires above 1% for 5m.",
            [target(by_server(f"{_ERRORS}\n/\n{_REQUESTS}"), "{{server}}")],
            "percentunit",
            grid(12, 4, 12, 8),
        ),
        timeseries(
            "p99 response time per server",
            "99th percentile of each server's response times at the MCP router (buckets summed over the"
            " router replicas); McpServerSlowResponses fires when it stays above 1 s for 10m.",
            [target(quantile(0.99, EXCHANGES, "server"), "{{server}}")],
            "s",
            grid(0, 12, 12, 8),
            red_from=SLOW_SECONDS,
        ),
        timeseries(
            "Authentication failures per server",
            "Requests a minute the gateway refused for failed authentication (401) in each server's backend.",
            [
                target(
                    by_server(
                        f"sum by (proxy) (rate(haproxy_backend_requests_denied_total{{{ALL_SERVERS}}}"
                        "[$__rate_interval])) * 60"
                    ),
                    "{{server}}",
                )
            ],
            "short",
            grid(12, 12, 12, 8),
        ),
        timeseries(
            "Refusals per server",
            "Requests a minute the MCP router refused for each server (any reason: malformed messages,"
            " routing headers disagreeing with the body, tools not allowed, foreign or unknown sessions).",
            [
                target(
                    "sum by (server) (rate(mcp_router_refusals_total[$__rate_interval])) * 60",
                    "{{server}}",
                )
            ],
            "short",
            grid(0, 20, 12, 8),
        ),
        timeseries(
            "Calls by outcome, whole fleet",
            "Messages per second through the MCP router by outcome: ok, tool_error, rpc_error, refused,"
            " upstream_error.",
            [
                target(
                    "sum by (outcome) (rate(mcp_router_requests_total[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            "reqps",
            grid(12, 20, 12, 8),
        ),
        timeseries(
            "Top 10 pods by CPU, share of limit",
            "CPU used over the CPU limit, MCP server containers in the server namespaces.",
            [
                target(
                    _share_of_limit(
                        f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{{_PODS}}}"
                        "[$__rate_interval]))",
                        "cpu",
                    ),
                    "{{namespace}}/{{pod}}",
                )
            ],
            "percentunit",
            grid(0, 28, 12, 8),
        ),
        timeseries(
            "Top 10 pods by memory, share of limit",
            "Working set over the memory limit: at 100% the container is OOM-killed.",
            [
                target(
                    _share_of_limit(
                        f"max by (namespace, pod) (container_memory_working_set_bytes{{{_PODS}}})", "memory"
                    ),
                    "{{namespace}}/{{pod}}",
                )
            ],
            "percentunit",
            grid(12, 28, 12, 8),
        ),
    ]
    return dashboard(
        "MCP fleet overview",
        UID,
        "Every MCP server of the fleet, as the gateway, the MCP router and Kubernetes see it.",
        [datasource_variable(), namespace_variable()],
        panels,
    )
