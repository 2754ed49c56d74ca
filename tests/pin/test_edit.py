"""Catalog edits keep the file as its author wrote it: only the pinned lines change."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from mcpfleet.pin.edit import EntryFile, set_fields, write_all

DIGEST = "sha256:" + "1" * 64
SOURCE = "https://ghcr.io/v2/example/alpha/manifests/v1#resolved-2026-01-02"

ENTRY = """\
# yaml-language-server: $schema=../schema.json
name: alpha  # the DNS label
description: >-
  Folded text that stays
  on two lines.
image:
  repository: ghcr.io/example/alpha
  tag: v1  # as the project publishes it
# About the arguments, below the image block.
args: ["serve", "--port", "8080"]
tools:
  - name: one
    description: "Quoted, kept quoted."
  - name: two
environments:
  dev: {}
  prod:
    image:
      tag: v2
    # Prod's scaling follows.
    scaling: {replicas: 2}
"""


def open_entry(tmp_path: Path, text: str = ENTRY) -> EntryFile:
    path = tmp_path / "alpha.yaml"
    path.write_text(text, encoding="utf-8")
    return EntryFile(path, "servers/alpha.yaml")


def changes(entry: EntryFile) -> tuple[list[str], list[str]]:
    """Lines removed and added, as a diff sees them."""
    diff = list(difflib.ndiff(entry.original.splitlines(), entry.text.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def test_round_trip_without_change_is_byte_identical(tmp_path: Path) -> None:
    entry = open_entry(tmp_path)
    assert entry.layout_kept and not entry.changed and entry.text == ENTRY


def test_pin_lands_after_the_tag_and_the_comment_below_the_block_stays_below(tmp_path: Path) -> None:
    entry = open_entry(tmp_path)
    set_fields(entry.mapping(("image",)), {"digest": DIGEST, "digestSource": SOURCE}, after="tag")
    removed, added = changes(entry)
    assert removed == []
    assert added == [f"  digest: {DIGEST}", f"  digestSource: {SOURCE}"]
    lines = entry.text.splitlines()
    at = lines.index("  tag: v1  # as the project publishes it")
    assert lines[at + 1 : at + 4] == [
        f"  digest: {DIGEST}",
        f"  digestSource: {SOURCE}",
        "# About the arguments, below the image block.",
    ]


def test_an_existing_pin_changes_in_place(tmp_path: Path) -> None:
    pinned = ENTRY.replace(
        "  tag: v1  # as the project publishes it\n",
        f"  tag: v1  # as the project publishes it\n  digest: {DIGEST}  # old\n  digestSource: https://a.example/x\n",
    )
    entry = open_entry(tmp_path, pinned)
    new = "sha256:" + "2" * 64
    set_fields(entry.mapping(("image",)), {"digest": new, "digestSource": SOURCE}, after="tag")
    removed, added = changes(entry)
    assert removed == [f"  digest: {DIGEST}  # old", "  digestSource: https://a.example/x"]
    assert added == [f"  digest: {new}  # old", f"  digestSource: {SOURCE}"]


def test_an_environment_override_is_pinned_in_its_own_block(tmp_path: Path) -> None:
    entry = open_entry(tmp_path)
    mapping = entry.mapping(("environments", "prod", "image"))
    set_fields(mapping, {"digest": DIGEST, "digestSource": SOURCE}, after="tag")
    removed, added = changes(entry)
    assert removed == []
    assert added == [f"      digest: {DIGEST}", f"      digestSource: {SOURCE}"]
    lines = entry.text.splitlines()
    at = lines.index("      tag: v2")
    assert lines[at + 3] == "    # Prod's scaling follows."


def test_a_flow_mapping_stays_flow(tmp_path: Path) -> None:
    entry = open_entry(tmp_path, ENTRY.replace("    image:\n      tag: v2\n", "    image: {tag: v2}\n"))
    set_fields(entry.mapping(("environments", "prod", "image")), {"digest": DIGEST}, after="tag")
    removed, added = changes(entry)
    assert removed == ["    image: {tag: v2}"]
    assert added == [f"    image: {{tag: v2, digest: {DIGEST}}}"]


def test_tool_hash_follows_the_description_or_the_name(tmp_path: Path) -> None:
    entry = open_entry(tmp_path)
    set_fields(entry.mapping(("tools", 0)), {"sha256": "a" * 64}, after="description")
    set_fields(entry.mapping(("tools", 1)), {"sha256": "b" * 64}, after="description")
    removed, added = changes(entry)
    assert removed == []
    assert added == [f"    sha256: {'a' * 64}", f"    sha256: {'b' * 64}"]
    lines = entry.text.splitlines()
    assert lines[lines.index('    description: "Quoted, kept quoted."') + 1] == f"    sha256: {'a' * 64}"
    assert lines[lines.index("  - name: two") + 1] == f"    sha256: {'b' * 64}"


def test_lists_at_the_margin_keep_their_layout(tmp_path: Path) -> None:
    text = ENTRY.replace("  - name: one\n    description", "- name: one\n  description").replace(
        "  - name: two\n", "- name: two\n"
    )
    entry = open_entry(tmp_path, text)
    assert entry.layout_kept
    set_fields(entry.mapping(("tools", 0)), {"sha256": "a" * 64}, after="description")
    assert changes(entry) == ([], [f"  sha256: {'a' * 64}"])


def test_a_layout_no_writer_setting_reproduces_is_reported(tmp_path: Path) -> None:
    entry = open_entry(
        tmp_path, "name: alpha\nimage:\n     repository: ghcr.io/example/alpha\n     tag: v1\n"
    )
    assert not entry.layout_kept


def test_write_all_writes_every_file_or_none(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("old: 1\n")
    missing = tmp_path / "no-such-folder" / "second.yaml"
    with pytest.raises(OSError):
        write_all({first: "new: 1\n", missing: "new: 2\n"})
    assert first.read_text() == "old: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.yaml"]  # no temporary file left

    second = tmp_path / "second.yaml"
    second.write_text("old: 2\n")
    first.chmod(0o640)
    write_all({first: "new: 1\n", second: "new: 2\n"})
    assert (first.read_text(), second.read_text()) == ("new: 1\n", "new: 2\n")
    assert first.stat().st_mode & 0o777 == 0o640
