"""The iTero download archives, built once per (Rx id, version, asset type) and kept on disk.

:class:`ArchiveStore` builds an archive on its first download (concurrent first downloads
build it once) into the sandbox's scratch folder, and serves the same file until the scan's
files change. A large iDE zip is built ahead in the background, so that its first download
need not wait long.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .scans import build_asset

PREBUILD_FROM = 16 * 1024 * 1024  # bytes; smaller archives are built on first download
ArchiveKey = tuple[str, int, str]


@dataclass
class ScanFiles:
    """How the files of one scan are made, and how many downloads still answer 404."""

    stl_count: int
    size: int | None
    not_ready_downloads: int
    screenshots: int = 0


class Spawner(Protocol):
    def spawn(self, work: Callable[[], Any], delay: float = 0.0) -> None: ...


class ArchiveStore:
    """Archives on disk, by (Rx id, version, asset type); see the module docstring."""

    def __init__(self, scratch_dir: Callable[[], Path], background: Spawner) -> None:
        self._scratch_dir = scratch_dir
        self._background = background
        self._lock = threading.Lock()
        self._build_locks: dict[ArchiveKey, threading.Lock] = {}
        self._archives: dict[ArchiveKey, Path] = {}

    def clear(self) -> None:
        with self._lock:
            for path in self._archives.values():
                path.unlink(missing_ok=True)
            self._archives.clear()
            self._build_locks.clear()

    def forget(self, rx_id: str) -> None:
        """The scan's files changed: its archives are built again on next use."""
        with self._lock:
            for key in [key for key in self._archives if key[0] == rx_id]:
                # An open download keeps reading its file: unlinking only removes the name.
                self._archives.pop(key).unlink(missing_ok=True)

    def prebuild(self, rx_id: str, files: ScanFiles, order: dict[str, Any]) -> None:
        """Start building a large iDE zip now, in the background."""
        if files.size and files.size >= PREBUILD_FROM:
            version = int(order["version"])
            self._background.spawn(lambda: self.get(rx_id, version, "ide", files, order))

    def get(
        self, rx_id: str, version: int, asset_type: str, files: ScanFiles, order: dict[str, Any]
    ) -> Path:
        """The archive's path, built on first use."""
        key = (rx_id, version, asset_type)
        with self._lock:
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                built = self._archives.get(key)
            if built is not None and built.exists():
                return built
            safe_rx = re.sub(r"[^A-Za-z0-9_.-]", "_", rx_id)
            target = self._scratch_dir() / f"{safe_rx}-v{version}-{asset_type}.zip"
            partial = target.with_suffix(".part")
            build_asset(
                partial,
                asset_type,
                rx_id,
                stl_count=files.stl_count,
                size=files.size,
                version=version,
                order=order,
                screenshots=files.screenshots,
            )
            os.replace(partial, target)
            with self._lock:
                self._archives[key] = target
            return target
