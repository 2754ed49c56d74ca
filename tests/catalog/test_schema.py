"""catalog/schema.json is generated from the models, and every sample entry satisfies it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mcpfleet.catalog.schema import render_schema
from tests.conftest import minimal_server
from tests.sample import SAMPLE_CATALOG, sample_catalog, sample_entries

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sample_entries()


def test_committed_schema_matches_the_models() -> None:
    committed = (REPO / "catalog" / "schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), "catalog/schema.json drifted from the models: run `make schema`"


@sample_catalog
@pytest.mark.parametrize("entry", SAMPLES, ids=lambda p: p.stem)
def test_sample_entry_satisfies_the_schema_editors_use(entry: Path) -> None:
    # The schema the entry points at (`../schema.json`): the sample catalog's own.
    schema = json.loads((SAMPLE_CATALOG / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(entry.read_text(encoding="utf-8")))


@sample_catalog
@pytest.mark.parametrize("entry", SAMPLES, ids=lambda p: p.stem)
def test_sample_entry_points_editors_at_the_schema(entry: Path) -> None:
    text = entry.read_text(encoding="utf-8")
    assert "# yaml-language-server: $schema=../schema.json" in text
    assert yaml.safe_load(text)["$schema"] == "../schema.json"


def test_schema_refuses_what_the_models_refuse() -> None:
    schema = json.loads(render_schema())
    validator = jsonschema.Draft202012Validator(schema)
    entry = minimal_server("alpha")
    assert validator.is_valid(entry)
    entry["colour"] = "blue"
    assert not validator.is_valid(entry)
