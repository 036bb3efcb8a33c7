"""Receipt uploads: only PNG, JPEG or PDF, recognised by their first bytes
(never by the file name or the browser's Content-Type), at most 5 MB."""

from __future__ import annotations

MAX_BYTES = 5 * 1024 * 1024
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
)


class ReceiptRejected(ValueError):
    """The upload is not a receipt we keep; ``reason`` is a key of the i18n strings."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_receipt(data: bytes) -> str:
    """Return the media type of a receipt file.

    Raises:
        ReceiptRejected: ``receipt_empty``, ``receipt_too_large`` or ``receipt_type``.
    """
    if not data:
        raise ReceiptRejected("receipt_empty")
    if len(data) > MAX_BYTES:
        raise ReceiptRejected("receipt_too_large")
    for magic, media_type in SIGNATURES:
        if data.startswith(magic):
            return media_type
    raise ReceiptRejected("receipt_type")


def read_upload(storage, limit: int = MAX_BYTES) -> bytes:
    """Read an uploaded file, never more than one byte past ``limit``."""
    return storage.stream.read(limit + 1)
