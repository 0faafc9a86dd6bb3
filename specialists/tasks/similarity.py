"""How close an answer is to the reference: pure functions on text, shared by the task
modules' scores (the eval's and the gate's alike).

- ``exact_match``: equal after trimming line ends and the edges.
- ``edit_similarity``: 1 − Levenshtein distance / longer length, on characters.
- ``rouge_l``: F1 of the longest common subsequence of tokens (rouge-score's tokenizer:
  lowercase, runs of [a-z0-9]).
- ``bleu``: sentence BLEU-4, geometric mean of clipped n-gram precisions with add-one
  smoothing for n ≥ 2 (Lin & Och 2004, as CodeXGLUE's smooth-BLEU), times the brevity
  penalty.
- ``chrf``: chrF (Popović 2015): the F-score (β = 2, recall weighted) of character n-grams,
  n = 1…6, averaged over n, spaces removed as sacreBLEU does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+")


def normalise(code: str) -> str:
    """Whitespace-insensitive at line ends and at the edges, sensitive inside lines."""
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines()).strip()


def exact_match(prediction: str, reference: str) -> float:
    return float(normalise(prediction) == normalise(reference))


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(prediction: str, reference: str) -> float:
    a, b = prediction.strip(), reference.strip()
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu(prediction: str, reference: str, max_n: int = 4) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    log_sum = 0.0
    for n in range(1, max_n + 1):
        pred_grams, ref_grams = _ngrams(pred, n), _ngrams(ref, n)
        matches = sum(min(c, ref_grams[g]) for g, c in pred_grams.items())
        total = max(len(pred) - n + 1, 0)
        if n > 1:  # add-one smoothing keeps short texts from scoring zero
            matches, total = matches + 1, total + 1
        if matches == 0 or total == 0:
            return 0.0
        log_sum += math.log(matches / total) / max_n
    brevity = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return brevity * math.exp(log_sum)


def chrf(prediction: str, reference: str, max_n: int = 6, beta: float = 2.0) -> float:
    pred, ref = prediction.replace(" ", ""), reference.replace(" ", "")
    if not pred or not ref:
        return float(pred == ref)
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        got = Counter(pred[i:i + n] for i in range(len(pred) - n + 1))
        want = Counter(ref[i:i + n] for i in range(len(ref) - n + 1))
        if not got or not want:
            continue
        common = sum((got & want).values())
        precisions.append(common / sum(got.values()))
        recalls.append(common / sum(want.values()))
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 0.0 if p + r == 0 else (1 + beta ** 2) * p * r / (beta ** 2 * p + r)
