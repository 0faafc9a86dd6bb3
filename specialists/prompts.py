"""Prompt formats per task, and the post-processing that turns raw model text into an edit.

A typed :class:`Prompt` sits between building the context (server side) and calling the
model. Every format is plain text for ``/v1/completions``: vLLM ignores ``suffix`` there, so
fill-in-the-middle markers go into the prompt itself.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

# SmolLM2's tokenizer has no FIM tokens; these existing single tokens serve as markers,
# and the completion adapter is what teaches the model their meaning.
SMOL_FIM = ("<issue_start>", "<issue_comment>", "<issue_closed>")
QWEN_FIM = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
STARCODER_FIM = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
FIM_MARKERS = {"fim-smol": SMOL_FIM, "fim-qwen": QWEN_FIM, "fim-starcoder": STARCODER_FIM}
ALL_MARKERS = tuple(m for markers in FIM_MARKERS.values() for m in markers) + (
    "<|endoftext|>", "<|im_end|>", "<|im_start|>", "<file_sep>",
)

DOC_SYSTEM = "You write concise, accurate docstrings for code. Reply with the docstring text only."
REFACTOR_SYSTEM = (
    "You refactor code exactly as instructed, keeping its behaviour. "
    "Reply with the rewritten code only."
)

READY_INSTRUCTIONS = {
    "simplify": "Simplify this code without changing its behaviour.",
    "type-hints": "Add type hints to the function signatures.",
    "extract-function": "Extract the repeated or self-contained logic into a helper function.",
    "comprehension": "Rewrite loops that build lists as list comprehensions.",
    "early-return": "Use early returns to reduce nesting.",
}


@dataclass(frozen=True)
class CompletionContext:
    """What the completion specialist sees around the cursor."""

    prefix: str
    suffix: str = ""
    language: str = "python"
    path: str = ""
    multiline: bool = False


@dataclass(frozen=True)
class Prompt:
    task: str
    format: str
    text: str
    meta: dict = field(default_factory=dict)


def _chatml(system: str, user: str) -> str:
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


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


def completion_prompt(ctx: CompletionContext, fmt: str, budget: int) -> Prompt:
    prefix, suffix = _clip(ctx.prefix, ctx.suffix, budget)
    if fmt == "prefix":
        text = prefix
    elif fmt == "fim-smol":
        pre, suf, mid = SMOL_FIM
        # suffix first (SPM) so the model's middle runs straight on from the prefix
        text = f"{suf}{suffix}{pre}{prefix}{mid}"
    elif fmt in FIM_MARKERS:
        pre, suf, mid = FIM_MARKERS[fmt]
        text = f"{pre}{prefix}{suf}{suffix}{mid}"
    else:
        raise ValueError(f"{fmt!r} is not a completion format")
    return Prompt("completion", fmt, text, {"prefix": prefix, "suffix": suffix,
                                             "multiline": ctx.multiline})


def doc_prompt(code: str, language: str, budget: int) -> Prompt:
    code = code[:budget]
    user = f"Write the docstring for this {language} code:\n```{language}\n{code}\n```"
    return Prompt("doc", "chatml-doc", _chatml(DOC_SYSTEM, user), {"code": code})


def refactor_prompt(code: str, instruction: str, language: str, budget: int) -> Prompt:
    code = code[:budget]
    user = f"Instruction: {instruction}\n```{language}\n{code}\n```"
    return Prompt("refactor", "chatml-refactor", _chatml(REFACTOR_SYSTEM, user),
                  {"code": code, "instruction": instruction})


FORMATS = {"prefix", "fim-smol", "fim-qwen", "fim-starcoder", "chatml-doc", "chatml-refactor"}


# ---------------------------------------------------------------- post-processing

def strip_markers(text: str) -> str:
    for marker in ALL_MARKERS:
        text = text.replace(marker, "")
    return text


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


def completion_done(prompt: Prompt, text: str) -> bool:
    """Whether the streamed ``text`` already holds everything post-processing will keep, so
    the client can stop reading (closing the stream stops the engine) instead of letting
    the model run on to max_tokens: a one-line completion ends with its first line, a block
    with the first later line that dedents below the cursor's block."""
    if prompt.task != "completion":
        return False
    prefix = prompt.meta.get("prefix", "")
    if not prompt.meta.get("multiline", True):
        if not prefix.rsplit("\n", 1)[-1].strip():
            text = text.lstrip("\n")  # as postprocess_completion: the next line is the answer
        return "\n" in text
    base_indent = _block_indent(prefix)
    # a later line's indentation is known as soon as it has a visible character
    return any(line.strip() and len(line) - len(line.lstrip()) < base_indent
               for line in text.split("\n")[1:])


def postprocess_completion(raw: str, prompt: Prompt) -> str:
    text = strip_markers(raw)
    prefix, suffix = prompt.meta.get("prefix", ""), prompt.meta.get("suffix", "")
    text = trim_repeated_suffix(text, suffix)
    if not prompt.meta.get("multiline"):
        # one line: the rest of the current line, or the next line if the cursor is at a break
        text = text.lstrip("\n") if not prefix.rsplit("\n", 1)[-1].strip() else text
        text = text.split("\n", 1)[0]
    else:
        text = stop_at_block_end(text, prefix)
    return text.rstrip() if text.strip() else ""


_FENCE = re.compile(r"```[\w+-]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(raw: str) -> str:
    """The code in a model reply: the first fenced block if any, else the whole text."""
    raw = strip_markers(raw)
    match = _FENCE.search(raw)
    return (match.group(1) if match else raw).strip("\n")


def reindent(code: str, indent: str) -> str:
    body = textwrap.dedent(code)
    return "".join(indent + line if line.strip() else line
                   for line in body.splitlines(keepends=True))


def postprocess_docstring(raw: str, indent: str) -> str:
    """Model text → a triple-quoted docstring block indented for the body of a def/class."""
    text = extract_code(raw).strip()
    text = re.sub(r'^[rRuU]?("""|\'\'\')', "", text)
    text = re.sub(r'("""|\'\'\')$', "", text).strip()
    text = text.replace('"""', "'''")
    if not text:
        return ""
    lines = textwrap.dedent(text).splitlines()
    if len(lines) == 1:
        return f'{indent}"""{lines[0].strip()}"""\n'
    body = "\n".join(indent + line if line.strip() else "" for line in lines[1:])
    return f'{indent}"""{lines[0].strip()}\n{body}\n{indent}"""\n'


def postprocess_refactor(raw: str, original: str) -> str:
    code = extract_code(raw)
    first = next((ln for ln in original.splitlines() if ln.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    out = reindent(code, indent)
    if original.endswith("\n") and not out.endswith("\n"):
        out += "\n"
    return out
