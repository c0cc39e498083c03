"""Files of a case: STL scans, acceptance screenshots, Rx documents, thumbnails.

Stored files are inert.  A file keeps its extension only when it is on the allowlist
(:data:`SAFE_TYPES`: STL, PLY, PDF, XML, JPEG, PNG); anything else — an Rx as HTML, an SVG,
an unknown attachment — is stored as ``.bin`` and served as ``application/octet-stream``.
Stored names never carry the original file name (it may hold patient data).  Files are
served only through the ``case-asset-download`` view (``views.assets``), never by URL.
"""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from align_integration.conf import get_setting
from align_integration.models._case import case_foreign_key

#: Extensions kept as they are, with the only content type each is ever served with.
SAFE_TYPES = {
    ".stl": "model/stl",
    ".ply": "application/ply",
    ".pdf": "application/pdf",
    ".xml": "application/xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}
#: What every other file becomes.
INERT_EXTENSION = ".bin"
INERT_CONTENT_TYPE = "application/octet-stream"


def safe_extension(name: str) -> str:
    """``name``'s extension (lower case) when allowlisted, else ``.bin``."""
    extension = os.path.splitext(name)[1].lower()
    return extension if extension in SAFE_TYPES else INERT_EXTENSION


def safe_content_type(name: str) -> str:
    """The content type a file called ``name`` is stored and served with."""
    return SAFE_TYPES.get(safe_extension(name), INERT_CONTENT_TYPE)


def asset_upload_to(instance: CaseAsset, filename: str) -> str:
    prefix = timezone.now().strftime(get_setting("ASSET_UPLOAD_TO"))
    # The stored name never carries the original file name (it may hold patient data), and
    # only an allowlisted extension survives.
    return f"{prefix}{instance.kind.lower()}-{uuid.uuid4().hex}{safe_extension(filename)}"


class AssetQuerySet(models.QuerySet["CaseAsset"]):
    def current(self) -> AssetQuerySet:
        return self.filter(date_removed__isnull=True)


class CaseAsset(models.Model):
    """A file of a case, kept in Django storage."""

    STL = "STL"
    PLY = "PLY"
    CCACCEPTSCREEN = "CCACCEPTSCREEN"
    RX_PDF = "RXPDF"
    RX_HTML = "RXHTML"
    SCAN_XML = "SCANXML"
    THUMBNAIL = "THUMBNAIL"
    SCREEN_CAPTURE = "SCREENCAPTURE"
    SCAN_FILE = "SCANFILE"
    KINDS = [
        (STL, "STL model"),
        (PLY, "PLY model"),
        (CCACCEPTSCREEN, "ClinCheck acceptance screenshot"),
        (RX_PDF, "Rx (PDF)"),
        (RX_HTML, "Rx (HTML)"),
        (SCAN_XML, "Scan metadata (XML)"),
        (THUMBNAIL, "Scan thumbnail"),
        (SCREEN_CAPTURE, "Screen capture"),
        (SCAN_FILE, "Other scan file"),
    ]

    case = case_foreign_key("align_assets")
    kind = models.CharField(max_length=32, choices=KINDS, db_index=True)
    file = models.FileField(upload_to=asset_upload_to, max_length=255)
    vault_id = models.CharField(max_length=64, default="", blank=True)
    external_key = models.CharField(max_length=255, default="", blank=True)
    content_type = models.CharField(max_length=100, default="", blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, default="", blank=True)
    source = models.CharField(max_length=32, default="", blank=True)
    source_ref = models.CharField(
        max_length=255, default="", blank=True, help_text="e.g. the iTero rxId:version:member"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)
    date_removed = models.DateTimeField(null=True, blank=True)

    objects = AssetQuerySet.as_manager()

    class Meta:
        ordering = ["-date_created", "-pk"]
        indexes = [models.Index(fields=["case", "kind", "date_removed"])]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "source_ref"],
                condition=~models.Q(source_ref=""),
                name="align_asset_unique_source_ref",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} asset {self.pk}"
