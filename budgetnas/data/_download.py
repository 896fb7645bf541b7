"""Download Fashion-MNIST's four IDX files, checking each one before it is kept."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from budgetnas.errors import DataError

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# name -> (size, sha256) of the *decompressed* file. The gzip bytes are not compared because
# mirrors recompress them (Debian's dataset-fashion-mnist drops the file name from the gzip header,
# 24 bytes shorter than upstream's); the decompressed IDX bytes are the same everywhere.
# Measured on Debian's files (/usr/share/datasets/fashion-mnist, 2024), whose sizes match the IDX
# headers (16 + 60000 * 784 bytes, ...).
FASHION_MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte.gz": (
        47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte.gz": (
        60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte.gz": (
        7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}  # fmt: skip

_CHUNK = 1 << 20


def _content_digest(path: Path) -> tuple[int, str]:
    """(size, sha256) of the file's content, gunzipped when it is gzip."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if gz else raw
        try:
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error):
            return -1, "damaged gzip"
    return size, h.hexdigest()


def _download_files(
    dest: str | os.PathLike[str], base_url: str, files: dict[str, tuple[int, str]], *, what: str
) -> Path:
    """Fetch ``base_url + name`` into ``dest``, verify (size, sha256), then keep it or raise."""
    folder = Path(dest).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder}: {exc}; pass a writable folder as dest") from exc
    base = base_url if base_url.endswith("/") else base_url + "/"
    for name, (size, sha) in files.items():
        target = folder / name
        if target.is_file() and _content_digest(target) == (size, sha):
            continue  # already here and intact
        url = base + name
        part = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"could not download {url} ({reason}). Check the connection or pass base_url= "
                f"a mirror; {what}"
            ) from exc
        got = _content_digest(part)
        if got != (size, sha):
            part.unlink(missing_ok=True)
            detail = got[1] if got[0] < 0 else f"{got[0]} bytes, sha256 {got[1][:12]}..."
            raise DataError(
                f"{url} is not the expected file: got {detail}, expected {size} bytes with "
                f"sha256 {sha[:12]}... (decompressed). The download is damaged or the mirror "
                f"serves other data; try again or another base_url. {what}"
            )
        os.replace(part, target)
    return folder


def download_fashion_mnist(
    dest: str | os.PathLike[str], *, base_url: str = FASHION_MNIST_URL
) -> Path:
    """Download Fashion-MNIST's four ``*-ubyte.gz`` files into ``dest`` and return ``dest``.

    Each file is checked (decompressed size and sha256) before it replaces anything; intact files
    already in ``dest`` are not fetched again. Then ``load_dataset("fashion-mnist", root=dest)``.

    Example:
        >>> folder = download_fashion_mnist("~/data/fashion-mnist")  # doctest: +SKIP
        >>> splits = load_dataset("fashion-mnist", root=folder)  # doctest: +SKIP
    """
    return _download_files(
        dest,
        base_url,
        FASHION_MNIST_FILES,
        what="offline, `apt-get install dataset-fashion-mnist` installs the same files",
    )
