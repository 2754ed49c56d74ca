"""Write a folder of outputs all at once: readers see the old folder or the new one, never a mix."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path


def replace_directory(target: Path, files: Mapping[str, str]) -> None:
    """Make target hold exactly files (relative path -> text). On any error target is left untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        staging.chmod(0o755)
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if target.exists():
        previous = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(previous)
    staging.rename(target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
