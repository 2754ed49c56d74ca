"""Write every dashboard to dashboards/generated/, replacing the folder at once."""

from __future__ import annotations

from dashboards import GENERATED, rendered
from mcpfleet.outputs import replace_directory


def main() -> None:
    files = rendered()
    replace_directory(GENERATED, files)
    for name in sorted(files):
        print(f"wrote dashboards/generated/{name}")


if __name__ == "__main__":
    main()
