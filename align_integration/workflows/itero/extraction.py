"""Safe extraction of an iTero scan archive into the case's assets.

The whole archive is checked before anything is written: member names must stay inside
the target (no absolute paths, drive letters, ``..`` or NUL), no symlinks (checked in
``external_attr``), no encrypted members, a bounded member count, total uncompressed size
and compression ratio (``ITERO["MAX_*"]``).  Members are then streamed one by one through
Django's storage API (``CaseAsset.file``), under generated names — never the archive's
names, which can carry patient names and birth dates.

Stored files are inert: only allowlisted extensions are kept (``models.assets.SAFE_TYPES``:
STL, PLY, PDF, XML, JPEG, PNG); the Rx as HTML, an SVG or any other member is stored as
``.bin`` with ``application/octet-stream``.  ``source_ref`` is
``rxId:revision:sha256-<hash of the member name>`` for the iDE archive and
``rxId:revision:<asset type>:sha256-<hash>`` for the thumbnails and screen captures
archives: unique per case, so extracting the same revision again adds nothing, and no
member name is ever kept or shown.  The pictures of the ``thumbnails`` archive are kept as
``THUMBNAIL``, those of the ``screenshots`` archive as ``SCREENCAPTURE``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from django.core.files import File
from django.db import IntegrityError, transaction

from align_integration.conf import get_setting
from align_integration.models import CaseAsset, IteroScan
from align_integration.models.assets import safe_content_type, safe_extension

logger = logging.getLogger("align_integration.itero")

#: Members this small are never treated as compression bombs (a tiny, very regular file).
RATIO_FLOOR_BYTES = 1024 * 1024
READ_CHUNK = 1024 * 1024
#: Members up to this size are copied in memory before storing; larger ones spill to disk.
SPOOL_BYTES = 8 * 1024 * 1024

KIND_BY_EXTENSION = {
    ".stl": CaseAsset.STL,
    ".ply": CaseAsset.PLY,
    ".pdf": CaseAsset.RX_PDF,
    ".html": CaseAsset.RX_HTML,  # kind says what it is; it is still stored inert (.bin)
    ".htm": CaseAsset.RX_HTML,
    ".xml": CaseAsset.SCAN_XML,
    ".jpg": CaseAsset.THUMBNAIL,
    ".jpeg": CaseAsset.THUMBNAIL,
    ".png": CaseAsset.THUMBNAIL,
}


#: Kind of the pictures of each download asset type (other members follow the extension).
PICTURE_KIND = {
    "ide": CaseAsset.THUMBNAIL,
    "thumbnails": CaseAsset.THUMBNAIL,
    "screenshots": CaseAsset.SCREEN_CAPTURE,
}
#: The scan metadata XML's version in its member name: ``scan_v50.xml``, ``…-V44.xml``.
XML_VERSION_IN_NAME = re.compile(r"(?:^|[^A-Za-z0-9])[vV](\d{1,4})\.xml$")


class UnsafeArchive(Exception):
    """The archive breaks a safety rule; nothing of it was written."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_uncompressed_bytes: int
    max_compression_ratio: float

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        itero = get_setting("ITERO")
        return cls(
            max_members=int(itero["MAX_ZIP_MEMBERS"]),
            max_uncompressed_bytes=int(itero["MAX_UNCOMPRESSED_BYTES"]),
            max_compression_ratio=float(itero["MAX_COMPRESSION_RATIO"]),
        )


def _temp_dir() -> str | None:
    return get_setting("ITERO", "DOWNLOAD_TEMP_DIR") or None


def safe_member_name(name: str) -> str:
    """The member's relative path, or :class:`UnsafeArchive` if it could leave the target."""
    if "\x00" in name:
        raise UnsafeArchive("member name holds a NUL character")
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise UnsafeArchive("member has an absolute path")
    parts = [part for part in normalized.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafeArchive("member path leaves the target folder (..)")
    return "/".join(parts)


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """Unix mode bits live in the high 16 bits of ``external_attr``."""
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(
    archive: zipfile.ZipFile, limits: ArchiveLimits, *, archive_size: int
) -> list[tuple[zipfile.ZipInfo, str]]:
    """The (member, safe name) pairs to extract; :class:`UnsafeArchive` on any violation."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchive(f"archive has {len(infos)} members, over {limits.max_members}")
    members: list[tuple[zipfile.ZipInfo, str]] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = safe_member_name(info.filename)
        if is_symlink(info):
            raise UnsafeArchive("archive holds a symbolic link")
        if info.is_dir() or not name:
            continue
        if info.flag_bits & 0x1:
            raise UnsafeArchive("archive holds an encrypted member")
        if name in seen:
            raise UnsafeArchive("archive holds the same member name twice")
        seen.add(name)
        total += info.file_size
        if total > limits.max_uncompressed_bytes:
            raise UnsafeArchive(
                f"archive expands to more than {limits.max_uncompressed_bytes} bytes"
            )
        ratio_limit = limits.max_compression_ratio * max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > ratio_limit:
            raise UnsafeArchive("a member's compression ratio is too high (zip bomb?)")
        members.append((info, name))
    if total > RATIO_FLOOR_BYTES and total > limits.max_compression_ratio * max(archive_size, 1):
        raise UnsafeArchive("the archive's compression ratio is too high (zip bomb?)")
    return members


def kind_of(name: str, asset_type: str = "ide") -> str:
    kind = KIND_BY_EXTENSION.get(os.path.splitext(name)[1].lower(), CaseAsset.SCAN_FILE)
    return PICTURE_KIND.get(asset_type, kind) if kind == CaseAsset.THUMBNAIL else kind


def member_ref(name: str) -> str:
    """A member name as kept: its hash, never the name (which can hold patient data)."""
    return f"sha256-{hashlib.sha256(name.encode()).hexdigest()[:40]}"


def source_ref(scan: IteroScan, name: str, asset_type: str = "ide") -> str:
    kind = "" if asset_type == "ide" else f"{asset_type}:"
    return f"{scan.rx_id}:{scan.revision}:{kind}{member_ref(name)}"[:255]


def xml_version_in(names: list[str]) -> str:
    """The newest scan metadata XML version among member names (``"v50"``), or ``""``."""
    versions = [
        int(match.group(1))
        for name in names
        if (match := XML_VERSION_IN_NAME.search(name.rsplit("/", 1)[-1]))
    ]
    return f"v{max(versions)}" if versions else ""


class _MeteredReader:
    """Reads a member, hashing and counting; refuses more bytes than the archive declared."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.count = 0
        self.sha256 = hashlib.sha256()

    def read(self, size: int = READ_CHUNK) -> bytes:
        chunk = self.stream.read(READ_CHUNK if size is None or size < 0 else size)
        self.count += len(chunk)
        if self.count > self.limit:
            raise UnsafeArchive("a member is larger than the archive declares")
        self.sha256.update(chunk)
        return chunk


def _store_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    name: str,
    scan: IteroScan,
    ref: str,
    kind: str,
) -> CaseAsset | None:
    extension = safe_extension(name)  # ".bin" unless allowlisted
    asset = CaseAsset(
        case=scan.case,
        kind=kind,
        source="itero",
        source_ref=ref,
        external_key=f"itero:{scan.rx_id}"[:255],
        content_type=safe_content_type(name),
    )
    # The member is read to the end (zipfile checks its CRC there) into a spooled copy
    # before storage sees a byte: storage never holds a half-written or corrupt file.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, dir=_temp_dir()) as copy:
        with archive.open(info) as member:
            reader = _MeteredReader(cast(BinaryIO, member), info.file_size)
            while chunk := reader.read(READ_CHUNK):
                copy.write(chunk)
        copy.seek(0)
        content = File(copy, name=f"scan{extension}")
        content.size = reader.count
        asset.file.save(f"scan{extension}", content, save=False)
    asset.size = reader.count
    asset.sha256 = reader.sha256.hexdigest()
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:  # stored meanwhile by another worker: keep theirs
        asset.file.delete(save=False)
        return None
    return asset


@dataclass
class ExtractedArchive:
    """What one archive held: its member count, the assets created now, and the scan
    metadata XML version its member names show (``""`` when none)."""

    members: int
    created: list[CaseAsset]
    xml_version: str = ""


def extract_scan_archive(
    path: str, scan: IteroScan, *, limits: ArchiveLimits | None = None, asset_type: str = "ide"
) -> tuple[int, list[CaseAsset]]:
    """Check the archive at ``path``, then store each member as a ``CaseAsset`` of the scan's
    case.  Returns (members in the archive, assets created now)."""
    extracted = extract_archive(path, scan, limits=limits, asset_type=asset_type)
    return extracted.members, extracted.created


def extract_archive(
    path: str, scan: IteroScan, *, limits: ArchiveLimits | None = None, asset_type: str = "ide"
) -> ExtractedArchive:
    """:func:`extract_scan_archive` for one download asset type (``ide``, ``thumbnails``,
    ``screenshots``), telling also the XML version the member names show."""
    if scan.case_id is None:
        raise ValueError("the scan has no case to extract into")
    limits = limits or ArchiveLimits.from_settings()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UnsafeArchive("the download is not a zip archive") from error
    created: list[CaseAsset] = []
    with archive:
        members = check_archive(archive, limits, archive_size=os.path.getsize(path))
        refs = {name: source_ref(scan, name, asset_type) for _, name in members}
        existing = set(
            CaseAsset.objects.filter(
                case=scan.case, source_ref__in=list(refs.values())
            ).values_list("source_ref", flat=True)
        )
        try:
            for info, name in members:
                if refs[name] in existing:
                    continue
                kind = kind_of(name, asset_type)
                asset = _store_member(archive, info, name, scan, refs[name], kind)
                if asset is not None:
                    created.append(asset)
        except BaseException as error:
            _discard(created)  # all or nothing: a half-extracted revision is not kept
            if isinstance(error, zipfile.BadZipFile | zipfile.LargeZipFile | EOFError):
                raise UnsafeArchive("the archive is corrupt") from error
            if isinstance(error, RuntimeError | NotImplementedError):
                raise UnsafeArchive("the archive is encrypted or unsupported") from error
            raise
    logger.info(
        "itero_scan=%s rx=%s asset_type=%s outcome=extracted members=%d created=%d",
        scan.pk,
        scan.rx_id,
        asset_type,
        len(members),
        len(created),
    )
    xml_version = xml_version_in(
        [name for _, name in members if kind_of(name) == CaseAsset.SCAN_XML]
    )
    return ExtractedArchive(len(members), created, xml_version)


def _discard(assets: list[CaseAsset]) -> None:
    for asset in assets:
        asset.file.delete(save=False)
        asset.delete()


def assets_summary(scan: IteroScan) -> dict[str, Any]:
    """Counts per kind of the scan's assets in its case (for messages)."""
    counts: dict[str, int] = {}
    if scan.case_id is None:
        return counts
    prefix = f"{scan.rx_id}:{scan.revision}:"
    for kind in CaseAsset.objects.filter(
        case_id=scan.case_id, source="itero", source_ref__startswith=prefix
    ).values_list("kind", flat=True):
        counts[kind] = counts.get(kind, 0) + 1
    return counts
