"""The sample catalog: real public servers, all valid, with facts we can stand behind."""

from __future__ import annotations

from pathlib import Path

from mcpfleet.catalog.loader import load_catalog

REPO = Path(__file__).resolve().parents[2]


def test_sample_catalog_loads_with_at_least_twelve_servers() -> None:
    catalog = load_catalog(REPO / "catalog")
    assert len(catalog.entries) >= 12


def test_every_pinned_digest_names_its_public_source() -> None:
    for server in load_catalog(REPO / "catalog").servers:
        if server.image.digest:
            assert server.image.digest_source, server.name


def test_sample_secrets_are_references_only() -> None:
    for server in load_catalog(REPO / "catalog").servers:
        for secret in server.secrets:
            assert "/" in secret.key or "-" in secret.key, f"{server.name}: {secret.key} looks like a value"
        for value in server.env.values():
            assert not value.startswith(("ghp_", "sk-", "xox", "AKIA")), (
                f"{server.name}: literal secret in env"
            )


def test_sample_prod_holds_only_pinned_servers() -> None:
    servers = load_catalog(REPO / "catalog").servers
    prod = [s for s in servers if s.enabled_in("prod")]
    assert prod, "the sample shows a server in prod"
    assert any(not s.enabled_in("prod") for s in servers), "keep some servers out of prod"
    for server in prod:
        override = server.environments["prod"].image
        digest = override.digest if override and override.digest else server.image.digest
        assert digest, f"{server.name}: in prod without a digest (`mcpfleet pin --env prod`)"
        unpinned = [tool.name for tool in server.tools if tool.sha256 is None]
        assert not unpinned, f"{server.name}: in prod with tools not pinned by hash: {unpinned}"


def test_sample_sources_are_documented() -> None:
    sources = (REPO / "catalog" / "SOURCES.md").read_text(encoding="utf-8")
    for server in load_catalog(REPO / "catalog").servers:
        assert f"`{server.name}`" in sources or f"## {server.name}" in sources, server.name
