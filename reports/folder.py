"""One run folder read as untrusted input: regular files and folders only, never a link.

``scan`` lists a folder without following anything (``lstat``) and raises ``Refused`` with a
reason naming the first symbolic link, special file (FIFO, socket, device) or name with a
control character it meets; ``open_file`` opens a listed file component by component with
``O_NOFOLLOW``, so a link put in place after the scan is not followed either.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Unicode categories refused in names: controls, format (bidi overrides), line and
#: paragraph separators, and surrogates (bytes that are not UTF-8).
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_DIR_FLAGS = _FLAGS | getattr(os, "O_DIRECTORY", 0)
_FILE_FLAGS = _FLAGS | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
_AT = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


class Refused(ValueError):
    """A run folder or file that is not read; the message is the reason shown in the report."""


@dataclass(frozen=True)
class Listing:
    """The regular files (``a/b.csv``) and folders of a run folder, in manifest order."""

    files: list[str] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)

    def find(self, name: object) -> str | None:
        """The listed path an artifact name refers to; None outside the folder or absent."""
        if not isinstance(name, str) or not name or unsafe(name) or name.startswith("/"):
            return None
        path = posixpath.normpath(name)
        if path == ".." or path.startswith("../"):
            return None
        return path if path in self.folders or path in self.files else None


def unsafe(name: str) -> bool:
    """True when a name holds a character that could forge a line or hide text."""
    return any(unicodedata.category(c) in _UNSAFE for c in name)


def shown(name: str) -> str:
    """A name as the report may print it: unsafe characters as escapes (``\\n``, ``\\x1b``)."""
    return "".join(ascii(c)[1:-1] if unicodedata.category(c) in _UNSAFE else c for c in name)


def refuse_name(name: str, where: str) -> None:
    """``Refused`` when a file or folder name has an unsafe character."""
    if unsafe(name):
        raise Refused(f"{where} '{shown(name)}' has a control character (names must be printable)")


def scan(folder: Path) -> Listing:
    """Every regular file and folder under ``folder``; ``Refused`` at a link or unsafe name.

    Files of a folder come first, then its sub-folders, each sorted (the manifest's order).
    """
    listing = Listing()
    stack = [(folder, "")]
    while stack:  # depth first, without recursion: a folder may nest deeply
        path, prefix = stack.pop()
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        below = []
        for entry in entries:
            rel = prefix + entry.name
            refuse_name(entry.name, "file name")
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                raise Refused(f"{rel} is a symbolic link (not followed)")
            if stat.S_ISDIR(mode):
                below.append((Path(entry.path), f"{rel}/"))
                listing.folders.add(rel)
            elif stat.S_ISREG(mode):
                listing.files.append(rel)
            else:
                raise Refused(f"{rel} is not a regular file (not followed)")
        stack.extend(reversed(below))
    return listing


def _open_fd(folder: Path, rel: str) -> int:
    parts = rel.split("/")
    if not _AT:  # no openat: check the last component, then open
        path = folder.joinpath(*parts)
        if path.is_symlink():
            raise Refused(f"{rel} is a symbolic link (not followed)")
        return os.open(path, _FILE_FLAGS)
    fd = os.open(folder, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


@contextmanager
def open_file(folder: Path, rel: str) -> Iterator[io.BufferedReader]:
    """A listed file for reading, opened without following any link on the way.

    ``OSError`` when a link is there now, ``Refused`` when it is no regular file any more.
    """
    fh = os.fdopen(_open_fd(folder, rel), "rb")
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise Refused(f"{rel} is not a regular file (not followed)")
        yield fh


def read_bytes(folder: Path, rel: str) -> bytes:
    """A listed file's bytes, read without following any link."""
    with open_file(folder, rel) as fh:
        return fh.read()


def sha256(folder: Path, rel: str) -> tuple[int, str]:
    """Size and SHA-256 of a listed file, from the bytes read."""
    with open_file(folder, rel) as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return fh.tell(), digest.hexdigest()


__all__ = [
    "Refused",
    "Listing",
    "scan",
    "open_file",
    "read_bytes",
    "sha256",
    "unsafe",
    "shown",
    "refuse_name",
]
