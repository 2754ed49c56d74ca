"""The fleet at a glance: calls, failures, p99 response time and refusals per server (from the MCP router);
calls by outcome; the gateway's answers by status class; servers down; the pods closest to their CPU and
memory limits; behind the fleet endpoint, the tools the router withholds and the servers it cannot list."""

from __future__ import annotations

from typing import Any

from components.manifests.monitoring import SERVERS_NOT_LISTED_RECORD, TOOLS_WITHHELD_RECORD, failed_share
from dashboards.common import (
    EXCHANGES,
    FAILED_SHARE,
    GATEWAY_FRONTEND,
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

UID = "mcp-fleet-overview"

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
            " or no pod the MCP router resolves.",
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
            "Calls through the router",
            "MCP messages per second the router handled for all servers, refusals included.",
            "sum(rate(mcp_router_requests_total[$__rate_interval]))",
            "reqps",
            grid(12, 0, 6, 4),
        ),
        stat(
            "Failed share, whole fleet",
            "Share of the calls that failed on the way or at the servers: no pod to send them to,"
            " unreachable, timed out, HTTP 5xx without an answer, or a JSON-RPC internal error (-32603).",
            failed_share("", window="$__rate_interval"),
            "percentunit",
            grid(18, 0, 6, 4),
            red_from=FAILED_SHARE,
        ),
        timeseries(
            "Calls per server",
            "MCP messages per second the router handled for each server, refusals included.",
            [
                target(
                    "sum by (server) (rate(mcp_router_requests_total[$__rate_interval]))",
                    "{{server}}",
                )
            ],
            "reqps",
            grid(0, 4, 12, 8),
        ),
        timeseries(
            "Failed share per server",
            "Share of each server's calls that failed on the way or at the server; McpServerHighErrorRate"
            " fires above 1%"
            " for 5m.",
            [target(failed_share("", "server", "$__rate_interval"), "{{server}}")],
            "percentunit",
            grid(12, 4, 12, 8),
            red_from=FAILED_SHARE,
        ),
        timeseries(
            "p99 response time per server",
            "99th percentile of each server's response times at the MCP router (buckets summed over the"
            " router replicas; GET streams, notifications and posted responses left out);"
            " McpServerSlowResponses fires when it stays above 1 s for 10m.",
            [target(quantile(0.99, EXCHANGES, "server"), "{{server}}")],
            "s",
            grid(0, 12, 12, 8),
            red_from=SLOW_SECONDS,
        ),
        timeseries(
            "Refusals per server",
            "Requests a minute the MCP router refused for each server, any reason (malformed messages,"
            " routing headers disagreeing with the body, tools not allowed, foreign or unknown sessions);"
            " an empty server is a path that names none.",
            [
                target(
                    "sum by (server) (rate(mcp_router_refusals_total[$__rate_interval])) * 60",
                    "{{server}}",
                )
            ],
            "short",
            grid(12, 12, 12, 8),
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
            grid(0, 20, 12, 8),
        ),
        timeseries(
            "Gateway answers by status class",
            "Responses the gateway (HAProxy) sent to clients, by status class: its own refusals (401"
            " without a valid token, 404 for unknown paths, 429 over a rate limit, 411/413 bodies) and"
            " everything the router answered.",
            [
                target(
                    f"sum by (code) (rate(haproxy_frontend_http_responses_total{{{GATEWAY_FRONTEND}}}"
                    "[$__rate_interval]))",
                    "{{code}}",
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
        stat(
            "Tools withheld: drifted",
            "Declared tools the MCP router withholds because their live definition no longer matches their"
            " catalog pin (each tool once, whatever the router replicas): neither listed nor callable;"
            " MCPToolDrifted fires for each after 2m.",
            f'sum({TOOLS_WITHHELD_RECORD}{{reason="drifted"}}) or vector(0)',
            "none",
            grid(0, 36, 8, 4),
            red_from=1,
        ),
        stat(
            "Tools withheld: unpinned",
            "Declared tools without a catalog pin, withheld where the stack says router.unpinnedTools:"
            " withhold (staging, prod); pin them to serve them.",
            f'sum({TOOLS_WITHHELD_RECORD}{{reason="unpinned"}}) or vector(0)',
            "none",
            grid(8, 36, 8, 4),
        ),
        stat(
            "Servers the router cannot list",
            "Servers some MCP router replica holds no listing of: that replica refuses their tools (503)"
            " and leaves them out of the fleet endpoint /mcp; McpServerNotListed fires after 10m.",
            f"max({SERVERS_NOT_LISTED_RECORD})",
            "none",
            grid(16, 36, 8, 4),
            red_from=1,
        ),
        timeseries(
            "Withheld tools",
            "Each tool the MCP router withholds, as the fleet endpoint names it, and why: drifted from its"
            " pin, or unpinned where unpinned tools are withheld.",
            [
                target(
                    "max by (server, tool, reason) (mcp_router_tool_withheld) > 0",
                    "{{server}}__{{tool}} ({{reason}})",
                )
            ],
            "none",
            grid(0, 40, 12, 8),
        ),
        timeseries(
            "Listing health",
            "Servers some router replica cannot list, and failed listings a minute per server (the router"
            " retries with backoff; its stderr names the error).",
            [
                target(SERVERS_NOT_LISTED_RECORD, "servers not listed"),
                target(
                    'sum by (server) (rate(mcp_router_listing_refresh_total{outcome="error"}'
                    "[$__rate_interval])) * 60",
                    "{{server}}: failed listings a minute",
                    ref="B",
                ),
            ],
            "short",
            grid(12, 40, 12, 8),
        ),
    ]
    return dashboard(
        "MCP fleet overview",
        UID,
        "Every MCP server of the fleet, as the MCP router, the gateway and Kubernetes see it.",
        [datasource_variable(), namespace_variable()],
        panels,
    )
