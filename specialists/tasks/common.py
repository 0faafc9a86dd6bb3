"""What the task modules share: the typed prompt, the ChatML wrapper, marker stripping, code
out of a fenced reply, the :class:`Edit` a task produces and the parse check on it.

A typed :class:`Prompt` sits between building the context and calling the model. Every
format is plain text for ``/v1/completions``: vLLM ignores ``suffix`` there, so
fill-in-the-middle markers go into the prompt itself.
"""

from __future__ import annotations

import ast
import difflib
import re
import textwrap
from dataclasses import dataclass, field

import tree_sitter

from covey_specialists.document import Document, encode, offset_of_byte

# SmolLM2's tokenizer has no FIM tokens; these existing single tokens serve as markers,
# and the completion adapter is what teaches the model their meaning.
SMOL_FIM = ("<issue_start>", "<issue_comment>", "<issue_closed>")
QWEN_FIM = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
STARCODER_FIM = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
DEEPSEEK_FIM = ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")
CODELLAMA_FIM = ("<PRE> ", " <SUF>", " <MID>")  # its paper's spacing around the tokens
FIM_MARKERS = {"fim-smol": SMOL_FIM, "fim-qwen": QWEN_FIM, "fim-starcoder": STARCODER_FIM,
               "fim-deepseek": DEEPSEEK_FIM, "fim-codellama": CODELLAMA_FIM}
"""Prefix, suffix and middle markers of each fill-in-the-middle format."""
ALL_MARKERS = tuple(m.strip() for markers in FIM_MARKERS.values() for m in markers) + (
    "<|endoftext|>", "<|im_end|>", "<|im_start|>", "<file_sep>",
)


@dataclass(frozen=True)
class Prompt:
    task: str
    format: str
    text: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BaselineRequest:
    """What a task asks an OpenAI-compatible LLM: chat messages, or plain completion text."""

    messages: list[dict] | None
    prompt: str | None
    max_tokens: int
    stop: list[str] | None


@dataclass(frozen=True)
class Run:
    """What to execute to decide an answer's pass/fail score; the eval's sandbox runs it.

    ``kind`` names how: ``program`` (``program`` is a whole Python program), ``repo-tests``
    (the task's repository with the answer filled in, under its test command),
    ``module-tests`` (the task's module with the answer swapped in, under its tests) or
    ``unparsed`` (nothing can run: the answer fails without running).
    """

    metric: str
    kind: str
    program: str = ""


@dataclass(frozen=True)
class TrainingExample:
    """A training example as a task builds it (covey_training adds source and scrubbing)."""

    prompt: str
    target: str
    meta: dict = field(default_factory=dict)


def chatml(system: str, user: str) -> str:
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def chat_user_turn(prompt_text: str) -> str:
    """The user turn of a ChatML prompt, without the template tokens."""
    return prompt_text.split("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]


def chat_baseline_request(system: str, spec, prompt: Prompt, api: str) -> BaselineRequest:
    """For a ChatML task: chat gets its system and user turns; completions its prompt text."""
    if api == "chat":
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": chat_user_turn(prompt.text)}]
        return BaselineRequest(messages, None, max(spec.max_tokens, 256), None)
    return BaselineRequest(None, prompt.text, spec.max_tokens, list(spec.stop) or None)


def changed_diff_lines(before: list[str], after: list[str]) -> list[str]:
    """The lines a unified diff removes (``-``) and adds (``+``), without its headers."""
    diff = difflib.unified_diff(before, after, lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def strip_markers(text: str) -> str:
    for marker in ALL_MARKERS:
        text = text.replace(marker, "")
    return text


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


def parse_python(code: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return None


# ---------------------------------------------------------------------- edits

class EditError(ValueError):
    """An edit that cannot be planned or applied; the message is shown to the user."""


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` of the document with ``new_text``."""

    start: int
    end: int
    new_text: str

    def apply(self, text: str) -> str:
        return text[: self.start] + self.new_text + text[self.end:]


def check_parses(doc: Document, edit: Edit) -> None:
    """Raise unless the edited document parses at least as cleanly as before."""
    if doc.tree is None:
        return  # no grammar: nothing to check against
    parser = tree_sitter.Parser(doc.tree.language)
    after = parser.parse(encode(edit.apply(doc.text))).root_node
    before_errors = _error_count(doc.tree.root_node)
    after_errors = _error_count(after)
    if after_errors > before_errors:
        row = _first_error_row(after)
        where = f" (line {row + 1})" if row is not None else ""
        raise EditError(f"the suggested edit does not parse{where}; not applied")


def _error_count(node) -> int:
    if not node.has_error:
        return 0
    count = 1 if (node.is_error or node.is_missing) else 0
    return count + sum(_error_count(c) for c in node.children)


def _first_error_row(node) -> int | None:
    if node.is_error or node.is_missing:
        return node.start_point[0]
    for child in node.children:
        if child.has_error:
            return _first_error_row(child)
    return None


def unified_diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def line_start(doc: Document, byte: int) -> int:
    offset = offset_of_byte(doc, byte)
    return doc.text.rfind("\n", 0, offset) + 1


def next_line_start(doc: Document, byte: int) -> int:
    offset = offset_of_byte(doc, byte)
    nl = doc.text.find("\n", offset)
    return len(doc.text) if nl < 0 else nl + 1
