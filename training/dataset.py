"""Build a task's dataset: examples from source files (and accepted suggestions), scrubbed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from covey_training.data_completion import completion_examples
from covey_training.data_doc import doc_examples
from covey_training.data_refactor import refactor_examples
from covey_training.examples import Example, scrubbed
from covey_training.scrub import ScrubReport
from covey_training.sources import SourceFile, iter_sources

BUILDERS = {"completion": completion_examples, "doc": doc_examples,
            "refactor": refactor_examples}
"""Each task's example builder: the spans it picks from a file; the task's module builds the
prompt and target."""
TASKS = tuple(BUILDERS)
# Characters of prompt context per task: smaller than serving budgets to keep CPU training
# affordable; the format is identical.
TRAIN_BUDGET = {"completion": 900, "doc": 1400, "refactor": 900}
PER_FILE = {"completion": 6, "doc": 4, "refactor": 4}


@dataclass
class DatasetInfo:
    task: str
    split: str
    roots: list[str]
    files: int = 0
    examples: int = 0
    from_usage: int = 0
    scrub: dict = field(default_factory=dict)


def _builder(task: str):
    try:
        return BUILDERS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})") from None


def raw_examples(task: str, sources: list[SourceFile], seed: int,
                 per_file: int | None = None, budget: int | None = None) -> Iterator[Example]:
    build = _builder(task)
    per_file = per_file or PER_FILE[task]
    budget = budget or TRAIN_BUDGET[task]
    for src in sources:
        # one generator per file, seeded by its path: adding a file never reshuffles others
        rng = random.Random(f"{seed}:{task}:{src.rel}")
        yield from build(src, rng, per_file, budget)


def build_dataset(task: str, roots: list[Path], split: str = "train", seed: int = 0,
                  limit: int | None = None, per_file: int | None = None,
                  usage_examples: list[Example] | None = None,
                  ) -> tuple[list[Example], DatasetInfo]:
    """Scrubbed examples for ``task`` from the ``split`` of files under ``roots``."""
    sources = list(iter_sources(roots, split))
    info = DatasetInfo(task=task, split=split, roots=[str(r) for r in roots], files=len(sources))
    report = ScrubReport()
    examples = list(scrubbed(raw_examples(task, sources, seed, per_file), report))
    if usage_examples:
        before = len(examples)
        examples.extend(scrubbed(usage_examples, report))
        info.from_usage = len(examples) - before
    rng = random.Random(seed)
    rng.shuffle(examples)
    if limit is not None:
        examples = examples[:limit]
    info.examples = len(examples)
    info.scrub = report.as_dict()
    return examples, info
