"""Code completion at the cursor: its prompts, post-processing, checks, eval scores and
training examples.

Every caller goes through :func:`plan` and :func:`finish` (the task protocol,
:mod:`covey_specialists.tasks.protocol`), so the eval scores exactly the text the editor
would show.

Prompts, per kind of model:
- the specialist: the table's ``prompt_format`` (``fim-smol`` etc., fill-in-the-middle);
- the untuned base, prompted fairly: ``prefix``, a plain continuation of the text before
  the cursor, cut at the hole's end by the same one-line/block post-processing;
- the baseline LLM: chat messages with a ``<CURSOR>`` mark, or the plain prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from covey_specialists.document import Document, cursor_context
from covey_specialists.repo_context import FILE_SEPARATORS, Workspace, build, near_cursor, render
from covey_specialists.tasks import similarity
from covey_specialists.tasks.common import (
    FIM_MARKERS,
    SMOL_FIM,
    BaselineRequest,
    Edit,
    EditError,
    Prompt,
    Run,
    TrainingExample,
    check_parses,
    extract_code,
    strip_markers,
)
from covey_specialists.tasks.protocol import Where

NAME = "completion"
FORMATS = {"prefix", *FIM_MARKERS}
FAIR_BASE_FORMAT = "prefix"
"""The untuned base model's fair prompt: it was never taught FIM markers."""
END_OF_TARGET = "<|endoftext|>"
SERVED_PROMPT_START = (SMOL_FIM[1], *(m[0] for f, m in FIM_MARKERS.items() if f != "fim-smol"),
                       *FILE_SEPARATORS.values())
"""How a prompt in a served format starts: ``fim-smol`` suffix first, the others with their
prefix marker, or with other files behind the model's file separator."""
CHAT_SYSTEM = (
    "You fill in missing code. The user shows a file with the cursor marked <CURSOR>. "
    "Reply with only the code that belongs at the cursor — no explanation, no fences.")
EXECUTION_METRIC = "pass@1"
VALIDATE_BY_RUNNING = False
"""Routing's check runs nothing for a completion (scoring may: HumanEval, repo tests)."""
GATE_PRIMARY, GATE_SECONDARY = "exact_match", "edit_similarity"
GATE_MAX_NEW_TOKENS = 64
SHOWS_ONLY_SURE = True
"""Inline completion, which nobody asked for, hides unsure answers (``min_show_logprob``)."""
SPREAD_HELDOUT = True
"""The gate takes one held-out example per file and span kind first, so no file dominates."""
TRAIN_BUDGET = 900
"""Characters of prompt context in a training example: below the serving budget to keep
CPU training affordable; the format is the served one."""
TRAIN_PER_FILE = 6
"""Training examples per source file by default (``covey train --per-file`` raises it;
completion scales best)."""


@dataclass(frozen=True)
class CompletionContext:
    """What the completion specialist sees around the cursor."""

    prefix: str
    suffix: str = ""
    language: str = "python"
    path: str = ""
    multiline: bool = False
    repo: str = ""
    """Context from other files, rendered for the format (:mod:`covey_specialists.repo_context`)."""


LINE_MAX_TOKENS = 40
"""A one-line answer's token budget (the specialist's ``max_tokens`` if lower). Of the
2,395 one-line references in humaneval-sl and stdlib-fim three are longer (42, 48 and 50
tokens; p99 34). A line still running at the budget is dropped (:func:`finished_part`):
the answers that ran that far were lists of every letter or numeral and repeated
conditions (on all 1,033 humaneval-sl tasks none of those over 40 tokens passed), and with
eight requests in flight they were the ones that timed out. Each token past the budget
only delays an answer that is then thrown away."""


def _clip(prefix: str, suffix: str, budget: int) -> tuple[str, str]:
    """Keep at most ``budget`` characters, three quarters for the prefix, cut at line starts."""
    if len(prefix) + len(suffix) <= budget:
        return prefix, suffix
    suffix_budget = min(len(suffix), budget // 4)
    prefix_budget = budget - suffix_budget
    prefix = prefix[-prefix_budget:] if len(prefix) > prefix_budget else prefix
    if len(prefix) == prefix_budget and "\n" in prefix:
        prefix = prefix[prefix.index("\n") + 1:]
    suffix = suffix[:suffix_budget]
    if len(suffix) == suffix_budget and "\n" in suffix:
        suffix = suffix[: suffix.rindex("\n") + 1]
    return prefix, suffix


_TOP_LEVEL = re.compile(r"^(?=[^ \t#/)\]}\n@])", re.M)
"""Where a line starts a top-level statement (not indented, a comment, a decorator or the
close of a bracket)."""


def beside_cursor(repo: str, prefix: str) -> str:
    """``prefix`` with ``repo`` (comment lines) just above the top-level statement the cursor
    is in, its decorators and comments included: near enough for a small model to use, and
    the same for every keystroke in that function."""
    if not repo:
        return prefix
    starts = [m.start() for m in _TOP_LEVEL.finditer(prefix)]
    if not starts:
        return repo + prefix
    at = starts[-1]
    while at > 0:
        above = prefix.rfind("\n", 0, at - 1) + 1
        if not prefix.startswith(("@", "#", "//"), above):
            break
        at = above
    return prefix[:at] + repo + prefix[at:]


def completion_prompt(ctx: CompletionContext, fmt: str, budget: int) -> Prompt:
    """The prompt for ``fmt``; the file's window is clipped to ``budget`` characters. The
    repository context (``ctx.repo``, budgeted in tokens by its builder) goes as comments
    just above the top-level statement the cursor is in (:func:`beside_cursor`), or, for a
    model with repository tokens, in front as the other files its format expects.

    Beside the cursor, not at the top of the file: on the held-out packages' cross-file
    holes the shipped adapter got 8.5% exact with the context 500 tokens up, the same as
    without it, and 12.8% with it beside the cursor (docs/benchmarks.md)."""
    prefix, suffix = _clip(ctx.prefix, ctx.suffix, budget)
    lead, repo = "", ctx.repo
    if fmt == "prefix":
        lead = editor_indent(prefix)
        text = beside_cursor(repo, prefix) + lead
    elif fmt == "fim-smol":
        pre, suf, mid = SMOL_FIM
        # suffix first (SPM) so the model's middle runs straight on from the prefix
        text = f"{suf}{suffix}{pre}{beside_cursor(repo, prefix)}{mid}"
    elif fmt in FIM_MARKERS:
        pre, suf, mid = FIM_MARKERS[fmt]
        if repo and fmt in FILE_SEPARATORS:
            repo += f"{FILE_SEPARATORS[fmt]}{ctx.path}\n"
        text = f"{repo}{pre}{prefix}{suf}{suffix}{mid}"
    else:
        raise ValueError(f"{fmt!r} is not a completion format")
    meta = {"prefix": prefix, "suffix": suffix, "multiline": ctx.multiline}
    if repo:
        meta["repo"], meta["path"] = ctx.repo, ctx.path
    if not ctx.multiline:
        meta["max_tokens"] = LINE_MAX_TOKENS
    if lead:
        meta["lead"] = lead
    return Prompt(NAME, fmt, text, meta)


def shrink(prompt: Prompt, keep: float) -> Prompt:
    """The same cursor with ``keep`` of the prompt's prefix and suffix characters, clipped
    as :func:`completion_prompt` clips (what is nearest the cursor stays)."""
    prefix, suffix = prompt.meta["prefix"], prompt.meta["suffix"]
    ctx = CompletionContext(prefix, suffix, multiline=prompt.meta["multiline"],
                            path=prompt.meta.get("path", ""), repo=prompt.meta.get("repo", ""))
    return completion_prompt(ctx, prompt.format, int((len(prefix) + len(suffix)) * keep))


def editor_indent(prefix: str) -> str:
    """The indentation an editor types when the cursor starts a new line: the previous
    non-blank line's, one level deeper after a line that opens a block (``:`` or ``{``).

    The plain-continuation prompt ends with it, as the user's file would after Enter. Cut
    at column 0 inside a function, a base model takes the function as finished and writes
    ``# Example usage:``; the FIM specialist learned holes that start at column 0."""
    if not prefix.endswith("\n"):
        return ""
    for line in reversed(prefix.splitlines()):
        if line.strip():
            indent = line[:len(line) - len(line.lstrip())]
            if line.rstrip().endswith((":", "{")):
                indent += "\t" if indent.startswith("\t") else "    "
            return indent
    return ""


# ---------------------------------------------------------------- post-processing

def trim_repeated_suffix(middle: str, suffix: str) -> str:
    """Cut the middle where it starts repeating the text that follows the cursor."""
    first = next((line.strip() for line in suffix.splitlines() if line.strip()), "")
    if not first:
        return middle
    lines = middle.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if i > 0 and line.strip() == first:
            return "".join(lines[:i])
    # same-line overlap: model re-emits the rest of the current line
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and middle.rstrip("\n").endswith(rest_of_line):
        return middle.rstrip("\n")[: -len(rest_of_line)]
    return middle


def _block_indent(prefix: str) -> int:
    """Indentation of the block the cursor is in: the current line's own, or the cursor's
    column on a blank line."""
    current_line = prefix.rsplit("\n", 1)[-1]
    if current_line.strip():
        return len(current_line) - len(current_line.lstrip())
    return len(current_line)


def stop_at_block_end(middle: str, prefix: str) -> str:
    """Stop a block completion where indentation drops below the cursor's block."""
    base_indent = _block_indent(prefix)
    lines = middle.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and len(line) - len(line.lstrip()) < base_indent:
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def stream_done(prompt: Prompt, text: str) -> bool:
    """Whether the streamed ``text`` already holds everything post-processing will keep, so
    the client can stop reading (closing the stream stops the engine) instead of letting
    the model run on to max_tokens: a one-line completion ends with its first line, a block
    with the first later line that dedents below the cursor's block."""
    prefix = prompt.meta.get("prefix", "")
    text = prompt.meta.get("lead", "") + text
    if not prompt.meta.get("multiline", True):
        if not prefix.rsplit("\n", 1)[-1].strip():
            text = text.lstrip("\n")  # as postprocess_completion: the next line is the answer
        return "\n" in text
    base_indent = _block_indent(prefix)
    # a later line's indentation is known as soon as it has a visible character
    return any(line.strip() and len(line) - len(line.lstrip()) < base_indent
               for line in text.split("\n")[1:])


def follow_up(prompt: Prompt, raw: str, cut_short: bool) -> None:
    """A completion has no second pass: what the model wrote is the answer."""
    return None


def finished_part(prompt: Prompt, text: str) -> str:
    """The lines of a completion that ``max_tokens`` cut off that did end: none for a
    one-line completion (a line cut mid-expression is not code anyone would accept), the
    block's whole lines otherwise."""
    if not prompt.meta.get("multiline"):
        return ""
    return text[: text.rfind("\n") + 1]


def postprocess_completion(raw: str, prompt: Prompt) -> str:
    text = prompt.meta.get("lead", "") + strip_markers(raw)  # the indent the prompt ended with
    prefix, suffix = prompt.meta.get("prefix", ""), prompt.meta.get("suffix", "")
    text = trim_repeated_suffix(text, suffix)
    if not prompt.meta.get("multiline"):
        # one line: the rest of the current line, or the next line if the cursor is at a break
        text = text.lstrip("\n") if not prefix.rsplit("\n", 1)[-1].strip() else text
        text = text.split("\n", 1)[0]
    else:
        text = stop_at_block_end(text, prefix)
    return text.rstrip() if text.strip() else ""


# ---------------------------------------------------------------- the edit

@dataclass(frozen=True)
class CompletionPlan:
    prompt: Prompt
    doc: Document
    offset: int
    """The cursor: where the text goes."""
    held_back: str
    """Spaces cut from the end of the prompt (see :func:`plan`)."""


def plan(doc: Document, where: Where, spec, *, fair_base: bool = False,
         workspace: Workspace | None = None) -> CompletionPlan:
    """The completion prompt for the cursor at ``where.offset`` (the fair base: a plain
    continuation, :data:`FAIR_BASE_FORMAT`; else the specialist's ``prompt_format``).

    Spaces at the end of a non-blank line are held back from the prompt: tokenizers attach
    a word's leading space to the word, so a prompt ending in a space pushes the model
    towards odd tokens (``return .x``). The model writes the space itself and
    :func:`finish` removes it again.
    """
    ctx = cursor_context(doc, where.offset, spec.max_prompt_chars)
    prefix, held_back = ctx.prefix, ""
    line = prefix.rsplit("\n", 1)[-1]
    if line.strip() and line != line.rstrip(" \t"):
        held_back = line[len(line.rstrip(" \t")):]
        prefix = prefix[: len(prefix) - len(held_back)]
    fmt = FAIR_BASE_FORMAT if fair_base else spec.prompt_format
    start, end = near_cursor(doc, where.offset)
    repo = render(build(doc, start, end, workspace, cursor=where.offset), fmt,
                  doc.language or "python")
    path = workspace.key if workspace is not None and workspace.key else doc.uri
    context = CompletionContext(prefix, ctx.suffix, ctx.language, path, where.multiline, repo)
    return CompletionPlan(completion_prompt(context, fmt, spec.max_prompt_chars), doc,
                          where.offset, held_back)


def finish(plan: CompletionPlan, raw: str) -> Edit:
    """The text to insert at the cursor: post-processed, without the held-back spaces."""
    text = postprocess_completion(raw, plan.prompt)
    if plan.held_back:
        text = text[len(plan.held_back):] if text.startswith(plan.held_back) else text.lstrip(
            " \t")
    if not text.strip():
        raise EditError("empty answer")
    return Edit(plan.offset, plan.offset, text)


def problem(plan: CompletionPlan, raw: str) -> str | None:
    """Why a completion answer is unusable (routing's check), or None: empty, or the
    document no longer parses as cleanly once it is inserted (tree-sitter)."""
    try:
        check_parses(plan.doc, finish(plan, raw))
    except EditError as exc:
        return str(exc)
    return None


def label(plan: CompletionPlan) -> str:
    return NAME


# ---------------------------------------------------------------- the baseline LLM

def baseline_request(spec, prompt: Prompt, api: str) -> BaselineRequest:
    """Chat: the file with a ``<CURSOR>`` mark; completions: the plain prefix and the
    indent an editor types after Enter, as the fair base gets it (the baseline needs no
    FIM markers)."""
    prefix = prompt.meta.get("prefix", "")
    repo = _comments_as_code(prompt.meta.get("repo", ""))
    if api == "chat":
        others = f"Other files of the repository:\n{repo}\nThe file:\n" if repo else ""
        user = f"{others}{prefix}<CURSOR>{prompt.meta.get('suffix', '')}"
        messages = [{"role": "system", "content": CHAT_SYSTEM},
                    {"role": "user", "content": user}]
        return BaselineRequest(messages, None, max(spec.max_tokens, 256), None)
    return BaselineRequest(None, prompt.meta.get("repo", "") + prefix + editor_indent(prefix),
                           spec.max_tokens, list(spec.stop) or None)


def _comments_as_code(repo: str) -> str:
    """The repository context as code under path lines, for a chat model: the comment
    marks a small model's prompt needs only hide the code from a large one."""
    return "\n".join(line.removeprefix("# ").removeprefix("// ")
                     for line in repo.splitlines()) + ("\n" if repo else "")


def baseline_reply(raw: str, api: str, prompt: Prompt) -> str:
    """The reply as the specialist would have written it: a chat model's code out of its
    fences; a plain continuation with the indent its prompt ended with."""
    if api == "chat":
        return extract_code(raw)
    return editor_indent(prompt.meta.get("prefix", "")) + raw


# ---------------------------------------------------------------- the eval

def eval_target(task) -> tuple[Document, Where]:
    """The eval task as the editor holds it: its file, and the cursor at the hole."""
    doc = Document(f"file:///eval/{task.id}", task.prefix + task.suffix,
                   task.language or None)
    return doc, Where(offset=len(task.prefix), multiline=task.multiline)


def oracle(task) -> str:
    return task.reference


def scores(task, answer: str) -> dict:
    """The scores that need no execution."""
    return {"exact_match": similarity.exact_match(answer, task.reference),
            "edit_similarity": similarity.edit_similarity(answer, task.reference)}


def combined_scores(row: dict) -> dict:
    return {}


def execution(task, answer: str) -> Run | None:
    """HumanEval-style tests appended to the program, or the repository's test command."""
    if task.test:
        return Run(EXECUTION_METRIC, "program", task.program(answer))
    if task.meta.get("test_command"):
        return Run(EXECUTION_METRIC, "repo-tests")
    return None


# ---------------------------------------------------------------- training and the gate

def training_example(prefix: str, middle: str, suffix: str, multiline: bool, path: str,
                     budget: int, fmt: str = "fim-smol", repo: str = "") -> TrainingExample:
    """A fill-in-the-middle example in the served format, with the fair base's prompt for
    the gate; ``repo`` is the context from other files, rendered as :func:`plan` renders it
    for the same cursor (both prompts carry it, as both are served with it)."""
    ctx = CompletionContext(prefix=prefix, suffix=suffix, multiline=multiline, path=path,
                            repo=repo)
    prompt = completion_prompt(ctx, fmt, budget)
    return TrainingExample(prompt.text, middle + END_OF_TARGET,
                           {"middle": middle, "multiline": multiline,
                            "prefix_tail": _whole_lines_tail(prompt.meta["prefix"], 200),
                            "suffix_head": _whole_lines_head(prompt.meta["suffix"], 200),
                            "base_prompt": completion_prompt(ctx, FAIR_BASE_FORMAT,
                                                             budget).text})


def _whole_lines_tail(text: str, chars: int) -> str:
    """About ``chars`` of the end of ``text``, starting at a line start: a cut mid-line
    could halve an email or a secret, which scrubbing would then not recognise."""
    tail = text[-chars:]
    if len(text) > chars and "\n" in tail:
        tail = tail[tail.index("\n") + 1:]
    return tail


def _whole_lines_head(text: str, chars: int) -> str:
    head = text[:chars]
    if len(text) > chars and "\n" in head:
        head = head[:head.rindex("\n") + 1]
    return head


def gate_base_prompt(prompt_text: str, meta: dict) -> str:
    """The untuned base's fair prompt for a training example: the plain prefix."""
    return meta.get("base_prompt", prompt_text)


def gate_postprocess(prompt_text: str, meta: dict, raw: str) -> str:
    """The text the server would show for ``raw`` model output to ``prompt_text`` (the
    served FIM prompt, or the fair base's plain one, whose editor indent comes back)."""
    prefix = meta.get("prefix_tail", "")
    fair_base = not prompt_text.startswith(SERVED_PROMPT_START)
    lead = editor_indent(prefix) if fair_base else ""
    # the served format's name does not matter here: post-processing reads only the meta
    prompt = Prompt(NAME, FAIR_BASE_FORMAT if fair_base else "served", prompt_text,
                    {"prefix": prefix, "suffix": meta.get("suffix_head", ""),
                     "multiline": meta.get("multiline", False), "lead": lead})
    return postprocess_completion(raw, prompt)


def gate_scores(meta: dict, output: str) -> dict[str, float]:
    reference = meta["middle"]
    return {"exact_match": similarity.exact_match(output, reference),
            "edit_similarity": similarity.edit_similarity(output, reference)}


CARD_TEXT = ("fill-in-the-middle code completion (prompt format `fim-smol`: suffix first, then "
             "prefix, with SmolLM2's existing tokens `<issue_comment>`, `<issue_start>`, "
             "`<issue_closed>` as markers; the middle ends with `<|endoftext|>`)")
"""What the adapter's model card says this task's adapter teaches."""
