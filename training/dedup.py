"""Near-exact deduplication of training examples.

Two examples are the same when their target and the code right around it match after
whitespace is normalised: vendored copies of a module, files that differ only in their
header, or one span reached twice yield one example.
"""

from __future__ import annotations

import hashlib
import re

CONTEXT_CHARS = 200
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def key(target: str, before: str = "", after: str = "") -> bytes:
    """A 16-byte digest of the normalised target with its nearby context."""
    text = "\x00".join(normalise(t) for t in (before[-CONTEXT_CHARS:], target,
                                                after[:CONTEXT_CHARS]))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class Deduplicator:
    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self.dropped = 0

    def first(self, digest: bytes) -> bool:
        """True the first time ``digest`` is offered."""
        if digest in self._seen:
            self.dropped += 1
            return False
        self._seen.add(digest)
        return True
