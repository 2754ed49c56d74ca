"""The `text` server's tools: counts, slugs, digests and case changes. No state at all."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from examples.servers.common import ServerSpec

MAX_TEXT_LENGTH = 1_000_000
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH, description="The text to work on.")]
Algorithm = Literal["sha256", "sha512", "sha1", "md5", "blake2b"]
AlgorithmArg = Annotated[Algorithm, Field(description="Hash algorithm.")]
Case = Literal["upper", "lower", "title", "snake", "kebab", "camel"]

# Inner apostrophes (ASCII or typographic U+2019) and hyphens keep a word whole: don't, it\u2019s, well-known.
_WORD = re.compile("\\w+(?:['\u2019-]\\w+)*")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class Counts(BaseModel):
    characters: int = Field(description="Unicode code points.")
    words: int = Field(description="Runs of letters and digits (with inner apostrophes or hyphens).")
    lines: int = Field(description="Lines, counting a last line without a newline.")
    sentences: int = Field(description="Runs ending in . ! or ?, and a last unfinished one.")
    bytes_utf8: int = Field(description="Length in UTF-8 bytes.")


def count(text: str) -> Counts:
    stripped = text.strip()
    ends = len(_SENTENCE_END.findall(stripped))
    unfinished = bool(stripped) and not re.search(r"[.!?]$", stripped)
    return Counts(
        characters=len(text),
        words=len(_WORD.findall(text)),
        lines=len(text.splitlines()),
        sentences=ends + int(unfinished),
        bytes_utf8=len(text.encode("utf-8")),
    )


def words_of(text: str) -> list[str]:
    """Words for case changes: split on non-alphanumerics and on lower-to-upper boundaries (camelCase)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return [w for w in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF]+", spaced) if w]


def slug(text: str, separator: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return separator.join(w.lower() for w in re.split(r"[^0-9A-Za-z]+", ascii_text) if w)


def change(text: str, case: Case) -> str:
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    if case == "title":
        return text.title()
    words = [w.lower() for w in words_of(text)]
    if case == "snake":
        return "_".join(words)
    if case == "kebab":
        return "-".join(words)
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else ""


def hash_text(text: str, algorithm: Algorithm, encoding: Literal["hex", "base64"]) -> str:
    digest = hashlib.new(algorithm, text.encode("utf-8")).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def build(drift: bool = False) -> MCPServer:
    server = MCPServer("text", version="0.1.0", description="Text utilities: counts, slugs, digests, case.")

    @server.tool()
    def word_count(text: Text) -> Counts:
        """Count the characters, words, lines, sentences and UTF-8 bytes of a text."""
        return count(text)

    @server.tool()
    def slugify(
        text: Text,
        separator: Annotated[str, Field(min_length=1, max_length=3, description="Between words.")] = "-",
    ) -> str:
        """Turn a text into a lowercase ASCII slug for URLs and file names."""
        result = slug(text, separator)
        if not result:
            raise ToolError("the text has no letters or digits to make a slug from")
        return result

    if drift:
        # The drifted schema: an output encoding argument appears, as a careless release might add.
        @server.tool(name="digest")
        def digest_encoded(
            text: Text,
            algorithm: AlgorithmArg = "sha256",
            encoding: Annotated[Literal["hex", "base64"], Field(description="Output encoding.")] = "hex",
        ) -> str:
            """Hash the UTF-8 bytes of a text and return the digest in hex."""
            return hash_text(text, algorithm, encoding)

    else:

        @server.tool()
        def digest(text: Text, algorithm: AlgorithmArg = "sha256") -> str:
            """Hash the UTF-8 bytes of a text and return the digest in hex."""
            return hash_text(text, algorithm, "hex")

    @server.tool()
    def change_case(text: Text, case: Annotated[Case, Field(description="Target case.")]) -> str:
        """Rewrite a text in upper, lower, title, snake_case, kebab-case or camelCase."""
        return change(text, case)

    return server


SPEC = ServerSpec(name="text", stateless=True, build=build)
