"""Docstring and refactor edits: what to ask the model, and how its answer becomes an edit.

Shared by the LSP code actions and the one-shot CLI commands. Each task is split in two
pure steps around the model call: ``plan_*`` reads the document and builds the prompt;
``finish_*`` turns the model's text into an :class:`Edit`, or raises :class:`EditError`
with a sentence a user can read (e.g. the result does not parse).
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass

import tree_sitter

from covey_server.context import DEFINITION_TYPES, Document, cursor_context, encode
from covey_server.triggers import Trigger
from covey_specialists.prompts import (
    CompletionContext,
    Prompt,
    completion_prompt,
    doc_prompt,
    extract_code,
    postprocess_completion,
    postprocess_docstring,
    postprocess_refactor,
    refactor_prompt,
)
from covey_specialists.table import Specialist
from covey_specialists.validation import docstring_problem, refactor_problem


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


@dataclass(frozen=True)
class DocPlan:
    prompt: Prompt
    name: str
    language: str
    insert_at: int
    replace_end: int
    """End of an existing docstring being replaced (== ``insert_at`` when inserting)."""
    indent: str


@dataclass(frozen=True)
class RefactorPlan:
    prompt: Prompt
    start: int
    end: int
    original: str
    language: str


# ---------------------------------------------------------------------- completion

@dataclass(frozen=True)
class CompletionPlan:
    prompt: Prompt
    held_back: str
    """Spaces cut from the end of the prompt (see :func:`plan_completion`)."""


def plan_completion(doc: Document, offset: int, trigger: Trigger, spec: Specialist,
                    path: str = "") -> CompletionPlan:
    """The completion prompt for a cursor at ``offset``.

    Spaces at the end of a non-blank line are held back from the prompt: tokenizers attach
    a word's leading space to the word, so a prompt ending in a space pushes the model
    towards odd tokens (``return .x``). The model writes the space itself and
    :func:`finish_completion` removes it again.
    """
    ctx = cursor_context(doc, offset, spec.max_prompt_chars)
    prefix, held_back = ctx.prefix, ""
    line = prefix.rsplit("\n", 1)[-1]
    if line.strip() and line != line.rstrip(" \t"):
        held_back = line[len(line.rstrip(" \t")):]
        prefix = prefix[: len(prefix) - len(held_back)]
    context = CompletionContext(prefix, ctx.suffix, ctx.language, path, trigger.multiline)
    return CompletionPlan(completion_prompt(context, spec.prompt_format,
                                            spec.max_prompt_chars), held_back)


def finish_completion(plan: CompletionPlan, raw: str) -> str:
    """The text to insert at the cursor: post-processed, without the held-back spaces."""
    text = postprocess_completion(raw, plan.prompt)
    if plan.held_back:
        text = text[len(plan.held_back):] if text.startswith(plan.held_back) else text.lstrip(
            " \t")
    return text if text.strip() else ""


# ---------------------------------------------------------------------- docstrings

def definition_at(doc: Document, line: int) -> tree_sitter.Node:
    """The innermost function or class whose lines include ``line``."""
    if doc.tree is None:
        raise EditError(f"cannot parse this document (language: {doc.language or 'unknown'})")
    if not 0 <= line < doc.line_count:
        raise EditError(f"line {line + 1} is outside the document (1–{doc.line_count})")
    kinds = DEFINITION_TYPES.get(doc.language or "", {})
    best = None
    stack = [doc.tree.root_node]
    while stack:
        node = stack.pop()
        if node.start_point[0] <= line <= node.end_point[0]:
            if node.type in kinds and node.type != "arrow_function":
                best = node  # children are visited later, so the innermost wins
            stack.extend(node.children)
    if best is None:
        raise EditError(f"no function or class at line {line + 1}")
    return best


def plan_docstring(doc: Document, line: int, budget: int) -> DocPlan:
    node = definition_at(doc, line)
    name_node = node.child_by_field_name("name")
    name = doc.source(name_node) if name_node is not None else "this definition"
    code = _with_decorators(doc, node)
    prompt = doc_prompt(code, doc.language or "python", budget)
    if doc.language == "python":
        return _python_doc_plan(doc, node, prompt, name)
    # JavaScript: a JSDoc block on the lines above the definition
    at = _line_start(doc, _statement(node).start_byte)
    indent = _indent_of(doc.line(doc.position_at(at)[0]))
    existing = _jsdoc_before(doc, _statement(node))
    start = existing[0] if existing else at
    end = existing[1] if existing else at
    return DocPlan(prompt, name, "javascript", start, end, indent)


def _python_doc_plan(doc: Document, node, prompt: Prompt, name: str) -> DocPlan:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        raise EditError(f"{name} has no body")
    if body.start_point[0] == node.start_point[0]:
        raise EditError(f"{name} is written on one line; put its body on its own line first")
    first = body.named_children[0]
    indent = _indent_of(doc.line(first.start_point[0]))
    start = _line_start(doc, first.start_byte)
    end = start
    if first.type == "expression_statement" and first.named_children and \
            first.named_children[0].type == "string":
        end = _next_line_start(doc, first.end_byte)  # replace the existing docstring
    return DocPlan(prompt, name, "python", start, end, indent)


def finish_docstring(doc: Document, plan: DocPlan, raw: str) -> Edit:
    if plan.language == "python":
        block = postprocess_docstring(raw, plan.indent)
    else:
        block = jsdoc(raw, plan.indent)
    if not block.strip():
        raise EditError(f"the model wrote no docstring for {plan.name}")
    edit = Edit(plan.insert_at, plan.replace_end, block)
    check_parses(doc, edit)
    return edit


def jsdoc(raw: str, indent: str) -> str:
    text = extract_code(raw).strip()
    text = text.removeprefix("/**").removesuffix("*/")
    lines = [ln.strip().removeprefix("*").rstrip() for ln in text.splitlines()]
    lines = textwrap.dedent("\n".join(lines)).strip("\n").splitlines()
    if not any(ln.strip() for ln in lines):
        return ""
    body = "".join(f"{indent} *{' ' + ln if ln.strip() else ''}\n" for ln in lines)
    return f"{indent}/**\n{body.replace('*/', '* /')}{indent} */\n"


def _statement(node):
    """The node that owns the lines a doc comment goes above (export, decorator…)."""
    while node.parent is not None and node.parent.type in (
            "export_statement", "decorated_definition", "lexical_declaration",
            "variable_declarator"):
        node = node.parent
    return node


def _with_decorators(doc: Document, node) -> str:
    return doc.source(_statement(node))


def _jsdoc_before(doc: Document, node) -> tuple[int, int] | None:
    prev = node.prev_sibling
    if prev is not None and prev.type == "comment" and doc.source(prev).startswith("/**") \
            and node.start_point[0] - prev.end_point[0] <= 1:
        return _line_start(doc, prev.start_byte), _next_line_start(doc, prev.end_byte)
    return None


# ---------------------------------------------------------------------- refactoring

def plan_refactor(doc: Document, first_line: int, last_line: int, instruction: str,
                  budget: int) -> RefactorPlan:
    """Whole lines ``first_line..last_line`` (0-based, inclusive) rewritten per instruction."""
    if not instruction or not instruction.strip():
        raise EditError("no refactoring instruction given")
    if first_line > last_line:
        first_line, last_line = last_line, first_line
    if first_line < 0 or last_line >= doc.line_count:
        raise EditError(f"lines {first_line + 1}–{last_line + 1} are outside the document "
                        f"(1–{doc.line_count})")
    start = doc.offset_at(first_line, 0)
    end = doc.offset_at(last_line + 1, 0) if last_line + 1 < doc.line_count else len(doc.text)
    original = doc.text[start:end]
    if not original.strip():
        raise EditError("the selection is empty")
    if len(original) > budget:
        raise EditError(f"the selection is {len(original)} characters; the refactor "
                        f"specialist takes at most {budget}")
    prompt = refactor_prompt(original, instruction.strip(), doc.language or "text", budget)
    return RefactorPlan(prompt, start, end, original, doc.language or "")


def finish_refactor(doc: Document, plan: RefactorPlan, raw: str) -> Edit:
    code = postprocess_refactor(raw, plan.original)
    if not code.strip():
        raise EditError("the model returned no code")
    if code == plan.original:
        raise EditError("the model returned the code unchanged")
    edit = Edit(plan.start, plan.end, code)
    check_parses(doc, edit)
    return edit


# ---------------------------------------------------------------------- checks and output

def completion_problem(doc: Document, offset: int, plan: CompletionPlan, raw: str
                       ) -> str | None:
    """Why a completion answer is unusable (escalation's check), or None."""
    text = finish_completion(plan, raw)
    if not text:
        return "empty answer"
    try:
        check_parses(doc, Edit(offset, offset, text))
    except EditError as exc:
        return str(exc)
    return None


def edit_problem(doc: Document, plan: DocPlan | RefactorPlan, raw: str, finish) -> str | None:
    """Why a docstring or refactor answer is unusable (escalation's check), or None: what
    ``finish`` refuses, a docstring that misses parameters, a refactor that changes the
    functions' interface."""
    try:
        edit = finish(doc, plan, raw)
    except EditError as exc:
        return str(exc)
    if isinstance(plan, DocPlan):
        return docstring_problem(plan.prompt.meta.get("code", ""), edit.new_text, plan.language)
    return refactor_problem(plan.original, edit.new_text, plan.language)


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


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _line_start(doc: Document, byte: int) -> int:
    offset = _offset(doc, byte)
    return doc.text.rfind("\n", 0, offset) + 1


def _next_line_start(doc: Document, byte: int) -> int:
    offset = _offset(doc, byte)
    nl = doc.text.find("\n", offset)
    return len(doc.text) if nl < 0 else nl + 1


def _offset(doc: Document, byte: int) -> int:
    from covey_server.context import offset_of_byte

    return offset_of_byte(doc, byte)
