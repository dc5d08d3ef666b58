"""What a file is, from its first bytes, and how a browser may be given it (no I/O)."""

import pytest

from app import media_types
from tests.media_fakes import EXE, HTML, JPEG, MP3, PDF, PNG

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"OggS\x00\x02" + bytes(20), "audio/ogg"),
        (MP3, "audio/mpeg"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\xff\xf1\x50\x80", "audio/aac"),
        (b"#!AMR\n", "audio/amr"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x00", "video/3gpp"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x1aE\xdf\xa3\x9fB\x86", "video/webm"),
        (PDF, "application/pdf"),
        (EXE, "application/x-msdownload"),
        (b"\x7fELF\x02\x01", "application/x-executable"),
        (HTML, "text/html"),
        (b"\xef\xbb\xbf  <html lang=en>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<svg xmlns=', "image/svg+xml"),
        (b'<?xml version="1.0"?><invoice/>', "application/xml"),
        (b"Dear shop, my order", None),
    ],
)
def test_a_file_is_known_by_its_first_bytes(head, expected):
    assert media_types.sniff(head[: media_types.HEAD_BYTES]) == expected


def test_the_declared_type_names_which_office_document_a_zip_is():
    assert media_types.detect(b"PK\x03\x04\x14\x00", DOCX) == DOCX
    assert media_types.detect(b"PK\x03\x04\x14\x00", "image/jpeg") == "application/zip"


def test_an_mp4_container_in_an_audio_message_is_audio():
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00"
    assert media_types.detect(head, "audio/mp4", "audio") == "audio/mp4"
    assert media_types.detect(head, "video/mp4", "video") == "video/mp4"


def test_the_bytes_win_over_a_declared_type_and_its_parameters_are_dropped():
    assert media_types.detect(PNG, "image/jpeg") == "image/png"
    assert media_types.detect(b"OggS\x00", "audio/ogg; codecs=opus") == "audio/ogg"


def test_plain_text_keeps_its_declared_type_only_when_it_is_text():
    assert media_types.detect("Grüße, bis bald".encode(), "text/plain") == "text/plain"
    assert media_types.detect("é".encode() * 32, "text/csv") == "text/csv"
    assert media_types.detect(b"\x00\x01binary", "text/plain") == media_types.OCTET_STREAM
    assert media_types.detect(b"no idea", "text/html") == media_types.OCTET_STREAM


@pytest.mark.parametrize(
    ("kind", "mime_type", "refused"),
    [
        ("image", "image/png", False),
        ("sticker", "image/webp", False),
        ("audio", "audio/ogg", False),
        ("video", "video/mp4", False),
        ("document", "application/pdf", False),
        ("document", media_types.OCTET_STREAM, False),
        ("image", "application/pdf", True),
        ("audio", "video/webm", True),
        ("document", "text/html", True),
        ("document", "image/svg+xml", True),
        ("image", "image/svg+xml", True),
        ("document", "application/x-msdownload", True),
    ],
)
def test_a_file_must_be_its_kind_and_never_markup_or_a_program(kind, mime_type, refused):
    assert (media_types.refusal(kind, mime_type) is not None) == refused


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [("image/jpeg", "image"), ("audio/mpeg", "audio"), ("video/mp4", "video"), (DOCX, "document")],
)
def test_a_reply_s_file_is_a_kind_by_its_type(mime_type, kind):
    assert media_types.kind_of(mime_type) == kind


def test_a_file_name_keeps_only_its_last_part_and_printable_characters():
    assert media_types.file_name("C:\\Users\\zoe\\Rechnung März.pdf", "document", "x") == (
        "Rechnung März.pdf"
    )
    assert media_types.file_name("../../etc/passwd\n", "document", "x") == "passwd"
    assert media_types.file_name(None, "image", "image/png") == "image.png"
    assert media_types.file_name("", "document", "application/x-unknown") == "document"


@pytest.mark.parametrize(
    ("mime_type", "disposition"),
    [
        ("image/jpeg", "inline"),
        ("image/webp", "inline"),
        ("audio/ogg", "inline"),
        ("audio/mpeg", "inline"),
        ("video/mp4", "inline"),
        ("application/pdf", "attachment"),
        ("text/plain", "attachment"),
        ("text/html", "attachment"),
        ("image/svg+xml", "attachment"),
        ("application/xml", "attachment"),
        ("video/webm", "attachment"),
    ],
)
def test_only_types_that_cannot_run_anything_are_shown_inline(mime_type, disposition):
    assert media_types.content_disposition(mime_type, "f").startswith(f"{disposition};")


def test_a_file_name_is_sent_as_ascii_and_as_utf_8():
    header = media_types.content_disposition("application/pdf", 'Devis "Été".pdf')
    assert header == (
        "attachment; filename=\"Devis __t__.pdf\"; filename*=UTF-8''Devis%20%22%C3%89t%C3%A9%22.pdf"
    )
