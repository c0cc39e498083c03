"""Safe extraction: malicious archives are refused whole, with nothing written anywhere;
good ones become CaseAssets of the right kinds, once."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from align_integration.models import CaseAsset, IteroScan
from align_integration.workflows.itero.extraction import (
    UnsafeArchive,
    extract_scan_archive,
    safe_member_name,
)
from tests.itero.helpers import zip_bytes, zip_with_symlink

GOOD = {
    "rx-1/upper.stl": b"solid upper\nendsolid upper\n",
    "rx-1/lower.stl": b"solid lower\nendsolid lower\n",
    "rx-1/model.ply": b"ply\nformat ascii 1.0\nend_header\n",
    "rx-1/rx.pdf": b"%PDF-1.4\n%%EOF\n",
    "rx-1/rx.html": b"<html></html>",
    "rx-1/scan_v50.xml": b"<Scan/>",
    "rx-1/thumbnails/1.jpg": b"\xff\xd8\xff\xd9",
    "rx-1/attachment.dat": b"other",
}


@pytest.fixture
def scan(scan_case: Any) -> IteroScan:
    return IteroScan.objects.create(rx_id="rx-1", revision="v1", case=scan_case)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(tmp_path: Path, data: bytes, name: str = "scan.zip") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_a_good_archive_becomes_assets_once(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    path = write(tmp_path, zip_bytes(GOOD))
    members, created = extract_scan_archive(path, scan)
    assert members == len(GOOD) and len(created) == len(GOOD)
    kinds = sorted(asset.kind for asset in created)
    assert kinds == sorted(
        ["STL", "STL", "PLY", "RXPDF", "RXHTML", "SCANXML", "THUMBNAIL", "SCANFILE"]
    )
    for asset in created:
        assert asset.source == "itero"
        assert asset.source_ref.startswith("rx-1:v1:sha256-")
        assert "upper" not in asset.source_ref and "/" not in asset.source_ref
        assert "upper" not in asset.file.name and "rx-1" not in asset.file.name
        assert asset.file.name.startswith("align_integration/assets/")
        assert asset.size and len(asset.sha256) == 64
    stl = next(a for a in created if a.sha256 == sha256(GOOD["rx-1/upper.stl"]))
    with stl.file.open("rb") as handle:
        assert handle.read() == GOOD["rx-1/upper.stl"]
    # Processing the same revision again adds nothing.
    assert extract_scan_archive(path, scan) == (len(GOOD), [])
    assert CaseAsset.objects.filter(case=scan.case).count() == len(GOOD)


@pytest.mark.parametrize(
    "name",
    [
        "../evil.stl",
        "rx-1/../../evil.stl",
        "/tmp/evil-absolute.stl",
        "C:/evil.stl",
        "..\\..\\evil.stl",
        "\\evil.stl",
    ],
)
def test_path_escapes_are_refused(
    tmp_path: Path, scan: IteroScan, settings: Any, name: str
) -> None:
    target = tmp_path / "extract-root" / "inner"
    target.mkdir(parents=True)
    data = zip_bytes({"rx-1/upper.stl": b"solid a\n", name: b"evil"})
    with pytest.raises(UnsafeArchive):
        extract_scan_archive(write(target, data), scan)
    assert CaseAsset.objects.count() == 0
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert not [p for p in tmp_path.rglob("evil*")]
    assert not os.path.exists("/tmp/evil-absolute.stl")


def test_symlinks_are_refused(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract_scan_archive(write(tmp_path, zip_with_symlink()), scan)
    assert CaseAsset.objects.count() == 0
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_a_zip_bomb_is_refused(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    bomb = zip_bytes({"rx-1/upper.stl": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(UnsafeArchive, match="ratio"):
        extract_scan_archive(write(tmp_path, bomb), scan)
    assert CaseAsset.objects.count() == 0
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_total_uncompressed_size_is_bounded(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {"MAX_UNCOMPRESSED_BYTES": 1000},
    }
    data = zip_bytes({"a.stl": os.urandom(600), "b.stl": os.urandom(600)}, compression=0)
    with pytest.raises(UnsafeArchive, match="expands"):
        extract_scan_archive(write(tmp_path, data), scan)
    assert CaseAsset.objects.count() == 0


def test_too_many_members_are_refused(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "ITERO": {"MAX_ZIP_MEMBERS": 5}}
    data = zip_bytes({f"rx-1/{index}.xml": b"<x/>" for index in range(10)})
    with pytest.raises(UnsafeArchive, match="members"):
        extract_scan_archive(write(tmp_path, data), scan)
    assert CaseAsset.objects.count() == 0


def test_not_a_zip_and_duplicates_are_refused(tmp_path: Path, scan: IteroScan) -> None:
    with pytest.raises(UnsafeArchive, match="not a zip"):
        extract_scan_archive(write(tmp_path, b"<html>maintenance</html>", "a.zip"), scan)
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rx-1/upper.stl", b"one")
        archive.writestr("rx-1/./upper.stl", b"two")
    with pytest.raises(UnsafeArchive, match="twice"):
        extract_scan_archive(str(path), scan)
    assert CaseAsset.objects.count() == 0


def test_a_corrupt_member_keeps_nothing(tmp_path: Path, scan: IteroScan, settings: Any) -> None:
    data = bytearray(
        zip_bytes({"rx-1/a.stl": b"A" * 4000, "rx-1/b.stl": b"B" * 4000}, compression=0)
    )
    spot = data.rfind(b"B" * 100)
    data[spot : spot + 10] = b"C" * 10  # the second member's CRC no longer matches
    with pytest.raises(UnsafeArchive, match="corrupt"):
        extract_scan_archive(write(tmp_path, bytes(data)), scan)
    assert CaseAsset.objects.count() == 0
    assert files_under(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [("rx/./a.stl", "rx/a.stl"), ("rx//a.stl", "rx/a.stl"), ("a\\b.stl", "a/b.stl")],
)
def test_safe_member_names(name: str, safe: str) -> None:
    assert safe_member_name(name) == safe


def test_nul_in_a_name_is_refused() -> None:
    with pytest.raises(UnsafeArchive):
        safe_member_name("a\x00.stl")


# -- inert files, hashed names (issue 13, findings 2 and 3) -------------------------------------
CANARY = ("Testy", "McTestface", "1991-05-02", "05.02.1991", "02051991")
HOSTILE = {
    "Testy_McTestface_1991-05-02/Rx Testy McTestface 05.02.1991.html": (
        b"<html><script>fetch('/admin/').then(r => r.text()).then(alert)</script></html>"
    ),
    "Testy_McTestface_1991-05-02/logo.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/>'
    ),
    "Testy_McTestface_1991-05-02/upper_02051991.STL": b"solid u\nendsolid u\n",
    "Testy_McTestface_1991-05-02/Rx Testy McTestface.pdf": b"%PDF-1.4\n%%EOF\n",
    "Testy_McTestface_1991-05-02/notes.exe": b"MZ",
}


def test_member_names_never_kept_and_only_allowlisted_types_stored_as_such(
    tmp_path: Path, scan: IteroScan, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    members, created = extract_scan_archive(write(tmp_path, zip_bytes(HOSTILE)), scan)
    assert members == len(HOSTILE) == len(created)
    by_content = {asset.sha256: asset for asset in created}
    expected = {  # member -> (kind, extension, content type)
        "Rx Testy McTestface 05.02.1991.html": ("RXHTML", ".bin", "application/octet-stream"),
        "logo.svg": ("SCANFILE", ".bin", "application/octet-stream"),
        "upper_02051991.STL": ("STL", ".stl", "model/stl"),
        "Rx Testy McTestface.pdf": ("RXPDF", ".pdf", "application/pdf"),
        "notes.exe": ("SCANFILE", ".bin", "application/octet-stream"),
    }
    for name, data in HOSTILE.items():
        asset = by_content[sha256(data)]
        kind, extension, content_type = expected[name.rsplit("/", 1)[1]]
        assert (asset.kind, asset.content_type) == (kind, content_type), name
        assert asset.file.name.endswith(extension), asset.file.name
    stored = " ".join(f"{a.source_ref} {a.file.name} {a.external_key}" for a in created)
    logged = " ".join(record.getMessage() for record in caplog.records)
    for value in CANARY:
        assert value not in stored and value not in logged, value
    # The hash still identifies the member: the same revision again adds nothing.
    assert extract_scan_archive(write(tmp_path, zip_bytes(HOSTILE)), scan) == (len(HOSTILE), [])
