"""Images and documents backboard cannot take: a marker in the text and a line in the
request's dropped list, never silently lost; text documents stay as text."""

from __future__ import annotations

from proxy.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Request,
    TextPart,
    ToolResultPart,
    ToolUsePart,
)
from proxy.dialects.backboard.media import IMAGE_MARKER, document_marker, without_media


def test_a_request_without_media_is_returned_as_it_is() -> None:
    request = Request(model="m", messages=(Message("user", (TextPart("hi"),)),),
                      dropped=("safeguards",))
    assert without_media(request) is request


def test_images_and_documents_become_markers_and_are_named_in_dropped() -> None:
    pdf = DocumentPart(media_type="application/pdf", data="JVBERi0=", title="spec.pdf")
    request = Request(model="m", dropped=("safeguards",), messages=(
        Message("user", (TextPart("Look:"), ImagePart(media_type="image/png", data="iVBOR"),
                         pdf, DocumentPart(url="https://example.com/a.pdf"))),
        Message("assistant", (ToolUsePart("toolu_1", "Read", {"file_path": "x.png"}),)),
        Message("user", (ToolResultPart("toolu_1", (ImagePart(url="https://x/y.png"),
                                                    TextPart("ok"))),)),
    ))
    out = without_media(request)
    assert out.messages[0].parts == (
        TextPart("Look:"), TextPart(IMAGE_MARKER),
        TextPart('[document "spec.pdf": not shown, this model cannot take files]'),
        TextPart("[document at https://example.com/a.pdf: not shown, this model cannot take "
                 "files]"))
    assert out.messages[1] == request.messages[1]
    assert out.messages[2].parts == (ToolResultPart("toolu_1", (TextPart(IMAGE_MARKER),
                                                                TextPart("ok"))),)
    assert out.dropped == ("safeguards", "messages.0.content.1:image",
                           "messages.0.content.2:document", "messages.0.content.3:document",
                           "messages.2.content.0.content.0:image")


def test_a_text_document_stays_as_text() -> None:
    doc = DocumentPart(text="The whole text.", title="notes.txt")
    request = Request(model="m", messages=(Message("user", (doc, TextPart("Summarise."))),))
    out = without_media(request)
    assert out.messages[0].parts == (TextPart("notes.txt\n\nThe whole text."),
                                     TextPart("Summarise."))
    assert out.dropped == ()
    assert document_marker(DocumentPart(data="x")) == (
        "[document: not shown, this model cannot take files]")
