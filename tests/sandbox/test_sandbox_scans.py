"""Scan archives built without a server: STL models, the Rx PDF, thumbnails, target sizes."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import pytest

from align_integration.testing.sandbox import build_scan_zip
from align_integration.testing.sandbox.scans import (
    build_asset,
    stl_size,
    tiny_jpeg,
    tiny_pdf,
    write_stl,
)


def test_build_scan_zip_layout(tmp_path: Path) -> None:
    path = tmp_path / "scan.zip"
    size = build_scan_zip(path, "RX-1", stl_count=3)
    assert size == path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[:3] == ["RX-1/upper.stl", "RX-1/lower.stl", "RX-1/model_3.stl"]
        assert {"RX-1/scan_v50.xml", "RX-1/rx.html", "RX-1/rx.pdf"} <= set(names)
        assert len([n for n in names if n.startswith("RX-1/thumbnails/")]) == 6
        upper = archive.read("RX-1/upper.stl")
    (count,) = struct.unpack("<I", upper[80:84])
    assert count == 4 and len(upper) == stl_size(4)
    # Each triangle: a unit normal, three vertices, a zero attribute count.
    normal = struct.unpack("<3f", upper[84:96])
    assert sum(c * c for c in normal) == pytest.approx(1.0)
    assert struct.unpack("<H", upper[84 + 48 : 84 + 50]) == (0,)


def test_restorative_has_no_thumbnails(tmp_path: Path) -> None:
    build_scan_zip(tmp_path / "r.zip", "RX-2", orthodontic=False)
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        assert not any("thumbnails" in name for name in archive.namelist())


@pytest.mark.parametrize("target", [200_000, 5 * 1024 * 1024])
def test_size_is_roughly_met(tmp_path: Path, target: int) -> None:
    size = build_scan_zip(tmp_path / "big.zip", "RX-3", size=target)
    assert abs(size - target) < max(2_000, target * 0.01)


def test_write_stl_pads_with_whole_triangles() -> None:
    out = io.BytesIO()
    write_stl(out, 50_007)
    data = out.getvalue()
    assert len(data) == stl_size(50_007)
    assert struct.unpack("<I", data[80:84]) == (50_007,)


def test_tiny_pdf_is_well_formed() -> None:
    pdf = tiny_pdf("Rx (RX-1) \\ v1")
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    xref_at = int(re.search(rb"startxref\n(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[xref_at:].startswith(b"xref")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", pdf)]
    assert [pdf[o:].split(b" ", 1)[0] for o in offsets] == [b"1", b"2", b"3", b"4", b"5"]


def test_tiny_jpeg_decodes() -> None:
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.open(io.BytesIO(tiny_jpeg("1")))
    image.load()
    assert image.size == (8, 8)


def test_build_asset_rejects_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_asset(tmp_path / "x.zip", "movie", "RX-1")
