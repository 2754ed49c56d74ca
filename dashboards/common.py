"""What every mcpfleet dashboard shares: the Prometheus data source, the variables and panel shapes."""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from components.manifests.monitoring import ERROR_RATIO, RESPONSE_TIME_SECONDS, ROUTER_EXCHANGES

# Panels ask the data source chosen in the dashboard's `datasource` variable; it defaults to
# kube-prometheus-stack's default data source, so the same JSON works in every environment.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["mcpfleet"]
REFRESH = "30s"
# The gateway's HAProxy frontend for MCP clients (components/gateway/templates/haproxy.cfg.j2). Every
# routed request goes on to the MCP router's one pool, so per server only the router's metrics tell.
GATEWAY_FRONTEND = 'proxy="mcp"'
# Overwritten per environment with its namespace prefix when the dashboards are deployed.
DEFAULT_SERVER_NAMESPACES = "mcp-.*"
# The MCP router's response-time histogram (docs/router.md, "Metrics"), labelled server, method and tool.
ROUTER_HISTOGRAM = "mcp_router_request_duration_seconds"
# The alerts' thresholds, drawn on graphs, and the series the slow-response alerts time (no streams).
SLOW_SECONDS = float(RESPONSE_TIME_SECONDS)
FAILED_SHARE = ERROR_RATIO
EXCHANGES = ROUTER_EXCHANGES
# A GET is a stream, timed for as long as its client listens: never on a response-time graph.
NO_STREAMS = 'method!="GET"'


def datasource_variable() -> Any:
    return g.Template(name="datasource", label="Data source", query="prometheus", type="datasource")


def namespace_variable() -> Any:
    return g.Template(
        name="namespace",
        label="Server namespaces (regex)",
        query=DEFAULT_SERVER_NAMESPACES,
        default=DEFAULT_SERVER_NAMESPACES,
        type="textbox",
    )


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False) -> Any:
    return g.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        datasource=DATASOURCE,
        instant=instant,
        format="table" if table else "time_series",
    )


def quantile(q: float, selector: str, by: str = "", window: str = "$__rate_interval") -> str:
    """The q-quantile of the router's response times, its buckets summed over the router replicas."""
    group = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group}) (rate({ROUTER_HISTOGRAM}_bucket{{{selector}}}[{window}])))"
    )


def grid(x: int, y: int, w: int, h: int) -> Any:
    return g.GridPos(h=h, w=w, x=x, y=y)


def timeseries(
    title: str, description: str, targets: list[Any], unit: str, pos: Any, red_from: float | None = None
) -> Any:
    """red_from: an alert's threshold, drawn as a line."""
    thresholds: dict[str, Any] = {}
    if red_from is not None:
        thresholds = {
            "thresholds": [{"color": "green", "value": None}, {"color": "red", "value": red_from}],
            "thresholdsStyleMode": "line",
        }
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        gridPos=pos,
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        **thresholds,
    )


def stat(title: str, description: str, expr: str, unit: str, pos: Any, red_from: float | None = None) -> Any:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, instant=True)],
        format=unit,
        reduceCalc="lastNotNull",
        graphMode="none",
        thresholds=steps,
        gridPos=pos,
    )


def dashboard(title: str, uid: str, description: str, variables: list[Any], panels: list[Any]) -> Any:
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=TAGS,
        timezone="utc",
        refresh=REFRESH,
        time=g.Time("now-6h", "now"),
        templating=g.Templating(list=variables),
        links=[
            g.DashboardLink(title="mcpfleet", type="dashboards", tags=TAGS, asDropdown=True, keepTime=True)
        ],
        panels=panels,
    ).auto_panel_ids()
