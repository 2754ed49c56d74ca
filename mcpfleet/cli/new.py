"""`mcpfleet new`: a catalog entry from a template, valid and plannable in dev as written.

Nothing the command cannot know is invented: the image, the owner's contact and the source repository
come from the options, and what the owner must still decide is left as TODO comments.
"""

from __future__ import annotations

import enum
import re
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import jinja2
import typer

from mcpfleet.catalog.literals import redact_problems
from mcpfleet.catalog.secretscan import scan_value
from mcpfleet.cli.app import CatalogOption, app, refuse
from mcpfleet.errors import InputProblem, InvalidInput, display_path

# The patterns of mcpfleet.catalog.models and mcpfleet.model: refusing here names the option at fault
# instead of a field of a file the user never wrote.
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_RULE = "a DNS label: lowercase letters, digits and '-', starting with a letter, at most 40 characters"
IMAGE_REPOSITORY = re.compile(
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
SOURCES = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket"}
# The default port of each transport: stdio servers are served by the Supergateway bridge on 8000.
PORTS = {"streamable-http": 8080, "sse": 8080, "stdio": 8000}


class TransportChoice(enum.StrEnum):
    streamable_http = "streamable-http"
    sse = "sse"
    stdio = "stdio"


@app.command()
def new(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help=f"Server name: {NAME_RULE}.", show_default=False)
    ],
    image: Annotated[
        str,
        typer.Option("--image", metavar="REPOSITORY:TAG", help="The image, e.g. ghcr.io/org/server:1.2.3."),
    ],
    contact: Annotated[
        str,
        typer.Option(
            "--contact",
            metavar="CONTACT",
            help="How to reach the owners: e-mail, chat channel or on-call URL.",
        ),
    ],
    repository: Annotated[
        str, typer.Option("--repository", metavar="URL", help="Source repository URL (https://).")
    ],
    team: Annotated[
        str, typer.Option("--team", metavar="TEAM", help="Owning team (a DNS label).")
    ] = "platform",
    transport: Annotated[
        TransportChoice, typer.Option("--transport", help="How clients speak MCP to it.")
    ] = TransportChoice.streamable_http,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            metavar="COMMAND",
            help="For stdio: the server's command line, e.g. 'uvx pkg==1.0'.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", metavar="TEXT", help="Human-readable name.")] = None,
    description: Annotated[
        str | None, typer.Option("--description", metavar="TEXT", help="What the server is for.")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", metavar="VERSION", help="Server version \\[default: the image tag]"),
    ] = None,
    catalog: CatalogOption = Path("catalog"),
) -> None:
    """Write catalog/servers/NAME.yaml from the template: enabled in local and dev only."""
    target = catalog / "servers" / f"{name}.yaml"
    shown = display_path(target)
    problems: list[InputProblem] = []

    def bad(option: str, message: str) -> None:
        problems.append(InputProblem(shown, None, option, message))

    if not (NAME.match(name) and len(name) <= 40):
        bad("NAME", f"{name!r} is not {NAME_RULE}")
    if not (NAME.match(team) and len(team) <= 40):
        bad("--team", f"{team!r} is not {NAME_RULE}")
    image_repository, _, image_tag = image.rpartition(":")
    if "@" in image:
        bad(
            "--image",
            "give REPOSITORY:TAG; add a digest by hand with its digestSource (the page it came from)",
        )
    elif not image_repository or "/" in image_tag or not IMAGE_REPOSITORY.match(image_repository):
        bad("--image", f"{image!r} is not REPOSITORY:TAG, e.g. ghcr.io/org/server:1.2.3")
    elif not IMAGE_TAG.match(image_tag) or image_tag == "latest":
        bad("--image", f"tag {image_tag!r}: give the exact published version, never `latest`")
    if not 3 <= len(contact.strip()) <= 200:
        bad("--contact", "give an e-mail address, a chat channel or an on-call URL (3 to 200 characters)")
    if not re.match(r"^https://[^\s/]+/[^\s]+$", repository):
        bad("--repository", f"{repository!r} is not an https:// URL of a repository")
    chosen_version = version if version is not None else image_tag
    if not VERSION.match(chosen_version) or len(chosen_version) > 64:
        bad("--version", f"{chosen_version!r} is not a version (letters, digits, '.', '+', '_', '-')")
    argv = shlex.split(command) if command else []
    if transport is TransportChoice.stdio and not argv:
        bad("--command", "a stdio server needs the command line the bridge starts")
    if transport is not TransportChoice.stdio and argv:
        bad("--command", "only stdio servers take a command; the image's entrypoint serves HTTP")
    if target.exists():
        problems.append(InputProblem(shown, None, None, "already exists: edit it, or choose another name"))
    # The entry goes into the repository: refuse a pasted secret here, as validate would, never echoing it.
    options = {"NAME": name, "--title": title, "--description": description, "--contact": contact}
    options |= {"--repository": repository, "--image": image, "--version": version, "--command": command}
    literals = []
    for option, value in options.items():
        # Image tags are often commit ids: only named token formats count there, as in the catalog.
        found = scan_value(value, entropy=option != "--image") if value else []
        literals += [finding.secret for finding in found]
        if found:
            kind = found[0].kind
            bad(option, f"looks like a literal secret ({kind}); secret values never go in the catalog")
    if problems:
        raise refuse(InvalidInput(redact_problems(problems, literals)))

    host = repository.split("/")[2]
    text = render_entry(
        name=name,
        title=title or name.replace("-", " ").title(),
        description=description or f"TODO: what {name} is for, in one or two sentences.",
        version=chosen_version,
        team=team,
        contact=contact.strip(),
        repository=repository,
        source=SOURCES.get(host, "other"),
        image_repository=image_repository,
        image_tag=image_tag,
        transport=transport.value,
        port=PORTS[transport.value],
        command=argv,
    )
    if not (catalog / "servers").is_dir():
        raise refuse(
            InvalidInput(
                [InputProblem(display_path(catalog / "servers"), None, None, "catalog folder not found")]
            )
        )
    try:
        with target.open("x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
            handle.write(text)
    except FileExistsError:
        raise refuse(InvalidInput([InputProblem(shown, None, None, "already exists")])) from None
    print(
        f"wrote {shown}: fill its TODO lines, then `make validate` and `make plan ENV=dev`", file=sys.stderr
    )


def render_entry(**values: object) -> str:
    """Render the packaged template; a missing value is an error, never an empty string."""
    source = resources.files("mcpfleet.templates").joinpath("server.yaml.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return environment.from_string(source).render(**values)
