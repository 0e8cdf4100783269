"""Images and documents backboard cannot take: a short marker in the text instead, and the
part named in the request's dropped list, so nothing is lost without a word.

Sans-I/O, a request rewrite (canonical Request in, canonical Request out). backboard's
message endpoint takes text (its file attachments must be uploaded and indexed first,
which a proxy turn cannot wait for). A document that is text already stays, as text.
"""

from __future__ import annotations

from dataclasses import replace

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    TextPart,
    ToolResultPart,
)

IMAGE_MARKER = "[image: not shown, this model cannot take images]"


def without_media(request: Request) -> Request:
    """``request`` with every image and non-text document replaced by a marker."""
    dropped: list[str] = []
    messages = tuple(_message(m, i, dropped) for i, m in enumerate(request.messages))
    if messages == request.messages:
        return request
    return replace(request, messages=messages, dropped=(*request.dropped, *dropped))


def document_marker(part: DocumentPart) -> str:
    name = f' "{part.title}"' if part.title else ""
    where = f" at {part.url}" if part.url else ""
    return f"[document{name}{where}: not shown, this model cannot take files]"


def _message(message: Message, index: int, dropped: list[str]) -> Message:
    if not any(isinstance(p, ImagePart | DocumentPart | ToolResultPart) for p in message.parts):
        return message
    parts = tuple(_part(p, f"messages.{index}.content.{j}", dropped)
                  for j, p in enumerate(message.parts))
    return Message(message.role, parts)


def _part(part: Part, path: str, dropped: list[str]) -> Part:
    if isinstance(part, ToolResultPart):
        inner = tuple(_inner(p, f"{path}.content.{k}", dropped)
                      for k, p in enumerate(part.content))
        return replace(part, content=inner) if inner != part.content else part
    if isinstance(part, ImagePart | DocumentPart):
        return _inner(part, path, dropped)
    return part


def _inner(part: TextPart | ImagePart | DocumentPart, path: str,
           dropped: list[str]) -> TextPart:
    if isinstance(part, TextPart):
        return part
    if isinstance(part, DocumentPart) and part.text is not None:
        title = f"{part.title}\n\n" if part.title else ""
        return TextPart(f"{title}{part.text}")
    if isinstance(part, ImagePart):
        dropped.append(f"{path}:image")
        return TextPart(IMAGE_MARKER)
    dropped.append(f"{path}:document")
    return TextPart(document_marker(part))
