"""The sample catalog: whatever entries it holds, each loads, cites its pins and keeps secrets out.

Only what holds for any valid catalog is asserted here, never which servers the sample holds: adding,
editing or removing a sample entry keeps these green unless the entry itself is wrong. (catalog/SOURCES.md
records how the sample's facts were gathered; an entry's own pins cite their source in the entry, as
`digestSource`, so a new entry needs no section there.)
"""

from __future__ import annotations

import yaml

from mcpfleet.catalog.loader import load_catalog
from mcpfleet.catalog.models import Image, ImageOverride
from mcpfleet.catalog.secretscan import scan_value
from tests.sample import SAMPLE_CATALOG, sample_catalog, sample_entries

pytestmark = sample_catalog


def test_every_sample_file_loads_as_one_server() -> None:
    files = sample_entries()
    assert files, f"{SAMPLE_CATALOG / 'servers'} holds no entry"
    loaded = load_catalog(SAMPLE_CATALOG).by_name()
    assert sorted(loaded) == sorted(
        yaml.safe_load(path.read_text(encoding="utf-8"))["name"] for path in files
    )


def test_every_pinned_digest_names_its_public_source() -> None:
    for server in load_catalog(SAMPLE_CATALOG).servers:
        pins: list[Image | ImageOverride] = [
            server.image,
            *(o.image for o in server.environments.values() if o.image is not None),
        ]
        for image in pins:
            if image.digest:
                assert image.digest_source, server.name


def test_sample_secrets_are_references_only() -> None:
    for server in load_catalog(SAMPLE_CATALOG).servers:
        for secret in server.secrets:
            assert scan_value(secret.key) == [], f"{server.name}: {secret.env}'s key looks like a value"
        for name, value in server.env.items():
            assert scan_value(value, name) == [], f"{server.name}: env.{name} looks like a literal secret"


def test_sample_prod_holds_only_pinned_servers() -> None:
    # `make plan ENV=prod` passes on the sample: a server is promoted only once pinned (`mcpfleet pin`).
    for server in load_catalog(SAMPLE_CATALOG).servers:
        if not server.enabled_in("prod"):
            continue
        override = server.environments["prod"].image
        digest = override.digest if override and override.digest else server.image.digest
        assert digest, f"{server.name}: in prod without a digest (`mcpfleet pin --env prod`)"
        unpinned = [tool.name for tool in server.tools if tool.sha256 is None]
        assert not unpinned, f"{server.name}: in prod with tools not pinned by hash: {unpinned}"
