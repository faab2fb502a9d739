"""A folder of images: flat (no labels) or one subfolder per class (labels are sorted folder names); the images
themselves are read by ``photos`` (sizes, modes) and ``image_cache``."""

from __future__ import annotations

from pathlib import Path

from vaekit.errors import VaekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    """The image files in ``folder`` (and its subfolders when ``recursive``), sorted; hidden files and anything
    under a hidden folder (.thumbs, .git), at any depth, are left out."""
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in files
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _list(folder: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image paths, their class indices and the class names (None, None for a flat folder)."""
    flat = _images_in(folder, recursive=False)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {d.name: _images_in(d, recursive=True) for d in subdirs}
    per_class = {k: v for k, v in per_class.items() if v}
    if flat and per_class:
        raise VaekitError(
            f"{folder}: mixes images at the top level with class subfolders ({', '.join(per_class)}); use one layout"
        )
    if flat:
        return flat, None, None
    if not per_class:
        raise VaekitError(f"{folder}: no IDX files and no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    classes = list(per_class)
    files = [p for c in classes for p in per_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in per_class[c]]
    return files, labels, classes
