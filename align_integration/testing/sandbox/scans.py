"""iTero scan archives made up on the fly: the iDE zip, the thumbnails zip, the screenshots zip.

The files are real enough for a client to parse: binary STL models (80-byte header, triangle
count, 50 bytes per triangle), the scan metadata XML (``scan_v50.xml`` unless the order names
another ``xmlVersion``), the Rx as HTML and as a one-page PDF, six tiny baseline JPEG
thumbnails and any screen captures, all built with the standard library only. Large
archives (``size``) are written with ``ZIP_STORED`` straight to disk in blocks, so a 1 GB scan
costs disk time, not memory.
"""

from __future__ import annotations

import math
import re
import struct
import zipfile
from collections.abc import Mapping
from html import escape as html_escape
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape as xml_escape

ASSET_TYPES = ("ide", "thumbnails", "screenshots")
DEFAULT_XML = "v50"  # the newest scan metadata XML for restorative cases (seed 002, 3.6)
THUMBNAIL_COUNT = 6
STL_HEADER_SIZE = 84  # 80-byte header + uint32 triangle count
STL_TRIANGLE_SIZE = 50  # normal + 3 vertices (12 float32) + uint16 attribute count
_ZIP_ENTRY_OVERHEAD = 200  # local + central directory headers per entry, names included, roughly
_BLOCK_TRIANGLES = 20_000  # ~1 MB written per block when padding a large model

_A, _B, _C, _D = (0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 10.0)
_S = 1 / math.sqrt(3)
# A closed tetrahedron, faces wound counter-clockwise seen from outside.
_TETRAHEDRON = (
    ((0.0, 0.0, -1.0), (_A, _C, _B)),
    ((0.0, -1.0, 0.0), (_A, _B, _D)),
    ((-1.0, 0.0, 0.0), (_A, _D, _C)),
    ((_S, _S, _S), (_B, _C, _D)),
)


def _triangle_bytes(normal: tuple[float, ...], vertices: tuple[tuple[float, ...], ...]) -> bytes:
    return struct.pack("<12fH", *normal, *(coord for vertex in vertices for coord in vertex), 0)


_TETRAHEDRON_BYTES = b"".join(
    _triangle_bytes(normal, vertices) for normal, vertices in _TETRAHEDRON
)


def stl_size(triangles: int) -> int:
    """Bytes of a binary STL with ``triangles`` triangles."""
    return STL_HEADER_SIZE + STL_TRIANGLE_SIZE * triangles


def write_stl(out: BinaryIO, triangles: int, label: str = "sandbox scan") -> None:
    """Write a binary STL of ``triangles`` triangles (a tetrahedron, repeated to pad)."""
    # The header must not start with "solid", or readers take the file for ASCII STL.
    header = f"binary STL {label}".encode("ascii", errors="replace")[:80].ljust(80, b" ")
    out.write(header + struct.pack("<I", triangles))
    per_mesh = len(_TETRAHEDRON)
    block = _TETRAHEDRON_BYTES * (_BLOCK_TRIANGLES // per_mesh)
    remaining = triangles
    while remaining >= _BLOCK_TRIANGLES:
        out.write(block)
        remaining -= _BLOCK_TRIANGLES
    whole, rest = divmod(remaining, per_mesh)
    out.write(_TETRAHEDRON_BYTES * whole + _TETRAHEDRON_BYTES[: rest * STL_TRIANGLE_SIZE])


def tiny_jpeg(label: str = "") -> bytes:
    """A valid 8x8 grey baseline JPEG; ``label`` goes into a comment so files can differ."""

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload

    one_code_table = bytes([1] + [0] * 15) + b"\x00"  # a single 1-bit code for symbol 0
    return b"".join(
        (
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xFE, f"sandbox thumbnail {label}".encode()[:200]),
            segment(0xDB, b"\x00" + b"\x01" * 64),
            segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00"),
            segment(0xC4, b"\x00" + one_code_table),  # DC table 0
            segment(0xC4, b"\x10" + one_code_table),  # AC table 0
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            # DC difference 0 (code "0"), end of block (code "0"), padded with 1-bits.
            b"\x3f",
            b"\xff\xd9",
        )
    )


def tiny_pdf(text: str) -> bytes:
    """A valid one-page PDF showing one line of ASCII text."""
    safe = text.encode("ascii", errors="replace").decode().replace("\\", "\\\\")
    safe = safe.replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 12 Tf 20 50 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def stl_names(stl_count: int) -> list[str]:
    """Model file names: upper and lower jaw first, then any extra models."""
    names = ["upper.stl", "lower.stl"][:stl_count]
    names += [f"model_{index}.stl" for index in range(3, stl_count + 1)]
    return names


def xml_number(xml_version: str) -> str:
    """``"50"`` from ``"v50"``: the schema version inside the metadata XML."""
    return xml_version[1:] if xml_version[:1] in ("v", "V") else xml_version


def _small_files(
    rx_id: str, version: int, orthodontic: bool, order: Mapping[str, Any]
) -> dict[str, bytes]:
    patient = order.get("patient") or {}
    case_type = str(order.get("caseType") or ("Orthodontic" if orthodontic else "Restorative"))
    order_id = str(order.get("orderId", ""))
    chart_number = str(patient.get("chartNumber", ""))
    xml_version = re.sub(r"[^A-Za-z0-9_.-]", "_", str(order.get("xmlVersion") or DEFAULT_XML))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Scan schemaVersion="{xml_escape(xml_number(xml_version))}">'
        f"<RxId>{xml_escape(rx_id)}</RxId><OrderId>{xml_escape(order_id)}</OrderId>"
        f"<ScanVersion>{version}</ScanVersion><CaseType>{xml_escape(case_type)}</CaseType></Scan>\n"
    )
    name = f"{patient.get('lastName', '')}, {patient.get('firstName', '')}"
    html = (
        f"<!DOCTYPE html><html><head><title>Rx {html_escape(rx_id)}</title></head><body>"
        f"<h1>Rx {html_escape(rx_id)}</h1><p>Order {html_escape(order_id)}</p>"
        f"<p>Patient {html_escape(name)} (chart {html_escape(chart_number)})</p>"
        f"<p>Case type {html_escape(case_type)}, scan version {version}</p></body></html>\n"
    )
    files = {
        f"scan_{xml_version}.xml": xml.encode(),
        "rx.html": html.encode(),
        "rx.pdf": tiny_pdf(f"Rx {rx_id} version {version}"),
    }
    if orthodontic:
        files.update(
            {
                f"thumbnails/{index}.jpg": tiny_jpeg(f"{rx_id} {index}")
                for index in range(1, THUMBNAIL_COUNT + 1)
            }
        )
    return files


def build_scan_zip(
    path: str | Path,
    rx_id: str,
    stl_count: int = 2,
    size: int | None = None,
    orthodontic: bool = True,
    *,
    version: int = 1,
    order: Mapping[str, Any] | None = None,
) -> int:
    """Write the iDE zip of one scan to ``path`` and return its size in bytes.

    Entries live under ``<rx_id>/``. With ``size`` the STL models are padded with triangles
    so that the archive comes out at roughly that many bytes.
    """
    small = _small_files(rx_id, version, orthodontic, order or {})
    names = stl_names(stl_count)
    triangles = len(_TETRAHEDRON)
    if size and names:
        budget = size - sum(len(data) for data in small.values())
        budget -= _ZIP_ENTRY_OVERHEAD * (len(small) + len(names))
        per_model = budget // len(names)
        triangles = max(triangles, (per_model - STL_HEADER_SIZE) // STL_TRIANGLE_SIZE)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in names:
            info = zipfile.ZipInfo(f"{rx_id}/{name}", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = stl_size(triangles)  # lets zipfile pick ZIP64 headers when needed
            with archive.open(info, "w") as out:
                write_stl(out, triangles, f"{rx_id} {name} v{version}")  # type: ignore[arg-type]
        for name, data in small.items():
            archive.writestr(f"{rx_id}/{name}", data)
    return Path(path).stat().st_size


def build_thumbnails_zip(path: str | Path, rx_id: str) -> int:
    """Write the thumbnails zip (six JPEG pictures of the model) and return its size."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(1, THUMBNAIL_COUNT + 1):
            archive.writestr(f"{index}.jpg", tiny_jpeg(f"{rx_id} {index}"))
    return Path(path).stat().st_size


def build_screenshots_zip(path: str | Path, rx_id: str = "", count: int = 0) -> int:
    """Write the screen captures zip (``count`` JPEG pictures; empty when none were taken)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(1, count + 1):
            archive.writestr(f"screenshot_{index}.jpg", tiny_jpeg(f"{rx_id} capture {index}"))
    return Path(path).stat().st_size


def build_asset(
    path: str | Path,
    asset_type: str,
    rx_id: str,
    *,
    stl_count: int = 2,
    size: int | None = None,
    version: int = 1,
    order: Mapping[str, Any] | None = None,
    screenshots: int = 0,
) -> int:
    """Write the archive of one download asset type and return its size."""
    order = order or {}
    if asset_type == "ide":
        orthodontic = str(order.get("caseType", "Orthodontic")).lower().startswith("ortho")
        return build_scan_zip(
            path, rx_id, stl_count, size, orthodontic, version=version, order=order
        )
    if asset_type == "thumbnails":
        return build_thumbnails_zip(path, rx_id)
    if asset_type == "screenshots":
        return build_screenshots_zip(path, rx_id, screenshots)
    raise ValueError(f"unknown asset type {asset_type!r}")
