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
