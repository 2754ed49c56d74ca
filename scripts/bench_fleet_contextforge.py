"""IBM's ContextForge gateway as a peer of the fleet endpoint: installed in a throwaway venv of its own,
started on loopback, each fleet server registered with it, its `/mcp` serving them all.

Used by scripts/bench_fleet.py; never a dependency of the project (not in pyproject.toml). ContextForge
pins its own versions of fastapi, mcp and others, so it gets a venv of its own, made on first use with
`python3 -m venv` and pip from the package registry, and kept for later runs (build/ is not committed).

Its version: the newest that installs on this machine's Python. 1.1.0, its latest, requires Python >= 3.12;
this machine and CI run 3.11, where pip offers 1.0.7.post20260921 at most.

Set-up, all from its own documented settings: SQLite in the run's folder, its own HS256 tokens (an admin
token made by its own `create_jwt_token` tool; its RBAC has no notion of the catalog's per-tool roles),
the admin API on and the UI off, and the three settings without which it cannot serve this benchmark at
all: loopback upstreams allowed (`SSRF_ALLOW_LOCALHOST`: its SSRF guard refuses 127.0.0.1), its rate
limiter off (`RATE_LIMITING_ENABLED=false`: 100 MCP requests a minute by default, and a 15-minute lockout
after a few refusals), and one upstream URL per registered server (it refuses a second server at a URL
it already has, so each server name gets the shared backend's URL with `?server=<name>`, which the
backends ignore). Everything else is its default, response caching and compression included (the
benchmark's clients ask for no compression).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2

PACKAGE = "mcp-contextforge-gateway"
VERSION = "1.0.7.post20260921"
INSTALL_SECONDS = 600.0
START_SECONDS = 120.0
REGISTER_CONCURRENCY = 8
REGISTER_SECONDS = 60.0
ADMIN_EMAIL = "bench-admin@example.com"
# ContextForge's own token settings (its defaults), which its create_jwt_token tool signs for.
TOKEN_MINUTES = 240


class Unavailable(Exception):
    """ContextForge cannot take part in this run; the message says exactly why."""


def installed(venv: Path) -> bool:
    """Whether venv holds ContextForge at VERSION."""
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-m", "pip", "show", PACKAGE], capture_output=True, text=True, check=False
    )
    return check.returncode == 0 and f"Version: {VERSION}" in check.stdout


def install(venv: Path, log: Path) -> float:
    """ContextForge VERSION in venv (made if missing); returns the seconds it took (0 if already there).
    Unavailable, with pip's last lines, when it does not install."""
    if installed(venv):
        return 0.0
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    # A venv of the base interpreter, not of the project's venv (whose packages it must not see).
    base_python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base_python, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{PACKAGE}=={VERSION}"],
    ]
    with log.open("w", encoding="utf-8") as out:
        for step in steps:
            remaining = INSTALL_SECONDS - (time.monotonic() - started)
            try:
                done = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, timeout=max(remaining, 1), check=False
                )
            except subprocess.TimeoutExpired:
                raise Unavailable(
                    f"{PACKAGE}=={VERSION} did not install within {INSTALL_SECONDS:.0f} s (log: {log})"
                ) from None
            if done.returncode != 0:
                tail = " | ".join(log.read_text(encoding="utf-8").strip().splitlines()[-3:])
                raise Unavailable(f"{PACKAGE}=={VERSION} does not install here: {tail}")
    return time.monotonic() - started


@dataclass(frozen=True)
class Settings:
    """What a running ContextForge was started with."""

    port: int
    env: dict[str, str]
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"


def environment(run_dir: Path, port: int, base: Mapping[str, str]) -> dict[str, str]:
    """Its settings for this run: fresh secrets, SQLite in run_dir, what the module docstring lists."""
    env = {key: value for key, value in base.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{run_dir / 'contextforge.db'}",
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTH_ENCRYPTION_SECRET": secrets.token_urlsafe(48),
            "BASIC_AUTH_PASSWORD": secrets.token_urlsafe(24),
            "PLATFORM_ADMIN_EMAIL": ADMIN_EMAIL,
            "PLATFORM_ADMIN_PASSWORD": "Aa1!" + secrets.token_urlsafe(24),
            "AUTH_REQUIRED": "true",
            "MCPGATEWAY_UI_ENABLED": "false",
            "MCPGATEWAY_ADMIN_API_ENABLED": "true",
            "SSRF_ALLOW_LOCALHOST": "true",
            "RATE_LIMITING_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
    )
    return env


def command(venv: Path, port: int) -> list[str]:
    return [str(venv / "bin" / "mcpgateway"), "--host", "127.0.0.1", "--port", str(port)]


def admin_token(venv: Path, env: Mapping[str, str]) -> str:
    """A token for its admin, made by its own tool (the last line it prints)."""
    made = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "mcpgateway.utils.create_jwt_token",
            "--username",
            ADMIN_EMAIL,
            "--exp",
            str(TOKEN_MINUTES),
            "--secret",
            env["JWT_SECRET_KEY"],
            "--admin",
        ],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
    )
    lines = made.stdout.strip().splitlines()
    if made.returncode != 0 or not lines or lines[-1].count(".") != 2:
        raise Unavailable(f"its create_jwt_token tool made no token: {(made.stderr or made.stdout)[-300:]}")
    return lines[-1].strip()


def wait_healthy(port: int, alive: Callable[[], bool], seconds: float = START_SECONDS) -> None:
    """Until its /health answers 200; Unavailable when it exits or takes longer than seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive():
            raise Unavailable("it exited while starting (see its log)")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    raise Unavailable(f"it did not answer /health within {seconds:.0f} s")


def upstream_url(url: str, server: str) -> str:
    """The shared backend's URL made unique per server name (it refuses a URL twice)."""
    return f"{url}?server={server}"


def register(settings: Settings, servers: Mapping[str, str]) -> float:
    """Register each server (name -> its backend URL) as a ContextForge gateway; returns the seconds it
    took. Unavailable naming the first refusal."""

    async def run() -> None:
        limit = asyncio.Semaphore(REGISTER_CONCURRENCY)
        headers = {"Authorization": f"Bearer {settings.token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=REGISTER_SECONDS) as http:

            async def one(name: str, url: str) -> None:
                async with limit:
                    body = {"name": name, "url": upstream_url(url, name), "transport": "STREAMABLEHTTP"}
                    answer = await http.post(f"{settings.base}/gateways", json=body)
                    if answer.status_code >= 300:
                        raise Unavailable(
                            f"registering {name} was refused: HTTP {answer.status_code} {answer.text[:200]}"
                        )

            await asyncio.gather(*(one(name, url) for name, url in sorted(servers.items())))

    started = time.monotonic()
    asyncio.run(run())
    return time.monotonic() - started


def tool_name(server: str, tool: str) -> str:
    """Its name for a server's tool: the gateway's slug, `-`, the tool's slug (`_` becomes `-`)."""
    return f"{server}-{tool.replace('_', '-')}"
