"""Did the file arrive intact?  The bytes compared one for one, and the
SHA-256 of each file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20


@dataclass
class Verification:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why not, one line each
    sha256: str | None = None                         # of the output, when it matches


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(CHUNK), fb.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


def verify(source: Path, output: Path) -> Verification:
    """``output`` against ``source``: byte for byte, then the SHA-256 of
    each, read again (the digest printed is the output's own)."""
    if not Path(output).is_file():
        return Verification(False, [f"{output} is missing"])
    if not same_bytes(source, output):
        return Verification(False, [f"{output} differs from {source}"])
    digest = sha256_of(output)
    if sha256_of(source) != digest:
        return Verification(False, ["SHA-256 differs"])
    return Verification(True, sha256=digest)
