"""The `notes` server's tools: a notebook per MCP session, in this replica's memory.

Legacy (2025-11-25) clients get an `Mcp-Session-Id` at `initialize`; their notes live under it, so every
later request of the session must reach the replica that answered `initialize` (the gateway's affinity).
Modern (2026-07-28) requests carry no session, so they have no notebook and the tools say so.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from examples.servers.common import ServerSpec

SESSION_HEADER = "mcp-session-id"
Priority = Literal["low", "normal", "high"]
# Memory bounds: a client that opens sessions in a loop evicts the oldest notebooks, never the server.
MAX_NOTEBOOKS = 1000
MAX_NOTES = 500
MAX_NOTE_LENGTH = 10_000


class Note(BaseModel):
    id: int = Field(description="Number of the note in its session, from 1.")
    text: str = Field(description="The note.")
    tags: list[str] = Field(description="Tags given when the note was added.")
    priority: Priority | None = Field(default=None, description="Priority, when one was given.")
    created: str = Field(description="When the note was added (UTC, ISO 8601).")


class Notebook:
    def __init__(self) -> None:
        self.notes: dict[int, Note] = {}
        self.next_id = 1


class Notebooks:
    """Notebooks by session id, least recently used evicted first."""

    def __init__(self, limit: int = MAX_NOTEBOOKS) -> None:
        self.limit = limit
        self.books: OrderedDict[str, Notebook] = OrderedDict()

    def of(self, session_id: str) -> Notebook:
        book = self.books.pop(session_id, None) or Notebook()
        self.books[session_id] = book
        while len(self.books) > self.limit:
            self.books.popitem(last=False)
        return book


def session_of(ctx: Context[Any, Any]) -> str:
    headers = ctx.headers
    session_id = headers.get(SESSION_HEADER) if headers is not None else None
    if not session_id:
        raise ToolError(
            "notes belong to an MCP session and this request has none (protocol 2026-07-28 is"
            " sessionless): connect with protocol 2025-11-25 to keep notes"
        )
    return session_id


def add(book: Notebook, text: str, tags: list[str], priority: Priority | None) -> Note:
    if len(book.notes) >= MAX_NOTES:
        raise ToolError(f"this session already holds {MAX_NOTES} notes; delete some first")
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    note = Note(id=book.next_id, text=text, tags=sorted(set(tags)), priority=priority, created=created)
    book.notes[note.id] = note
    book.next_id += 1
    return note


NoteText = Annotated[str, Field(min_length=1, max_length=MAX_NOTE_LENGTH, description="The note.")]
Tags = Annotated[list[str], Field(max_length=20, description="Tags to find the note by later.")]


def build(drift: bool = False) -> MCPServer:
    server = MCPServer(
        "notes", version="0.1.0", description="Notes kept in memory for the length of an MCP session."
    )
    notebooks = Notebooks()

    if drift:
        # The drifted schema: a priority argument appears, as a careless release might add.
        @server.tool(name="add_note")
        def add_note_with_priority(
            text: NoteText,
            ctx: Context[Any, Any],
            tags: Tags | None = None,
            priority: Annotated[Priority, Field(description="How urgent the note is.")] = "normal",
        ) -> Note:
            """Add a note to this session's notebook."""
            return add(notebooks.of(session_of(ctx)), text, tags or [], priority)

    else:

        @server.tool()
        def add_note(text: NoteText, ctx: Context[Any, Any], tags: Tags | None = None) -> Note:
            """Add a note to this session's notebook."""
            return add(notebooks.of(session_of(ctx)), text, tags or [], None)

    @server.tool()
    def list_notes(
        ctx: Context[Any, Any],
        tag: Annotated[str | None, Field(description="Only notes with this tag.")] = None,
    ) -> list[Note]:
        """List this session's notes, oldest first."""
        notes = notebooks.of(session_of(ctx)).notes.values()
        return [note for note in notes if tag is None or tag in note.tags]

    @server.tool()
    def search_notes(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(min_length=1, max_length=200, description="Text to look for.")],
    ) -> list[Note]:
        """Find this session's notes whose text contains the query (case-insensitive)."""
        needle = query.casefold()
        notes = notebooks.of(session_of(ctx)).notes.values()
        return [note for note in notes if needle in note.text.casefold()]

    @server.tool()
    def delete_note(
        ctx: Context[Any, Any], id: Annotated[int, Field(ge=1, description="The note's id.")]
    ) -> Note:
        """Delete one of this session's notes and return it."""
        book = notebooks.of(session_of(ctx))
        note = book.notes.pop(id, None)
        if note is None:
            raise ToolError(f"this session has no note {id}")
        return note

    return server


SPEC = ServerSpec(name="notes", stateless=False, build=build)
