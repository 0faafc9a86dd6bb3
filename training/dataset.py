"""Build a task's dataset: examples from source files (and accepted suggestions), cleaned.

The pipeline streams file by file, so memory holds one parsed file at a time plus the
examples kept: pick spans → drop near-duplicates → drop examples overlapping an eval suite
(decontamination) → scrub secrets and emails → shuffle.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from covey_specialists.tasks import task_module
from covey_training import dedup
from covey_training.decontam import EvalNgrams, eval_ngrams, overlaps
from covey_training.examples import Example, scrubbed
from covey_training.scrub import ScrubReport, seam_hazards
from covey_training.sources import default_roots, iter_source_paths, load


@dataclass(frozen=True)
class SourceSet:
    """A named body of code with its licence, as the model card lists it."""

    name: str
    licence: str
    roots: tuple[Path, ...]
    version: str = ""
    max_files: int | None = None
    """A seeded sample of this many of its files (the generic share of a repository's
    training set); None: every file."""


def stdlib_set() -> SourceSet:
    import platform

    return SourceSet("cpython-stdlib", "PSF-2.0", tuple(default_roots()),
                     platform.python_version())


def repo_sets(repos: list[Path]) -> list[SourceSet]:
    """Paths given on the command line: the stdlib when it is one of them, else the user's
    own code (its licence is the user's business)."""
    stdlib = {p.resolve() for p in default_roots()}
    return [stdlib_set() if Path(r).resolve() in stdlib
            else SourceSet(str(r), "user-supplied", (Path(r),)) for r in repos]


def package_sets(exclude: tuple[str, ...] | None = None) -> tuple[list[SourceSet], list[tuple]]:
    """Installed packages with a permissive licence, as source sets; and those skipped."""
    from covey_training import packages

    found, skipped = packages.permissive_packages(
        exclude=packages.DEFAULT_EXCLUDE if exclude is None else exclude)
    return [SourceSet(p.name, p.licence, p.roots, p.version) for p in found], skipped


@dataclass
class DatasetInfo:
    task: str
    split: str
    roots: list[str]
    files: int = 0
    examples: int = 0
    from_usage: int = 0
    scrub: dict = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)
    """Per source set: name, version, licence, files, examples kept."""
    duplicates: int = 0
    decontamination: dict = field(default_factory=dict)
    """``removed`` examples, ``files`` touched, ``n`` (n-gram size), eval texts compared."""
    seconds: float = 0.0
    rules: dict = field(default_factory=dict)
    """Definitions each of the builder's rules kept or dropped (before sampling per file)."""
    mix: dict = field(default_factory=dict)
    """Per kind of example (refactor: codemod), [found, kept] after rebalancing."""
    generic: dict = field(default_factory=dict)
    """Training on repositories: the ``share`` asked of generic code and the ``examples``
    it gave (from ``source``); empty when none was mixed in."""
    repo_context: dict = field(default_factory=dict)
    """For a task whose builder takes a workspace (completion): ``examples`` whose prompt
    holds context from other files of their package, their ``share`` of all, the
    ``budget_tokens`` and what counted them (``tokenizer`` or ``estimate``); empty when
    built without context."""


def data_module(task: str) -> ModuleType:
    """Training's part of ``task``: the module ``covey_training.data_<task>`` (the task's
    :func:`identifier`), whose
    ``<task>_examples(src, rng, per_file, budget)`` picks the spans of a file (the task's
    module builds each prompt and target) and whose optional ``balance(examples, rng)``
    rebalances the training set across kinds of example (the card shows the mix). How many
    examples a file gives and their context budget are the task module's ``TRAIN_PER_FILE``
    and ``TRAIN_BUDGET``. ValueError for a task that is not registered or has no builder."""
    task_module(task)  # an unknown task: ValueError naming the registered ones
    try:
        return importlib.import_module(f"{__package__}.data_{identifier(task)}")
    except ModuleNotFoundError:
        raise ValueError(f"task {task!r} has no training data builder "
                         f"({__package__}.data_{task})") from None


def identifier(task: str) -> str:
    """``task`` as it appears in Python names (``next-edit`` → ``next_edit``)."""
    return task.replace("-", "_")


def builder(task: str):
    """``task``'s ``<task>_examples`` (:func:`data_module`)."""
    return getattr(data_module(task), f"{identifier(task)}_examples")


def uses_context(task: str) -> bool:
    """Whether ``task``'s builder puts repository context in its prompts: its data module
    has ``workspace_for(src, package, split)``, the workspace serving would have."""
    return hasattr(data_module(task), "workspace_for")


def context_package(source_set: SourceSet, root: Path, base: Path, rel: str) -> Path | None:
    """The folder whose modules are a file's workspace: for the user's own code, the root
    it gave (a repository is one workspace); for the stdlib and installed packages, the
    file's top-level package (``email/`` for ``email/message.py``), as a project that
    vendored it would hold it. The stdlib's top-level modules are separate projects (a
    user's workspace never holds ``os.py``), and the split is by top-level module, so no
    held-out module's outline can reach a training prompt. None for a top-level module
    file: its package is itself, with nothing to import from."""
    if source_set.licence == "user-supplied":
        return root if root.is_dir() else None
    top = base / rel.split("/", 1)[0]
    return top if top.is_dir() else None


def _offsets(ex: Example) -> tuple[int, int] | None:
    try:
        start, end = ex.source.rsplit(":", 1)[1].split("-")
        return int(start), int(end)
    except (IndexError, ValueError):
        return None


def raw_examples(task: str, sources, seed: int, per_file: int | None = None,
                 budget: int | None = None) -> Iterator[Example]:
    """Uncleaned examples from parsed ``sources`` (for tests and inspection)."""
    build = builder(task)
    per_file = per_file or task_module(task).TRAIN_PER_FILE
    budget = budget or task_module(task).TRAIN_BUDGET
    for src in sources:
        # one generator per file, seeded by its path: adding a file never reshuffles others
        rng = random.Random(f"{seed}:{task}:{src.rel}")
        yield from build(src, rng, per_file, budget)


USAGE_WEIGHT = 3
"""Times each of the user's accepted-and-kept suggestions is in the train split: their own
code, chosen by them, outweighs code mined from packages."""

GATE_ONLY_META = ("base_prompt",)
"""Meta the gate reads from held-out examples only: left out of training examples, which
halves their size and the scrubbing time at 100k examples."""

_WORKER_NGRAMS: EvalNgrams | None = None
"""Set before the worker pool forks, so each worker inherits the eval n-grams for free."""


@dataclass
class _FileResult:
    kept: list[tuple[bytes, Example]]
    removed: int = 0
    report: ScrubReport = field(default_factory=ScrubReport)
    rules: dict = field(default_factory=dict)


def _file_job(job: tuple) -> tuple[int, _FileResult | None]:
    """One file's cleaned examples (runs in a worker): spans → decontamination → seam check →
    scrub; with a dedup key each, as dedup needs every file's keys."""
    task, base, rel, seed, per_file, split, set_index, package = job
    src = load(base, rel)
    if src is None:
        return set_index, None
    result = _FileResult(kept=[])
    ngrams = _WORKER_NGRAMS
    hits = ngrams.hits(src.text) if ngrams is not None else []
    rng = random.Random(f"{seed}:{task}:{src.rel}")
    text = src.text
    module = task_module(task)
    # the workspace's index is built in the worker, once per package (data module's cache)
    context = ({"workspace": data_module(task).workspace_for(src, package, split)}
               if package is not None else {})
    built = builder(task)(src, rng, per_file or module.TRAIN_PER_FILE, module.TRAIN_BUDGET,
                           **context)
    # a builder may count what its rules kept and dropped (doc does)
    result.rules = dict(getattr(built, "stats", {}))
    for ex in built:
        span = _offsets(ex)
        if span is None:
            continue
        start, end = span
        if hits and overlaps(hits, start, end):
            result.removed += 1
            continue
        if hazards := seam_hazards(text, start, end):
            for kind in hazards:
                result.report.dropped[kind] += 1
            continue
        if split == "train":
            ex = Example(ex.task, ex.prompt, ex.target, ex.source,
                         {k: v for k, v in ex.meta.items() if k not in GATE_ONLY_META})
        for clean in scrubbed([ex], result.report):
            result.kept.append((dedup.key(text[start:end], text[:start], text[end:]), clean))
    return set_index, result


def _file_results(jobs: list[tuple], workers: int) -> Iterator[tuple[int, _FileResult | None]]:
    if workers <= 1 or len(jobs) < 8:
        yield from map(_file_job, jobs)
        return
    import multiprocessing

    # fork: workers inherit the n-grams and the imported modules; nothing here holds threads
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_file_job, jobs, chunksize=4)


def build_dataset(task: str, roots: list[Path] | None = None, split: str = "train",
                  seed: int = 0, limit: int | None = None, per_file: int | None = None,
                  usage_examples: list[Example] | None = None,
                  source_sets: list[SourceSet] | None = None,
                  ngrams: EvalNgrams | None = None, decontaminate: bool = True,
                  workers: int | None = None, repo_context: bool = True,
                  generic_share: float = 0.0) -> tuple[list[Example], DatasetInfo]:
    """Cleaned examples for ``task`` from the ``split`` of files under ``roots`` (or the
    named ``source_sets``). Training data is decontaminated against the eval suites unless
    ``decontaminate`` is False (``ngrams`` replaces the installed suites' text). Files are
    read by ``workers`` processes (default: one per CPU). With ``repo_context``, a task
    whose builder takes a workspace (:func:`uses_context`) gets each file's package as
    its workspace (:func:`context_package`); the split is the same either way. With
    ``generic_share``, that share of the training set comes from the standard library's
    training files, so an adapter trained on one repository keeps what it knew."""
    started = time.monotonic()
    balance = getattr(data_module(task), "balance", None)  # also: the task is known
    sets = list(source_sets or []) + (repo_sets(roots) if roots else [])
    if not sets:
        raise ValueError("no source to build examples from")
    info = DatasetInfo(task=task, split=split,
                       roots=[str(r) for s in sets for r in s.roots])
    if split == "train" and decontaminate:
        ngrams = ngrams if ngrams is not None else eval_ngrams()
        info.decontamination = {"n": 13, "removed": 0, "files": 0,
                                "against": dict(ngrams.sources)}
    else:
        ngrams = None
    global _WORKER_NGRAMS
    _WORKER_NGRAMS = ngrams
    report, dedupe = ScrubReport(), dedup.Deduplicator()
    examples: list[Example] = []
    workers = workers or os.cpu_count() or 1
    context = repo_context and uses_context(task)
    if context:  # the budget and the tokenizer, before the pool forks: workers inherit them
        budget, _, counted = data_module(task).context_budget()
    jobs = [(task, base, rel, seed, per_file, split, n,
             context_package(s, Path(root), base, rel) if context else None)
            for n, s in enumerate(sets) for root, base, rel in _files(s, split, seed)]
    files, counts = [0] * len(sets), [0] * len(sets)
    # one pool for every source set: forking per set would cost more than small sets take
    for n, result in _file_results(jobs, workers):
        if result is None:
            continue
        files[n] += 1
        info.decontamination["removed"] = info.decontamination.get("removed", 0) + result.removed
        info.decontamination["files"] = info.decontamination.get("files", 0) + bool(result.removed)
        _merge(report, result.report)
        for rule, count in result.rules.items():
            info.rules[rule] = info.rules.get(rule, 0) + count
        before = len(examples)
        examples.extend(ex for key, ex in result.kept if dedupe.first(key))
        counts[n] += len(examples) - before
    info.files = sum(files)
    info.sources = [{"name": s.name, "version": s.version, "licence": s.licence,
                     "files": files[n], "examples": counts[n]} for n, s in enumerate(sets)]
    _WORKER_NGRAMS = None
    info.duplicates = dedupe.dropped
    if split == "train" and balance is not None:  # the user's accepted edits are never cut
        examples, info.mix = balance(examples, random.Random(f"{seed}:balance"))
    if split == "train" and generic_share > 0:
        generic, generic_info = _generic(task, len(examples), generic_share, seed, per_file,
                                         ngrams, workers, repo_context)
        info.generic = {"share": generic_share, "examples": len(generic),
                        "source": generic_info.sources[0]["name"] if generic_info.sources else ""}
        info.sources += generic_info.sources
        examples.extend(generic)
    if usage_examples:
        kept = list(scrubbed(usage_examples, report))
        info.from_usage = len(kept)
        if split == "train":  # the user's own kept code outweighs mined code
            kept = kept * USAGE_WEIGHT
        examples.extend(kept)
    rng = random.Random(seed)
    rng.shuffle(examples)
    if limit is not None:
        examples = examples[:limit]
    info.examples = len(examples)
    if context:
        with_context = sum(bool(ex.meta.get("repo_context")) for ex in examples)
        info.repo_context = {"examples": with_context,
                             "share": round(with_context / max(1, len(examples)), 4),
                             "needing_it": sum(bool(ex.meta.get("needs_context"))
                                               for ex in examples),
                             "budget_tokens": budget, "counted_with": counted}
    info.scrub = report.as_dict()
    info.seconds = round(time.monotonic() - started, 1)
    return examples, info


def _files(source_set: SourceSet, split: str, seed: int) -> list[tuple[Path, Path, str]]:
    """(root, base, rel) of the set's files in ``split``; a seeded sample of them when the
    set has ``max_files``."""
    files = [(root, base, rel) for root in source_set.roots
             for base, rel in iter_source_paths([root], split)]
    if source_set.max_files is not None and len(files) > source_set.max_files:
        files = random.Random(f"{seed}:{source_set.name}").sample(files, source_set.max_files)
    return files


def _generic(task: str, own: int, share: float, seed: int, per_file: int | None,
             ngrams: EvalNgrams | None, workers: int,
             repo_context: bool) -> tuple[list[Example], DatasetInfo]:
    """Generic examples to make up ``share`` of a training set with ``own`` examples of the
    user's code: from as many standard library training files, at most."""
    if not 0 < share < 1:
        raise ValueError(f"the generic share must be between 0 and 1, got {share}")
    want = round(own * share / (1 - share))
    if want == 0:
        return [], DatasetInfo(task=task, split="train", roots=[])
    sample = dataclasses.replace(stdlib_set(), max_files=want)
    examples, info = build_dataset(task, source_sets=[sample], seed=seed, per_file=per_file,
                                   ngrams=ngrams, decontaminate=ngrams is not None,
                                   workers=workers, repo_context=repo_context)
    info.sources[0]["examples"] = min(want, len(examples))
    return examples[:want], info


def _merge(total: ScrubReport, part: ScrubReport) -> None:
    total.kept += part.kept
    total.dropped.update(part.dropped)
    total.emails_replaced += part.emails_replaced
