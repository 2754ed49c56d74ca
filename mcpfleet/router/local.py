"""The router on one machine: as a subprocess (as deployed) or in a thread, on loopback ports.

For tests, benchmarks and `mcpfleet dev`: the same code as the deployed router, started from a
configuration dict (or the configuration directory's files, `ConfigFiles`), the issuer's public key and
session keys.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpfleet.router.app import Router
    from mcpfleet.router.observe import AuditSink

START_SECONDS = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def new_session_keys(count: int = 1) -> list[bytes]:
    return [os.urandom(32) for _ in range(count)]


def session_keys_text(keys: list[bytes]) -> str:
    """The --session-keys file's content: one base64 key per line, the sealing key first."""
    return "".join(base64.b64encode(key).decode("ascii") + "\n" for key in keys)


@dataclass(frozen=True)
class ConfigFiles:
    """router.json and the server files it names, as rendered (file name -> text): written byte for byte
    into a directory of their own, which the router is given as its `--config`, as the pods' volume."""

    files: Mapping[str, str]


@dataclass(frozen=True)
class RunningRouter:
    host: str
    port: int
    metrics_port: int
    process: subprocess.Popen[bytes] | None
    audit: Path | None
    """The process's stdout: one audit line per line, forward and full records (subprocess only)."""
    log: Path | None
    app: Router | None = None
    """The router itself, when it runs in this process."""

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, server: str, path: str = "mcp") -> str:
        return f"{self.base}/servers/{server}/{path}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def audit_lines(self) -> list[dict[str, Any]]:
        """Every audit line written so far (a last line still being written is left out)."""
        if self.audit is None:
            return []
        lines = self.audit.read_text(encoding="utf-8").split("\n")[:-1]
        return [json.loads(line) for line in lines if line.startswith("{")]

    def audit_records(self) -> list[dict[str, Any]]:
        """The full records: one per message, written once its answer ended."""
        return [line for line in self.audit_lines() if line.get("event") == "message"]

    def forward_records(self) -> list[dict[str, Any]]:
        """The write-ahead records: one per message sent upstream, written before it was sent."""
        return [line for line in self.audit_lines() if line.get("event") == "forward"]


def healthy(host: str, metrics_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{metrics_port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def write_files(
    directory: Path,
    config: Mapping[str, Any] | ConfigFiles,
    jwt_key_pem: bytes,
    session_keys: list[bytes],
) -> tuple[Path, Path, Path]:
    """router.json (or the directory `config` holding ConfigFiles' files), issuer.pem and session-keys
    (owner-only) in directory; the first path is what `--config` is given."""
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(config, ConfigFiles):
        config_path = directory / "config"
        config_path.mkdir()
        for name, text in config.files.items():
            (config_path / name).write_bytes(text.encode("utf-8"))
    else:
        config_path = directory / "router.json"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    key_path = directory / "issuer.pem"
    key_path.write_bytes(jwt_key_pem)
    keys_path = directory / "session-keys"
    fd = os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as sink:
        sink.write(session_keys_text(session_keys))
    return config_path, key_path, keys_path


@contextmanager
def router_process(
    config: Mapping[str, Any] | ConfigFiles,
    jwt_key_pem: bytes,
    session_keys: list[bytes],
    directory: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    metrics_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningRouter]:
    """`python -m mcpfleet.router` on free ports, ready once /healthz answers; stopped (SIGTERM) on exit."""
    config_path, key_path, keys_path = write_files(directory, config, jwt_key_pem, session_keys)
    port = port or free_port(host)
    metrics_port = metrics_port or free_port(host)
    audit = directory / f"audit-{port}.jsonl"
    log = directory / f"router-{port}.log"
    command = [sys.executable, "-m", "mcpfleet.router", "--config", str(config_path)]
    command += ["--jwt-key", str(key_path), "--session-keys", str(keys_path), "--host", host]
    command += ["--port", str(port), "--metrics-port", str(metrics_port)]
    with audit.open("wb") as out, log.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, env=dict(env or os.environ), start_new_session=True
        )
    running = RunningRouter(host, port, metrics_port, process, audit, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not healthy(host, metrics_port):
            if process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise RuntimeError(f"the router did not start (exit {process.poll()}):\n{text}")
            time.sleep(0.05)
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def router_thread(
    config: Mapping[str, Any],
    jwt_key_pem: bytes,
    session_keys: list[bytes],
    host: str = "127.0.0.1",
    audit: AuditSink | None = None,
) -> Iterator[RunningRouter]:
    """The router in this process (a thread with its own event loop): for tests that read its state.
    audit receives its audit lines (by default they are dropped)."""
    from mcpfleet.router.app import build_app
    from mcpfleet.router.observe import discard
    from mcpfleet.router.serve import listen, uvicorn_server

    router = build_app(config, jwt_key_pem, session_keys, audit=audit or discard)
    port, metrics_port = free_port(host), free_port(host)
    sockets = [listen(host, port), listen(host, metrics_port)]
    server = uvicorn_server(router, metrics_port)
    # uvicorn installs no signal handlers off the main thread; should_exit stops it.
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not healthy(host, metrics_port):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process router did not start")
            time.sleep(0.05)
        yield RunningRouter(host, port, metrics_port, None, None, None, router)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for sock in sockets:
            sock.close()
