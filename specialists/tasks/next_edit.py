"""Next edit: from the user's recent edits and a window of the file around the last one,
the change those edits imply next (a rename carried to the other uses, a new argument
given to the sibling calls…), or no change.

**Prompt** (``chatml-next-edit``, the same zero-shot turn for the specialist and the
untuned base, which is an instruct model): the recent edits as original/updated blocks,
most recent last, within :data:`HISTORY_CHARS`; then the window, each line numbered.

**Answer**: only the window's lines that change, as ``N|new text`` (``N+|text`` inserts a
line after line N, ``N-|`` deletes line N), or :data:`NO_CHANGE`. The window rewritten in
full would cost its every token again: on a CPU at ~28 tokens/s a 21-line window is 8 s of
decoding, and a renamed use is ~10 tokens. A reply that is the whole window rewritten (a
fenced block, the baseline LLM's habit) is read too.

The :class:`~covey_specialists.tasks.common.Edit` replaces the whole window with its
rewrite (what the eval scores); the server shows the lines that differ
(:func:`changed_lines`).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass

from covey_specialists.document import Document
from covey_specialists.edit_history import RecentEdit
from covey_specialists.repo_context import Workspace
from covey_specialists.tasks.common import (
    BaselineRequest,
    Edit,
    EditError,
    Prompt,
    Run,
    TrainingExample,
    changed_diff_lines,
    chat_baseline_request,
    chatml,
    check_parses,
    extract_code,
    strip_markers,
)
from covey_specialists.tasks.protocol import Where
from covey_specialists.tasks.similarity import chrf, exact_match

NAME = "next-edit"
FORMATS = {"chatml-next-edit"}
FAIR_BASE_FORMAT = "chatml-next-edit"
"""The base is an instruct model: the same zero-shot chat turn is its fair prompt."""
NO_CHANGE = "<NO_CHANGE>"
END_OF_TARGET = "<|im_end|>"
SYSTEM = (
    "You predict a developer's next edit. From their recent edits and the numbered window "
    "of the file, reply with the window's lines that must change next, one per line, as "
    "its number, '|' and its new text ('N+|text' inserts a line after line N, 'N-|' "
    f"deletes line N). Reply {NO_CHANGE} when the edits imply nothing more."
)
WINDOW_ABOVE = 2
WINDOW_BELOW = 18
"""The editable window: the line of the last edit, 2 above and 18 below (21 lines, Sweep's
size). A rename or a new parameter reaches mostly downwards: of the implied edits in the
training split's sequences, a 21-line window holds 61.8% placed so, 57.7% with 5 above and
48.1% centred (docs/training.md)."""
HISTORY_CHARS = 1200
"""Recent edits in the prompt, about 300 tokens: the last few edits of a session (Zeta
keeps 500 tokens, Copilot's NES 1,000); on this CPU each 100 tokens cost ~0.15 s of
prefill."""
MAX_LINE_CHARS = 240
"""A longer window line is cut: minified or generated code is no place for a next edit."""
SHOWS_ONLY_SURE = True
"""Nobody asked for it: unsure answers are hidden (``min_show_logprob``)."""
VALIDATE_BY_RUNNING = False
EXECUTION_METRIC = None
GATE_PRIMARY, GATE_SECONDARY = "exact_match", "delta_chrf"
GATE_MAX_NEW_TOKENS = 128
SPREAD_HELDOUT = False
TRAIN_BUDGET = HISTORY_CHARS
TRAIN_PER_FILE = 4
CARD_TEXT = ("next-edit prediction (ChatML prompt `chatml-next-edit`: recent edits as "
             "original/updated blocks and a numbered 21-line window; reply `N|new line` per "
             f"changed line, or `{NO_CHANGE}`, ending with `<|im_end|>`)")


# ---------------------------------------------------------------- the prompt

def lines_of(text: str, keepends: bool = False) -> list[str]:
    """The lines of ``text``, split at newlines only (``str.splitlines`` also splits at the
    form feeds and other breaks that source files hold inside lines)."""
    found = re.findall(r"[^\n]*\n|[^\n]+$", text)
    return found if keepends else [line.rstrip("\n") for line in found]


def window_span(text: str, line: int) -> tuple[int, int]:
    """Lines ``first``..``last`` (exclusive) of the window around ``line``."""
    count = max(1, len(lines_of(text)))
    line = max(0, min(line, count - 1))
    return max(0, line - WINDOW_ABOVE), min(count, line + WINDOW_BELOW + 1)


def window_of(text: str, line: int) -> tuple[int, str]:
    """The window around ``line``: its first line and its text."""
    first, last = window_span(text, line)
    return first, "".join(lines_of(text, keepends=True)[first:last])


def numbered(window: str) -> str:
    return "".join(f"{n}|{line[:MAX_LINE_CHARS]}\n"
                   for n, line in enumerate(lines_of(window), 1))


def render_edits(edits: tuple[RecentEdit, ...], budget: int = HISTORY_CHARS) -> str:
    """The edits as original/updated blocks, most recent last, as many of the latest as
    fit ``budget`` characters (the latest one always, cut to the budget)."""
    blocks: list[str] = []
    used = 0
    for edit in reversed(edits):
        block = (f"{edit.path}:{edit.line + 1}\n<<<<<<< original\n{edit.before}"
                 f"=======\n{edit.after}>>>>>>> updated\n")
        if blocks and used + len(block) > budget:
            break
        blocks.append(block[:budget])
        used += len(block)
    return "".join(reversed(blocks))


def next_edit_prompt(edits: tuple[RecentEdit, ...], path: str, window: str, first: int,
                     cursor_line: int, budget: int = HISTORY_CHARS) -> Prompt:
    history = render_edits(edits, budget) or "(none)\n"
    count = len(lines_of(window))
    user = (f"Recent edits:\n{history}\nFile {path}, lines {first + 1}-{first + count} "
            f"(cursor on line {cursor_line - first + 1}):\n{numbered(window)}")
    return Prompt(NAME, "chatml-next-edit", chatml(SYSTEM, user),
                  {"window": window, "first": first, "path": path})


# ---------------------------------------------------------------- the answer

_HUNK = re.compile(r"^(\d+)([+-]?)\|(.*)$")
_NUMBERED = re.compile(r"^\d+\|")


def hunks(window: str, rewritten: str) -> str:
    """The answer that turns ``window`` into ``rewritten``: changed lines as ``N|text``,
    inserted ones as ``N+|text``, deleted ones as ``N-|``; :data:`NO_CHANGE` for none."""
    old, new = lines_of(window), lines_of(rewritten)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        out += [f"{i1 + k + 1}|{new[j1 + k]}" for k in range(paired)]
        out += [f"{i + 1}-|" for i in range(i1 + paired, i2)]
        out += [f"{i1 + paired}+|{line}" for line in new[j1 + paired:j2]]
    return "\n".join(out) if out else NO_CHANGE


def rewrite(window: str, raw: str) -> str:
    """``window`` as the answer ``raw`` rewrites it (itself for :data:`NO_CHANGE`);
    EditError for an answer that is neither changed lines nor a rewritten window."""
    if raw.strip().startswith(NO_CHANGE):
        return window
    text = strip_markers(raw).strip("\n")
    if not text.strip():
        raise EditError("the model's answer is empty")
    rows = [row for row in lines_of(text) if row.strip()]
    if all(_HUNK.match(row) for row in rows):
        return _apply_hunks(window, rows)
    code = extract_code(text)
    lines = lines_of(code)
    if lines and all(_NUMBERED.match(line) for line in lines):
        lines = [line.split("|", 1)[1] for line in lines]  # it copied the numbers
    if not lines:
        raise EditError("the model's answer holds no code")
    return "\n".join(lines) + ("\n" if window.endswith("\n") else "")


def _apply_hunks(window: str, rows: list[str]) -> str:
    lines = lines_of(window, keepends=True)
    replaced: dict[int, str] = {}
    deleted: set[int] = set()
    inserted: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        number, kind, new = _HUNK.match(row).groups()
        n = int(number)
        if not (0 if kind == "+" else 1) <= n <= len(lines):
            raise EditError(f"the model named line {n} of a {len(lines)}-line window")
        if kind == "+":
            inserted[n].append(new)
        elif n in replaced or n in deleted:
            raise EditError(f"the model changed line {n} twice")
        elif kind == "-":
            deleted.add(n)
        else:
            replaced[n] = new
    out = [line + "\n" for line in inserted[0]]
    for n, line in enumerate(lines, 1):
        ending = "\n" if line.endswith("\n") else ""
        if n in replaced:
            out.append(replaced[n] + ending)
        elif n not in deleted:
            out.append(line)
        out += [new + "\n" for new in inserted[n]]
    text = "".join(out)
    return text if window.endswith("\n") or not text.endswith("\n") else text[:-1]


def changed_lines(doc: Document, edit: Edit) -> Edit:
    """``edit`` cut to the whole lines that differ (the range the editor marks)."""
    old = lines_of(doc.text[edit.start:edit.end], keepends=True)
    new = lines_of(edit.new_text, keepends=True)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    start = edit.start + sum(len(line) for line in old[:head])
    end = edit.end - sum(len(line) for line in old[len(old) - tail:])
    return Edit(start, end, "".join(new[head:len(new) - tail]))


# ---------------------------------------------------------------- the edit

@dataclass(frozen=True)
class NextEditPlan:
    prompt: Prompt
    doc: Document
    start: int
    end: int
    window: str


def plan(doc: Document, where: Where, spec, *, fair_base: bool = False,
         workspace: Workspace | None = None) -> NextEditPlan:
    """The window around the cursor (``where.offset``, the last edit) and the recent edits
    (``where.edits``); the same prompt for the fair base."""
    if not where.edits:
        raise EditError("no recent edit to carry on")
    line, _ = doc.position_at(where.offset)
    first, window = window_of(doc.text, line)
    start = doc.offset_at(first, 0)
    end = start + len(window)
    path = (workspace.key if workspace is not None else None) or doc.uri.rsplit("/", 1)[-1]
    budget = min(HISTORY_CHARS, spec.max_prompt_chars)
    prompt = next_edit_prompt(tuple(where.edits), path, window, first, line, budget)
    return NextEditPlan(prompt, doc, start, end, window)


def finish(plan: NextEditPlan, raw: str) -> Edit:
    rewritten = rewrite(plan.window, raw)
    if rewritten == plan.window:
        raise EditError("no next edit")
    edit = Edit(plan.start, plan.end, rewritten)
    check_parses(plan.doc, edit)
    return edit


def problem(plan: NextEditPlan, raw: str) -> str | None:
    """Why an answer is unusable (routing's check): what :func:`finish` refuses, except
    "no change", which is an answer."""
    try:
        rewritten = rewrite(plan.window, raw)
        if rewritten != plan.window:
            check_parses(plan.doc, Edit(plan.start, plan.end, rewritten))
    except EditError as exc:
        return str(exc)
    return None


def label(plan: NextEditPlan) -> str:
    return NAME


# ---------------------------------------------------------------- streaming

def stream_done(prompt: Prompt, text: str) -> bool:
    return text.lstrip().startswith(NO_CHANGE)  # nothing more is read after it


def finished_part(prompt: Prompt, text: str) -> str:
    """Whole lines only: a line cut by ``max_tokens`` would be applied half-written."""
    return text[:text.rfind("\n") + 1] if "\n" in text else ""


def shrink(prompt: Prompt, keep: float) -> None:
    return None  # the window is rewritten whole; the history is already bounded


def follow_up(prompt: Prompt, raw: str, cut_short: bool) -> None:
    return None


# ---------------------------------------------------------------- the baseline LLM

def baseline_request(spec, prompt: Prompt, api: str) -> BaselineRequest:
    return chat_baseline_request(SYSTEM, spec, prompt, api)


def baseline_reply(raw: str, api: str, prompt: Prompt) -> str:
    return raw


# ---------------------------------------------------------------- the eval

def eval_target(task) -> tuple[Document, Where]:
    """The file after the first edit, the cursor at it, and that edit as the history."""
    doc = Document(f"file:///eval/{task.meta['path']}", task.code, task.language or None)
    edits = tuple(RecentEdit(**e) for e in task.meta["edits"])
    return doc, Where(offset=task.meta["cursor"], edits=edits)


def oracle(task) -> str:
    return task.reference


def delta_chrf(window: str, predicted: str, reference: str) -> float:
    """Zed's delta-chrF: chrF of the change (the lines removed and added) the prediction
    makes against the one the reference makes; 1.0 when both make none."""
    def change(new: str) -> str:
        return "\n".join(changed_diff_lines(lines_of(window), lines_of(new)))

    want, got = change(reference), change(predicted)
    if not want and not got:
        return 1.0
    return chrf(got, want)


def scores(task, answer: str) -> dict:
    """An empty answer is no change (the editor shows nothing). ``no_change_precision`` is
    defined where the system said nothing (was nothing due?), ``no_change_recall`` where
    nothing was due (did it say nothing?); their means over a suite are the ratios."""
    window = task.meta["window"]
    predicted = answer or window
    said_nothing, nothing_due = predicted == window, task.reference == window
    return {"exact_match": exact_match(predicted, task.reference),
            "delta_chrf": delta_chrf(window, predicted, task.reference),
            "no_change_precision": float(nothing_due) if said_nothing else None,
            "no_change_recall": float(said_nothing) if nothing_due else None}


def combined_scores(row: dict) -> dict:
    return {}


def execution(task, answer: str) -> Run | None:
    return None


# ---------------------------------------------------------------- training and the gate

def training_example(edits: tuple[RecentEdit, ...], path: str, text: str, cursor_line: int,
                     expected: str, budget: int = HISTORY_CHARS) -> TrainingExample:
    """The file ``text`` after ``edits``, the cursor on their last line → the window as
    ``expected`` (the window's text after the implied edit, or unchanged)."""
    first, window = window_of(text, cursor_line)
    prompt = next_edit_prompt(edits, path, window, first, cursor_line, budget)
    return TrainingExample(prompt.text, hunks(window, expected) + END_OF_TARGET,
                           {"window": window, "reference": expected})


def gate_base_prompt(prompt_text: str, meta: dict) -> str:
    return prompt_text


def gate_postprocess(prompt_text: str, meta: dict, raw: str) -> str:
    try:
        return rewrite(meta["window"], raw)
    except EditError:
        return meta["window"]


def gate_scores(meta: dict, output: str) -> dict[str, float]:
    window, reference = meta["window"], meta["reference"]
    return {"exact_match": exact_match(output, reference),
            "delta_chrf": delta_chrf(window, output, reference)}
