"""Acceptance screenshots: the html2canvas data URL a provider's browser submits on approve.

The data URL is decoded strictly, must be a JPEG by its bytes (not by what it claims),
and is bounded in bytes and pixels (Pillow).  Anything else is a
:class:`ScreenshotRejected` with a reason, and nothing is stored.

The validated JPEG is kept where the host wants it: ``CaseAdapter.store_acceptance_screenshot``
returns its :class:`~align_integration.adapters.AssetRef` (the default stores a ``CaseAsset``
file in Django storage).  The app always keeps a ``CaseAsset`` row of kind
``CCACCEPTSCREEN`` for it: the default's own row, or, for a screenshot kept in the host's
vault, a row with no file holding the vault's ``vault_id`` and ``external_key`` (as the
screenshots imported from the old tool are).  "The newest screenshot" of a case, which
ClinCheck accept sends, is therefore always the newest such row, wherever the file lives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from typing import Any

from django.db import transaction
from PIL import Image, UnidentifiedImageError

from align_integration.adapters import AssetRef, get_adapter
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
    """Validate and keep the provider's acceptance screenshot; return the app's record of it.

    Raises :class:`ScreenshotRejected` (nothing stored) for a bad data URL.
    """
    content = decode_screenshot(data_url)
    ref = get_adapter().store_acceptance_screenshot(case, content, user)
    if not isinstance(ref, AssetRef) or not (ref.vault_id or ref.external_key):
        _discard_stored_file(case, ref)
        raise TypeError(
            "CaseAdapter.store_acceptance_screenshot must return an AssetRef with a vault_id "
            "or an external_key"
        )
    try:
        with transaction.atomic():
            asset = _record_of(case, ref, content, user)
            where = "in Django storage" if asset.file else "in the host's vault"
            record(
                case,
                "acceptance_screenshot",
                CaseEvent.SUCCEEDED,
                f"Acceptance screenshot stored {where} (asset {asset.pk}, {len(content)} bytes).",
                user=user,
            )
    except Exception:
        _discard_stored_file(case, ref)  # no record, so no file of ours left behind either
        raise
    return asset


def _stored_row(case: Any, ref: AssetRef) -> CaseAsset | None:
    """The row the default ``store_acceptance_screenshot`` wrote for ``ref`` (it has a file
    and a fresh random ``vault_id``), or ``None``."""
    return (
        CaseAsset.objects.filter(
            case=case,
            kind=CaseAsset.CCACCEPTSCREEN,
            vault_id=ref.vault_id,
            external_key=ref.external_key,
        )
        .exclude(file="")
        .order_by("-pk")
        .first()
    )


def _record_of(case: Any, ref: AssetRef, content: bytes, user: Any) -> CaseAsset:
    stored = _stored_row(case, ref)
    if stored is not None:
        return stored
    if len(ref.vault_id) > 64 or len(ref.external_key) > 255:
        raise ValueError("AssetRef ids are longer than 64 (vault_id) / 255 (external_key)")
    # Kept in the host's vault: a record without a file, so it is found as the newest.
    return CaseAsset.objects.create(
        case=case,
        kind=CaseAsset.CCACCEPTSCREEN,
        vault_id=ref.vault_id,
        external_key=ref.external_key,
        content_type="image/jpeg",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        source="host",
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def _discard_stored_file(case: Any, ref: Any) -> None:
    if not isinstance(ref, AssetRef):
        return
    stored = _stored_row(case, ref)
    if stored is not None:
        stored.file.delete(save=False)
        CaseAsset.objects.filter(pk=stored.pk).delete()
