"""Image folders: one subfolder per class, read with Pillow."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas._files import stale_temporaries, write_atomic
from budgetnas.data._arrays import _check_classes
from budgetnas.data._tensor import aspect_changes
from budgetnas.data._types import ImageData
from budgetnas.errors import DataError, user_stacklevel

log = logging.getLogger("budgetnas")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                    ".pgm", ".ppm")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_IGNORED_DIRS = {"__MACOSX", "@eaDir"}  # macOS zip/tar resource forks; Synology NAS thumbnails
# Image formats Pillow does not read by default: counted in a warning (other files, notes.txt or
# labels.csv, are left alone silently).
_UNREAD_IMAGE_EXTENSIONS = {".heic", ".heif", ".avif", ".svg", ".raw", ".dng", ".cr2", ".nef", ".arw",
                            ".psd", ".exr", ".hdr", ".dcm", ".dicom", ".nii", ".jxl"}


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_DIRS


def _is_image(name: str) -> bool:
    return not _is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = size
        ok = all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in (h, w)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(
            f"size must be (height, width) in pixels (or one int for a square), got {size!r}; "
            "e.g. size=(32, 32)"
        )
    return int(h), int(w)


def _gray_array(im: Any) -> np.ndarray:
    """(H, W) from any single-channel Pillow mode: uint8 for 8-bit and 1-bit images (alpha, if
    any, composited onto black), float32 in [0, 1] (the fraction of 16-bit full scale, as uint8 /
    255) for integer modes wider than 8 bits ("I;16*", "I"), so that 12- and 16-bit images
    (microscopy, medical) keep their precision, and float32 as stored for float ("F") images, as
    float arrays are read. The scale depends on the mode only, never on an image's own values, so
    a pixel value means the same in a dark image as in a bright one."""
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"))
    if im.mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"), dtype=np.uint16)
        return ((la[..., 0] * la[..., 1] + 127) // 255).astype(np.uint8)
    a = np.asarray(im)
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError("the float image holds NaN or infinite pixel values")
        return a
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo < 0 or hi > 65535:
        # (a 32-bit "I" image beyond 16 bits was clipped unsaid: a class of 100000..150000 became one
        # constant white image, review E, 2026-12-07)
        raise ValueError(f"its integer pixels (mode {im.mode}) range from {lo} to {hi}, beyond 0..65535 (16 bits), "
                         "where they would be clipped; scale the images into 16 bits, or give them as a .npz of floats")
    return (a / 65535.0).astype(np.float32)


def _fit(a: np.ndarray, box: int | None) -> np.ndarray:
    """``a`` shrunk (aspect ratio kept) so that its longer side is at most ``box`` pixels."""
    h, w = a.shape[:2]
    if box is None or max(h, w) <= box:
        return a
    scale = box / max(h, w)
    return _resize(a, (max(1, round(h * scale)), max(1, round(w * scale))))


def _decode(
    path: str, want: str | None, box: int | None = None, target: tuple[int, int] | None = None,
    narrowed: list[str] | None = None, stretched: list[str] | None = None,
) -> np.ndarray | str:
    """(H, W) or (H, W, 3) array (uint8, or float32 for 16-bit and float images), upright as its
    EXIF orientation says, resized to ``target`` = (height, width) when given, else shrunk to fit
    ``box``, or the reason it could not be read. A target is reached in one resize, never by
    fitting the longer side first (which would then stretch the shorter side back up). A 16-bit
    colour file, which Pillow reads at 8 bits a channel (its top byte), is added to ``narrowed``;
    one of another aspect ratio than ``target``, stretched to it, to ``stretched``."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            if narrowed is not None and im.mode in ("RGB", "RGBA") and any(
                    ";16" in str(getattr(t, "args", "")) for t in im.tile):  # (rawmode RGB;16B: read only before load)
                narrowed.append(path)
            if box is not None:
                im.draft(None, (box, box))  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still >= box
            im.load()
            up = ImageOps.exif_transpose(im)
            if stretched is not None and target is not None and aspect_changes((up.height, up.width), target):
                stretched.append(f"{path}, {up.height}x{up.width}")
            return pil_pixels(up, want, lambda a: _shrink(a, box, target))
    except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped and reported once
        return f"{type(exc).__name__}: {exc}"


def pil_pixels(im: Any, want: str | None, fit: Any = None) -> np.ndarray:
    """A Pillow image's pixels as image folders are read: (H, W) for gray modes (see
    :func:`_gray_array`), else (H, W, 3) uint8 with transparent parts composited onto black;
    ``want`` "L" or "RGB" converts to one channel or three. ``fit`` (an array -> array resize) runs
    before gray pixels are repeated to three channels, as the folder reader always did."""
    from PIL import Image

    fit = fit or (lambda a: a)
    if im.mode in _GRAY_MODES:
        a = fit(_gray_array(im))
        return a if want != "RGB" else np.repeat(a[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "RGBa", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)  # transparent parts onto black
        a = ((rgba[..., :3] * rgba[..., 3:] + 127) // 255).astype(np.uint8)
    else:
        a = np.asarray(im.convert("RGB"))
    if want == "L":
        a = np.asarray(Image.fromarray(a).convert("L"))
    return fit(a)


def _shrink(a: np.ndarray, box: int | None, target: tuple[int, int] | None) -> np.ndarray:
    if target is not None:
        return a if a.shape[:2] == target else _resize(a, target)
    return _fit(a, box)


def _resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if a.ndim == 3 and a.dtype != np.uint8:  # (16-bit gray repeated to 3 channels: Pillow has no 3-channel
        # float mode, and load_image_folder(grayscale=False) of mixed sizes raised TypeError: a review, 2026-12-07)
        return np.stack([_resize(a[..., c], hw) for c in range(a.shape[2])], axis=2)
    h, w = hw
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR))


def _nfc(name: str) -> str:
    """A folder name in Unicode's composed form: macOS writes "é" as "e" plus an accent (NFD), most
    other systems as one character (NFC), so one class's folder can be spelled both ways."""
    return unicodedata.normalize("NFC", name)


def _list_files(
    root: Path, class_names: Sequence[str], folders: dict[str, str] | None = None
) -> tuple[list[tuple[str, int]], Counter[str]]:
    """The image files under each class folder, and the extensions of image files in formats
    that are not read (skipped, and counted for a warning)."""
    files: list[tuple[str, int]] = []
    others: Counter[str] = Counter()
    for label, cname in enumerate(class_names):
        folder = root / (folders or {}).get(cname, cname)
        if not folder.is_dir():
            continue
        seen = {os.path.realpath(folder)}  # symlinked subfolders are followed, each once (no loops)
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            keep = []
            for d in sorted(d for d in dirnames if not _is_hidden(d)):
                real = os.path.realpath(os.path.join(dirpath, d))
                if real not in seen:
                    seen.add(real)
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                if _is_image(f):
                    files.append((os.path.join(dirpath, f), label))
                elif os.path.splitext(f)[1].lower() in _UNREAD_IMAGE_EXTENSIONS:
                    others[os.path.splitext(f)[1].lower()] += 1
    return files, others


def _common_size(counts: Counter[tuple[int, int]]) -> tuple[tuple[int, int], str]:
    """The size mixed-size images are resized to: the most common one when more than half the
    images have it, else the median height and width (never simply the largest image)."""
    total = sum(counts.values())
    top, n = max(counts.items(), key=lambda kv: (kv[1], -abs(kv[0][0] * kv[0][1])))
    if 2 * n > total:
        return top, "the most common size"
    hs = np.repeat([s[0] for s in counts], list(counts.values()))
    ws = np.repeat([s[1] for s in counts], list(counts.values()))
    return (int(np.median(hs)), int(np.median(ws))), "the median height and width"


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | int | None = None,
    grayscale: bool | None = None,
    classes: Sequence[str] | None = None,
    max_side: int | None = None,
) -> ImageData:
    """Read ``path/<class>/<image>`` files (JPEG, PNG, BMP, GIF, WebP, TIFF, PGM/PPM) into ImageData.

    Classes are the sorted subfolder names (or ``classes``, e.g. the training set's when reading
    its test folder; a subfolder that is not among them is refused if it holds images and left
    out if it holds none). Hidden files are ignored; files that cannot be decoded are skipped and
    reported in one warning, as are image files in formats that are not read (HEIC, RAW...;
    other files, such as a labels.csv, are left alone). Images are
    turned upright as their EXIF orientation says; transparent parts are composited onto black.
    ``max_side`` shrinks every image whose longer side is larger (aspect ratio kept) while it is
    decoded, so a folder of photos does not fill the memory at full size (a search passes twice
    its resolution). Images are resized to ``size`` = (height, width) when given (in one step
    while decoded, so a non-square image keeps all the detail that size can hold), else, when
    their sizes differ, to the most common size or the median one (with a warning); with
    ``classes`` too (a folder read like another, as a test folder like its training folder),
    images of another aspect ratio than ``size``, which are stretched to it, are warned of.
    ``grayscale=None`` gives one channel when every image is grayscale and RGB otherwise;
    True/False force one or three channels. The decoded arrays are kept in ``$BUDGETNAS_CACHE``
    and read back while no image file changed (:class:`_FolderCache`). Pixels are uint8, or float32 in [0, 1] (the same
    units) when a folder holds 16-bit or 32-bit integer images (the fraction of 16-bit full
    scale, decided by the file's mode, never by its own values); float TIFFs are read as stored.

    Example:
        >>> d = load_image_folder("flowers/", size=(64, 64))  # doctest: +SKIP
        >>> d.shape  # doctest: +SKIP
        (3, 64, 64)
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"no such folder: {root}; check the path")
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a folder; load_image_folder reads a folder with one subfolder "
            "per class (e.g. root/cat/1.jpg). For an archive or a data file use load_dataset(path)"
        )
    hw = _check_size(size)
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                 or max_side < 1):
        raise DataError(f"max_side must be a positive number of pixels or None, got {max_side!r}")
    box = max(hw) if hw is not None else (int(max_side) if max_side is not None else None)
    if grayscale not in (None, True, False):
        raise DataError(f"grayscale must be None, True or False, got {grayscale!r}")
    want = None if grayscale is None else ("L" if grayscale else "RGB")
    subdirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name))
    spellings: dict[str, list[str]] = {}
    for d in subdirs:
        spellings.setdefault(_nfc(d), []).append(d)
    twins = [names for names in spellings.values() if len(names) > 1]
    if twins:
        raise DataError(
            f"{root} has folders {twins[0]} whose names differ only in how an accent is encoded "
            "(Unicode NFC vs NFD, e.g. copied from macOS and from another system): they would be "
            "two classes; move the images of one into the other and delete it"
        )
    folders: dict[str, str] = {}

    if classes is not None:
        class_names = list(_check_classes(classes))
        # The given classes (the training folder's names) match folders however each spells its
        # accents, so a test folder copied from another system lines up with train/.
        by_form = {_nfc(c): c for c in class_names}
        folders = {by_form[_nfc(d)]: d for d in subdirs if _nfc(d) in by_form}
        unknown = [d for d in subdirs if _nfc(d) not in by_form]
        # A folder with no image files (a placeholder, or a class the training set dropped for
        # having no images) holds nothing to label: leave it out rather than refuse the folder.
        unknown = [d for d in unknown if _list_files(root, [d])[0]]
        if unknown:
            raise DataError(
                f"{root} has folder(s) {unknown[:5]} that are not among the given classes "
                f"{tuple(class_names)}"
                + (" (names differ from them in case only: rename them to match)"
                   if {u.lower() for u in unknown} & {c.lower() for c in class_names} else "")
                + "; move them out of this folder, or give the training data a class folder of each name"
            )
    else:
        if not subdirs:
            loose = sum(1 for f in root.iterdir() if f.is_file() and _is_image(f.name))
            found = f" (it holds {loose} images directly)" if loose else ""
            raise DataError(
                f"no class subfolders in {root}{found}; put each class's images in its own "
                f"subfolder, e.g. {root / 'cat' / '001.jpg'} and {root / 'dog' / '001.jpg'}"
            )
        if len(subdirs) < 2:
            # (an archive unpacked into a folder of its name, data/mydata/{train,test}/..., was told
            # to add classes, though the same layout as a .tar.gz was read: a user review, 2026-12-06)
            inner = root / subdirs[0]
            deeper = sorted(e.name for e in inner.iterdir() if e.is_dir() and not _is_hidden(e.name))
            if len(deeper) >= 2:
                raise DataError(
                    f"{root} holds one folder, {subdirs[0]!r}, which holds {', '.join(deeper[:5])}"
                    f"{', ...' if len(deeper) > 5 else ''}: if those are the classes (or train/ and test/ "
                    f"folders of them), give {inner} as the data")
            raise DataError(
                f"found a single class {subdirs[0]!r} in {root}; a classifier needs at least two: "
                "add a subfolder of images for each other class"
            )
        class_names = subdirs
        _warn_nested_splits(root, class_names)

    files, others = _list_files(root, class_names, folders)
    if not files:
        seen = f" (it holds {sum(others.values())} {', '.join(sorted(others)[:6])} files)" if others else ""
        raise DataError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {root}{seen}; "
            "check the path and the file extensions, or convert the images to JPEG or PNG"
        )
    if others:
        warnings.warn(
            f"ignored {sum(others.values())} image file(s) in the class folders of {root} in formats "
            f"that are not read ({', '.join(f'{e}: {n}' for e, n in others.most_common(6))}); "
            "convert them to JPEG or PNG to use them",
            stacklevel=user_stacklevel(),
        )
    loose = [f.name for f in root.iterdir() if f.is_file() and _is_image(f.name)]
    if loose:
        warnings.warn(
            f"ignored {len(loose)} image(s) directly in {root} (e.g. {loose[0]}): they are in no "
            "class folder, so they have no label; move them into one",
            stacklevel=user_stacklevel(),
        )
    # Decoded once: a resumed search, another worker or the final training reads the arrays back
    # from the cache (CIFAR-10's 60,000 JPEGs: 17 s to decode on 2 cores, 2026-12-07) while no
    # file was added, removed or changed (by name, size, inode, modification or change time).
    cached = _FolderCache.at(root, files, (want, box, hw, tuple(class_names), classes is None))
    hit = cached.read() if cached is not None else None
    if hit is not None:
        data, replay = hit
        for note in replay:  # what decoding the folder warned of, as each time it was decoded
            warnings.warn(note, UserWarning, stacklevel=user_stacklevel())
        return data
    notes: list[str] = []
    try:
        data, failed = _decode_folder(root, files, want, box, hw, class_names, classes, notes)
    finally:  # (also before a DataError)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=user_stacklevel())
    if cached is not None and not failed:
        # (a file that could not be read may be read later: fixed permissions, a larger
        # PIL.Image.MAX_IMAGE_PIXELS, a network drive back; it is tried every time)
        cached.write(data, notes)
    return data


FOLDER_CACHE_VERSION = "3"  # bump when a folder's decoded arrays (or their notes) would come out otherwise
FOLDER_CACHE_MAX_BYTES = 16 << 30  # a folder decoded larger than this is not cached
FOLDER_CACHE_TOTAL_BYTES = 32 << 30  # past this, the least recently used folders' files are removed


class _FolderCache:
    """A folder's decoded arrays, kept in ``<cache>/folders/`` (``$BUDGETNAS_CACHE``, default
    ``~/.cache/budgetnas``; ``BUDGETNAS_FOLDER_CACHE=off`` reads every folder afresh): one file per
    folder and reading options, used while its key (every image file's path, class, size, inode,
    modification and change times, and the Pillow version) is unchanged, replaced when it changes;
    past FOLDER_CACHE_TOTAL_BYTES the least recently used files are removed. Reading or writing it never fails
    a load: a cache that cannot be read is decoded again, one that cannot be written is skipped."""

    def __init__(self, path: Path, key: str, name: str, newest: int, started: int) -> None:
        self.path, self.key, self.name, self.newest, self.started = path, key, name, newest, started

    @classmethod
    def at(cls, root: Path, files: list[tuple[str, int]], options: tuple) -> "_FolderCache | None":
        if os.environ.get("BUDGETNAS_FOLDER_CACHE", "").strip().lower() in ("0", "off", "no", "false"):
            return None
        from PIL import Image, __version__ as pillow

        from budgetnas.data._datasets import cache_root

        try:
            started = time.time_ns()
            options = (*options, pillow)  # (another Pillow may decode otherwise)
            real = os.path.realpath(root)
            place = hashlib.blake2b(f"{FOLDER_CACHE_VERSION}\0{real}\0{options!r}".encode("utf-8", "surrogateescape"),
                                    digest_size=8)
            key = hashlib.blake2b(f"{FOLDER_CACHE_VERSION}\0{options!r}\0{Image.MAX_IMAGE_PIXELS}".encode(),
                                  digest_size=16)
            prefix = str(root) + os.sep
            newest = 0
            for fpath, label in files:
                st = os.stat(fpath)
                newest = max(newest, st.st_mtime_ns)
                rel = fpath[len(prefix):] if fpath.startswith(prefix) else fpath
                # (the inode and change time too: a copy that kept size and mtime, cp -p or rsync of a
                # same-size BMP, an EXIF tag edited with its mtime kept, changes its ctime)
                key.update(f"\0{rel}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
                           f"\0{st.st_dev}".encode("utf-8", "surrogateescape"))
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(real))[:40] or "folder"
            return cls(cache_root() / "folders" / f"{stem}-{place.hexdigest()}.npz", key.hexdigest(), root.name,
                       newest, started)
        except Exception as exc:  # noqa: BLE001 - (a file gone meanwhile: decoding reports it; no home folder)
            log.debug("no folder cache for %s: %s", root, exc)
            return None

    def read(self) -> tuple[ImageData, list[str]] | None:
        """The cached data and the warnings its decoding gave, or None (absent, stale, unreadable)."""
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["key"]) != self.key:
                    return None
                data = ImageData(z["images"], z["labels"], tuple(str(c) for c in z["classes"]), self.name)
                notes = [str(n) for n in z["notes"]]
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: decode again, replace it
            log.debug("folder cache %s not used: %s", self.path, exc)
            return None
        log.debug("read %s from the folder cache %s", self.name, self.path)
        with contextlib.suppress(OSError):  # (used now: the last to be evicted; a read-only cache stays as it is)
            os.utime(self.path)
        return data, notes

    def write(self, data: ImageData, notes: list[str]) -> None:
        if data.images.nbytes > FOLDER_CACHE_MAX_BYTES or self.newest > self.started - 2_000_000_000:
            # (a file changed in the 2 s before its time was read may change again within its clock
            # tick, keeping its times: the folder is still being written, so it is not cached yet)
            return
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for stale in stale_temporaries(folder):  # a killed process's half-written cache
                stale.unlink(missing_ok=True)
            if shutil.disk_usage(folder).free < 2 * data.images.nbytes + (1 << 30):
                return  # (never the reason a disk fills up)
            write_atomic(self.path, lambda f: np.savez(
                f, key=np.array(self.key), images=data.images, labels=data.labels,
                classes=np.array(data.classes, dtype=str), notes=np.array(notes, dtype=str)))
        except OSError as exc:
            log.debug("folder cache %s not written: %s", self.path, exc)
            return
        _evict(folder, keep=self.path)


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used folder caches in ``folder`` (a read touches its file) until
    they take at most FOLDER_CACHE_TOTAL_BYTES, never ``keep``: the cache grew for ever, one file per
    folder, size and cache version a user ever read (CIFAR-10 at 32 px: 180 MB each)."""
    files: list[tuple[int, int, Path]] = []
    for f in folder.glob("*.npz"):
        with contextlib.suppress(OSError):  # (removed meanwhile by another process)
            st = f.stat()
            files.append((st.st_mtime_ns, st.st_size, f))
    total = sum(size for _, size, _ in files)
    for _, size, f in sorted(files):
        if total <= FOLDER_CACHE_TOTAL_BYTES:
            break
        if f != keep:
            with contextlib.suppress(OSError):
                f.unlink()
                log.info("removed the least recently used folder cache %s (%d MB)", f, size >> 20)
            total -= size


def _decode_folder(root: Path, files: list[tuple[str, int]], want: str | None, box: int | None,
                   hw: tuple[int, int] | None, class_names: list[str], classes: Sequence[str] | None,
                   notes: list[str]) -> tuple[ImageData, int]:
    """The listed files decoded into ImageData (the slow part of reading a folder), and how many
    could not be read; what to warn of goes to ``notes`` (:func:`load_image_folder` warns)."""
    # Sequential on purpose: for small images (CIFAR's 32x32: ~0.12 ms each, 10,000 in 1.2 s on
    # 2 CPU cores, 2026-11) Pillow's Python-side overhead dominates and a thread pool was slower.
    narrowed: list[str] = []
    stretched: list[str] = []
    decoded = [_decode(f, want, box, hw, narrowed, stretched) for f, _ in files]
    if stretched and hw is not None and classes is not None:  # (read like another folder; a size asked for alone: silent)
        # (a test folder of 48x24 images beside 24x48 training ones was stretched unsaid, where a
        # .npz's and the API's test images of another size are warned of: review E, 2026-12-07)
        notes.append(f"{len(stretched)} of the {len(files)} images in {root} (e.g. {stretched[0]}) have another "
                     f"aspect ratio than {hw[0]}x{hw[1]}, the size they are read at (a test or validation folder: "
                     "the training images'), and are stretched to it; if they are other data, accuracy may suffer")
    if narrowed:  # (the README said 16-bit images keep their precision: gray ones do: a review, 2026-12-07)
        notes.append(f"{len(narrowed)} of the {len(files)} images (e.g. {narrowed[0]}) are 16-bit colour, which "
                     "Pillow reads at 8 bits a channel (its top byte): their finer levels are lost. 16-bit gray "
                     "images keep them; for colour, give the pixels as a .npz of floats scaled to 0..1")

    arrays: list[np.ndarray] = []
    labels: list[int] = []
    failed: list[tuple[str, str]] = []
    for (fpath, label), a in zip(files, decoded):
        if isinstance(a, str):
            failed.append((fpath, a))
        else:
            arrays.append(a)
            labels.append(label)
    if failed:
        example, reason = failed[0]
        bombs = [f for f, r in failed if r.startswith("DecompressionBombError")]
        notes.append(
            f"skipped {len(failed)} of {len(files)} files that could not be read, e.g. "
            f"{example} ({reason}); delete or replace them"
            + (f". {len(bombs)} of them (e.g. {bombs[0]}) are larger than Pillow reads by default "
               "(its guard against decompression bombs): shrink them, or, if you trust them, raise "
               "PIL.Image.MAX_IMAGE_PIXELS in Python before loading" if bombs else ""))
    if not arrays:
        raise DataError(
            f"none of the {len(files)} image files in {root} could be read; "
            "check that they are valid images"
        )

    class_names, labels_arr = _drop_empty_classes(root, class_names, np.asarray(labels), classes, notes)

    counts = Counter(a.shape[:2] for a in arrays)
    if hw is None and len(counts) > 1:
        hw, which = _common_size(counts)
        n_resized = len(arrays) - counts.get(hw, 0)
        notes.append(
            f"images in {root} have {len(counts)} different sizes"
            + (f" (after shrinking to at most {box} pixels a side)" if box is not None else "")
            + f"; resized {n_resized} of {len(arrays)} to {hw[0]}x{hw[1]} ({which})"
            + (", which changes the aspect ratio of some" if any(aspect_changes(c, hw) for c in counts) else "")
            + ". A search then resizes "
            "them to its --resolution; in Python, load_image_folder(..., size=(height, width)) chooses "
            "this size")
    if hw is None:
        hw = next(iter(counts))
    return ImageData(stack_pixels(arrays, want, hw, notes), labels_arr, tuple(class_names), root.name), len(failed)


def stack_pixels(arrays: Sequence[np.ndarray], want: str | None, hw: tuple[int, int],
                 notes: list[str] | None = None) -> np.ndarray:
    """(N, C, H, W) from images as :func:`pil_pixels` reads them, resized to ``hw``: one channel
    when ``want`` is "L" or (None) every image is gray, else three; uint8, or float32 in uint8's
    units (value / 255) as soon as one image is wider than 8 bits, so that no image is read on
    another scale than the rest."""
    channels = 1 if want == "L" or (want is None and all(a.ndim == 2 for a in arrays)) else 3
    wide = any(a.dtype == np.float32 for a in arrays)  # 16-bit images: keep them in [0, 1] floats
    if wide and any(a.dtype == np.uint8 for a in arrays):
        # Float ("F") images are read as stored: where they hold 0..255 beside 8-bit images (read as
        # value / 255), one set holds two scales (a data review, 2026-12-06)
        # (only those beyond 0..1: 16-bit images, read into it, were counted too: review E, 2026-12-07)
        over = [peak for a in arrays if a.dtype == np.float32 and (peak := float(a.max())) > 1.5]
        if over:
            note = (f"{len(over)} float image(s) (e.g. 32-bit float TIFFs) hold values up to {max(over):g}, read "
                    f"as stored, beside {sum(a.dtype == np.uint8 for a in arrays)} 8-bit image(s) read as value / 255 (0..1): "
                    "two scales in one set; convert the float images to 8-bit or scale them to 0..1")
            if notes is None:
                warnings.warn(note, stacklevel=user_stacklevel())
            else:
                notes.append(note)
    out = np.empty((len(arrays), channels, hw[0], hw[1]), np.float32 if wide else np.uint8)
    for i, a in enumerate(arrays):
        if a.shape[:2] != hw:
            a = _resize(a, hw)
        if wide and a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        if a.ndim == 2:
            out[i] = a  # broadcasts gray over 1 or 3 channels
        else:
            out[i] = a.transpose(2, 0, 1)
    return out


def in_one_unit(*images: np.ndarray) -> np.ndarray:
    """Image arrays as read from files (uint8, or float32 in uint8's units for 16-bit ones) joined
    into one: uint8 ones become value / 255 when another is float, as within one folder
    (np.concatenate alone would keep them 0..255 beside floats in [0, 1])."""
    if len({a.dtype for a in images}) > 1:
        images = tuple(a.astype(np.float32) / np.float32(255.0) if a.dtype == np.uint8 else a for a in images)
    return np.concatenate(images)


def _warn_nested_splits(root: Path, class_names: Sequence[str]) -> None:
    """Warn when every "class" folder holds the same subfolders and no images of its own (e.g.
    ``fold1/cat``, ``fold2/cat``): the classes are probably one level deeper."""
    inner: set[tuple[str, ...]] = set()
    grouped: dict[str, tuple[str, ...]] = {}  # class folder -> its subfolders, where it has no images of its own
    for c in class_names:
        entries = [e for e in (root / c).iterdir() if not _is_hidden(e.name)]
        names = tuple(sorted(e.name for e in entries if e.is_dir()))
        if len(names) >= 2 and not any(e.is_file() and _is_image(e.name) for e in entries):
            grouped[c] = names
        inner.add(names)
    if (grouped and len(grouped) < len(class_names)) or (len(inner) > 1 and len(grouped) == len(class_names)):
        # (a hierarchy such as animals/{cat,dog}, vehicles/{car,bus}: each group is one class)
        shown = "; ".join(f"{c}/ holds {', '.join(n[:4])}" for c, n in list(grouped.items())[:3])
        warnings.warn(
            f"{len(grouped)} class folder(s) of {root} hold subfolders and no images of their own ({shown}): "
            "each is read as one class, its subfolders' images merged; if the subfolders are the classes, "
            "move them up one level",
            stacklevel=user_stacklevel(),
        )
        return
    if len(grouped) == len(class_names) and len(inner) == 1:
        warnings.warn(
            f"every class folder of {root} ({', '.join(class_names[:4])}) holds the same subfolders "
            f"({', '.join(next(iter(inner))[:4])}) and no images of its own: the classes are read as "
            f"{list(class_names[:4])}; if the subfolders are the classes, give one of those folders "
            "(or name the split folders train/ and test/)",
            stacklevel=user_stacklevel(),
        )


def _drop_empty_classes(
    root: Path, class_names: list[str], labels: np.ndarray, given: Sequence[str] | None, notes: list[str]
) -> tuple[list[str], np.ndarray]:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if not empty:
        return class_names, labels
    if given is not None:
        notes.append(
            f"class(es) {empty[:5]} have no readable images in {root}; they stay in classes "
            "(as given) with zero samples")
        return class_names, labels
    kept = [c for c, n in zip(class_names, counts) if n > 0]
    if len(kept) < 2:
        raise DataError(
            f"only class {kept[0]!r} in {root} has readable images (folders {empty[:5]} have "
            "none); a classifier needs at least two classes: add images to those folders"
        )
    notes.append(
        f"class folder(s) {empty[:5]} in {root} hold no readable images and were left out; "
        f"{len(kept)} classes remain")
    remap = np.cumsum(counts > 0) - 1
    return kept, remap[labels]
