"""Next-edit examples: synthetic edit sequences in a real file (the task's own
:mod:`~covey_specialists.tasks.next_edit_sequences`, which the eval suite uses on the
held-out split) → the window as the implied edits leave it, or no change."""

from __future__ import annotations

import random

from covey_specialists.tasks import next_edit
from covey_specialists.tasks.next_edit_sequences import cases
from covey_training.examples import Example
from covey_training.sources import SourceFile


def next_edit_examples(src: SourceFile, rng: random.Random, per_file: int,
                       budget: int) -> list[Example]:
    out = []
    for found in cases(src.text, src.tree, src.rel, rng, per_file):
        built = next_edit.training_example(found.edits, found.path, found.text,
                                           found.cursor_line, found.expected, budget)
        out.append(Example(task=next_edit.NAME, prompt=built.prompt, target=built.target,
                           source=f"{src.rel}:{found.cursor}-{found.cursor}",
                           meta={**built.meta, "kind": found.kind}))
    return out


NEGATIVE_SHARE = 0.25
"""Examples where nothing is due, in the training set. As the sequences come (about half),
an adapter trained on 582 of them learned to say no change: 7 of 8 held-out positives
checked by hand got it."""
NEGATIVE_KINDS = ("done", "literal")


def balance(examples: list[Example], rng: random.Random) -> tuple[list[Example], dict]:
    """Negatives cut to :data:`NEGATIVE_SHARE` of the set; positives all kept. Returns the
    mix as ``{kind: [found, kept]}``."""
    negative = [ex for ex in examples if ex.meta.get("kind") in NEGATIVE_KINDS]
    positive = [ex for ex in examples if ex.meta.get("kind") not in NEGATIVE_KINDS]
    rng.shuffle(negative)
    keep = min(len(negative), round(len(positive) * NEGATIVE_SHARE / (1 - NEGATIVE_SHARE)))
    kept = positive + negative[:keep]
    rng.shuffle(kept)
    mix: dict[str, list[int]] = {}
    for ex in examples:
        mix.setdefault(ex.meta.get("kind", ""), [0, 0])[0] += 1
    for ex in kept:
        mix[ex.meta.get("kind", "")][1] += 1
    return kept, mix
