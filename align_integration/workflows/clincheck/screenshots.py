"""Acceptance screenshots: the html2canvas data URL a provider's browser submits on approve.

The data URL is decoded strictly, must be a JPEG by its bytes (not by what it claims),
is bounded in bytes and pixels (Pillow), and is stored through Django's storage API as a
``CaseAsset`` of kind ``CCACCEPTSCREEN``.  Anything else is a :class:`ScreenshotRejected`
with a reason, and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import uuid
import warnings
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from align_integration.conf import get_setting
from align_integration.models import CaseAsset, CaseEvent
from align_integration.workflows.timeline import record

DATA_URL = re.compile(r"^data:image/(?:jpeg|jpg);base64,(?P<data>[A-Za-z0-9+/=\s]*)$", re.ASCII)
JPEG_MAGIC = b"\xff\xd8\xff"


class ScreenshotRejected(ValueError):
    """The submitted screenshot is not acceptable; the message says why (no content)."""


def decode_screenshot(data_url: str) -> bytes:
    """The JPEG bytes of ``data_url``, checked; or :class:`ScreenshotRejected`."""
    if not isinstance(data_url, str) or not data_url:
        raise ScreenshotRejected("No acceptance screenshot was submitted.")
    max_bytes = int(get_setting("SCREENSHOT_MAX_BYTES"))
    if len(data_url) > max_bytes * 4 // 3 + 64:
        raise ScreenshotRejected(f"The screenshot is larger than {max_bytes} bytes.")
    match = DATA_URL.match(data_url.strip())
    if not match:
        raise ScreenshotRejected("The screenshot must be a data URL of type image/jpeg, base64.")
    try:
        content = base64.b64decode("".join(match.group("data").split()), validate=True)
    except (binascii.Error, ValueError):
        raise ScreenshotRejected("The screenshot is not valid base64.") from None
    if len(content) > max_bytes:
        raise ScreenshotRejected(f"The screenshot is larger than {max_bytes} bytes.")
    if not content.startswith(JPEG_MAGIC):
        raise ScreenshotRejected("The screenshot is not a JPEG image.")
    max_pixels = int(get_setting("SCREENSHOT_MAX_PIXELS"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                if image.format != "JPEG":
                    raise ScreenshotRejected("The screenshot is not a JPEG image.")
                width, height = image.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    raise ScreenshotRejected(
                        f"The screenshot has {width}x{height} pixels; at most {max_pixels}."
                    )
                image.verify()
            with Image.open(io.BytesIO(content)) as image:
                image.load()  # decode fully: truncated or corrupt data fails here
    except ScreenshotRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ScreenshotRejected("The screenshot has too many pixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ScreenshotRejected("The screenshot is not a readable JPEG image.") from None
    return content


def create_acceptance_screenshot(case: Any, data_url: str, user: Any = None) -> CaseAsset:
    """Store the provider's acceptance screenshot for ``case``; return the new asset."""
    content = decode_screenshot(data_url)
    vault_id = str(uuid.uuid4())
    asset = CaseAsset(
        case=case,
        kind=CaseAsset.CCACCEPTSCREEN,
        vault_id=vault_id,
        content_type="image/jpeg",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        source="provider",
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    asset.file.save("acceptance.jpg", ContentFile(content), save=False)
    asset.external_key = asset.file.name or ""
    try:
        with transaction.atomic():
            asset.save()
            record(
                case,
                "acceptance_screenshot",
                CaseEvent.SUCCEEDED,
                f"Acceptance screenshot stored (asset {asset.pk}, {len(content)} bytes).",
                user=user,
            )
    except Exception:
        asset.file.delete(save=False)  # no row, so no file left behind either
        raise
    return asset
