"""Test images: real JPEG and PNG bytes made with Pillow, as data URLs."""

from __future__ import annotations

import base64
import io

from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (120, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 220, 255)).save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(content: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def jpeg_data_url(size: tuple[int, int] = (120, 80)) -> str:
    return data_url(image_bytes("JPEG", size))
