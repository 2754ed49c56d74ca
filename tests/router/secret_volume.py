"""A Secret volume as the kubelet writes it: each version in a directory of its own, `..data` a symlink
to the current one, and each key a symlink through `..data`; an update swaps `..data` at once."""

from __future__ import annotations

from pathlib import Path

from mcpfleet.router.local import session_keys_text


class SecretVolume:
    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.versions = 0

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def write(self, text: str) -> None:
        """A new version of the file, swapped in with one rename, as the kubelet does."""
        self.versions += 1
        version = self.directory / f"..version-{self.versions}"
        version.mkdir(parents=True)
        (version / self.name).write_text(text, encoding="ascii")
        pending = self.directory / "..data_tmp"
        pending.symlink_to(version.name)
        pending.replace(self.directory / "..data")
        if not self.path.is_symlink():
            link = self.directory / f".{self.name}.link"
            link.symlink_to(Path("..data") / self.name)
            link.replace(self.path)

    def keys(self, keys: list[bytes]) -> None:
        self.write(session_keys_text(keys))
