"""Docstrings: prompts, post-processing, checks, the edit, eval scores and training examples.

Prompts, per kind of model: the specialist and the untuned base both get a zero-shot
ChatML turn with the same instruction (the base model is an instruct model, so that is
its fair prompt too); the baseline LLM gets the same turn as chat messages, or the same
text on ``/v1/completions``.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

import tree_sitter

from covey_specialists.document import DEFINITION_TYPES, Document, offset_of_byte
from covey_specialists.repo_context import Workspace, used_definitions
from covey_specialists.tasks import doc_params, similarity
from covey_specialists.tasks.common import (
    BaselineRequest,
    Edit,
    EditError,
    Prompt,
    Run,
    TrainingExample,
    chat_baseline_request,
    chatml,
    check_parses,
    extract_code,
    indent_of,
    line_start,
    next_line_start,
    parse_python,
)
from covey_specialists.tasks.protocol import Where

NAME = "doc"
FORMATS = {"chatml-doc"}
SYSTEM = "You write concise, accurate docstrings for code. Reply with the docstring text only."
END_OF_TARGET = "<|im_end|>"
SERVED_PROMPT_START = f"<|im_start|>system\n{SYSTEM}"
EXECUTION_METRIC = None
VALIDATE_BY_RUNNING = False
GATE_PRIMARY, GATE_SECONDARY = "rouge_l", "structure"
GATE_MAX_NEW_TOKENS = 160
SHOWS_ONLY_SURE = False
"""A docstring the user asked for is always answered."""
FAIR_BASE_FORMAT = "chatml-doc"
"""The base is an instruct model: the same zero-shot chat turn is its fair prompt."""
SPREAD_HELDOUT = False
TRAIN_BUDGET = 1400
"""Characters of prompt context in a training example (the served format)."""
TRAIN_PER_FILE = 4
"""Training examples per source file by default (``covey train --per-file``)."""

_JS_PARAMS = re.compile(r"\(([^)]*)\)")
"""The first parenthesised list of a definition: its parameters (function, method, arrow)."""
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_DEFINITION_LINE = re.compile(r"\s*(async\s+def|def|class|function|export)\b")


def doc_prompt(code: str, language: str, budget: int, repo: str = "") -> Prompt:
    """``repo``: the definitions the code uses from other files (comment lines), shown
    before it."""
    code = code[:budget]
    used = f"It uses, from other files:\n```{language}\n{repo}```\n" if repo else ""
    user = f"{used}Write the docstring for this {language} code:\n```{language}\n{code}\n```"
    return Prompt(NAME, "chatml-doc", chatml(SYSTEM, user),
                  {"code": code, "language": language, "repo": repo})


def shrink(prompt: Prompt, keep: float) -> Prompt:
    """The prompt with the first ``keep`` of its code: the definition and its parameters
    come first."""
    code = prompt.meta["code"]
    return doc_prompt(code, prompt.meta["language"], int(len(code) * keep))  # no repo: room


def stream_done(prompt: Prompt, text: str) -> bool:
    return False  # the reply ends with the model's own end of turn


def finished_part(prompt: Prompt, text: str) -> str:
    return text  # a reply cut short keeps its words: the follow-up finishes it


def follow_up(prompt: Prompt, raw: str, cut_short: bool) -> doc_params.ParamFiller | None:
    """What finishes a docstring (Python) or JSDoc block (other languages) that misses
    parameters (see :mod:`doc_params`), or None when it names them all. ``cut_short``: the
    answer hit its token limit, so its last line is unfinished and goes. An empty answer
    stays empty: there is nothing to finish."""
    language = "python" if prompt.meta.get("language") == "python" else "javascript"
    text = docstring_text(raw) if language == "python" else jsdoc_text(raw)
    if not text.strip():
        return None
    if cut_short and "\n" in text.strip("\n"):
        text = text.strip("\n").rsplit("\n", 1)[0]
    missing = missing_params(prompt.meta.get("code", ""), text, language, starred=True)
    return doc_params.ParamFiller(text, missing, language) if missing else None


# ---------------------------------------------------------------- post-processing

def docstring_text(raw: str) -> str:
    """Model text → the docstring's text: out of fences and quotes, dedented."""
    text = extract_code(raw).strip()
    text = re.sub(r'^[rRuU]?("""|\'\'\')', "", text)
    text = re.sub(r'("""|\'\'\')$', "", text).strip()
    return textwrap.dedent(text.replace('"""', "'''"))


def postprocess_docstring(raw: str, indent: str) -> str:
    """Model text → a triple-quoted docstring block indented for the body of a def/class."""
    text = docstring_text(raw)
    if not text:
        return ""
    lines = text.splitlines()
    if len(lines) == 1:
        return f'{indent}"""{lines[0].strip()}"""\n'
    body = "\n".join(indent + line if line.strip() else "" for line in lines[1:])
    return f'{indent}"""{lines[0].strip()}\n{body}\n{indent}"""\n'


def jsdoc_text(raw: str) -> str:
    """Model text → a JSDoc block's text: out of fences, ``/** */`` and leading ``*``."""
    text = extract_code(raw).strip()
    text = text.removeprefix("/**").removesuffix("*/")
    lines = [ln.strip()[1:].rstrip() if ln.strip().startswith("*") else ln.rstrip()
             for ln in text.splitlines()]  # plain lines keep their indent: idempotent
    return textwrap.dedent("\n".join(lines)).strip("\n")


def jsdoc(raw: str, indent: str) -> str:
    lines = jsdoc_text(raw).splitlines()
    if not any(ln.strip() for ln in lines):
        return ""
    body = "".join(f"{indent} *{' ' + ln if ln.strip() else ''}\n" for ln in lines)
    return f"{indent}/**\n{body.replace('*/', '* /')}{indent} */\n"


# ---------------------------------------------------------------- answer checks

def function_params(code: str, language: str = "python", starred: bool = False) -> list[str]:
    """The parameter names of the first function in ``code`` (not ``self``/``cls``);
    ``starred``: ``*args`` and ``**kw`` written as a Python docstring names them."""
    if language == "python":
        tree = parse_python(code)
        fn = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))),
                  None) if tree else None
        if fn is None:
            return []
        a = fn.args
        ordered = (*a.posonlyargs, *a.args, a.vararg, *a.kwonlyargs, a.kwarg)
        stars = {a.vararg: "*", a.kwarg: "**"} if starred else {}
        return [stars.get(x, "") + x.arg for x in ordered
                if x is not None and x.arg not in ("self", "cls")]
    match = _JS_PARAMS.search(code)
    if not match:
        return []
    names = []
    for part in match.group(1).split(","):
        part = part.strip().lstrip(".").split("=")[0].split(":")[0].strip()
        if _IDENT.fullmatch(part):
            names.append(part)
    return names


def missing_params(code: str, docstring: str, language: str = "python",
                   starred: bool = False) -> list[str]:
    """Parameters of the function in ``code`` that ``docstring`` never names."""
    return [p for p in function_params(code, language, starred)
            if not re.search(rf"(?<![\w$]){re.escape(p.lstrip('*'))}(?![\w$])", docstring)]


def docstring_problem(code: str, docstring: str, language: str = "python") -> str | None:
    """No docstring text, or one that leaves parameters of the function unmentioned."""
    if not docstring.strip():
        return "empty docstring"
    missing = missing_params(code, docstring, language)
    if missing:
        return f"docstring misses parameter{'s' if len(missing) > 1 else ''} " \
               f"{', '.join(missing)}"
    return None


# ---------------------------------------------------------------- the edit

@dataclass(frozen=True)
class DocPlan:
    prompt: Prompt
    doc: Document
    name: str
    language: str
    insert_at: int
    replace_end: int
    """End of an existing docstring being replaced (== ``insert_at`` when inserting)."""
    indent: str


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


def plan(doc: Document, where: Where, spec, *, fair_base: bool = False,
         workspace: Workspace | None = None) -> DocPlan:
    """A docstring for the innermost definition around ``where.line`` (the same prompt for
    the fair base: see :data:`FAIR_BASE_FORMAT`)."""
    budget = spec.max_prompt_chars
    node = definition_at(doc, where.line)
    name_node = node.child_by_field_name("name")
    name = doc.source(name_node) if name_node is not None else "this definition"
    code = doc.source(_statement(node))  # with its decorators
    repo = used_definitions(doc, offset_of_byte(doc, node.start_byte),
                            offset_of_byte(doc, node.end_byte), workspace)
    prompt = doc_prompt(code, doc.language or "python", budget, repo)
    if doc.language == "python":
        return _python_doc_plan(doc, node, prompt, name)
    # JavaScript: a JSDoc block on the lines above the definition
    at = line_start(doc, _statement(node).start_byte)
    indent = indent_of(doc.line(doc.position_at(at)[0]))
    existing = _jsdoc_before(doc, _statement(node))
    start = existing[0] if existing else at
    end = existing[1] if existing else at
    return DocPlan(prompt, doc, name, "javascript", start, end, indent)


def _python_doc_plan(doc: Document, node, prompt: Prompt, name: str) -> DocPlan:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        raise EditError(f"{name} has no body")
    if body.start_point[0] == node.start_point[0]:
        raise EditError(f"{name} is written on one line; put its body on its own line first")
    first = body.named_children[0]
    indent = indent_of(doc.line(first.start_point[0]))
    start = line_start(doc, first.start_byte)
    end = start
    if first.type == "expression_statement" and first.named_children and \
            first.named_children[0].type == "string":
        end = next_line_start(doc, first.end_byte)  # replace the existing docstring
    return DocPlan(prompt, doc, name, "python", start, end, indent)


def finish(plan: DocPlan, raw: str) -> Edit:
    if plan.language == "python":
        block = postprocess_docstring(raw, plan.indent)
    else:
        block = jsdoc(raw, plan.indent)
    if not block.strip():
        raise EditError(f"the model wrote no docstring for {plan.name}")
    edit = Edit(plan.insert_at, plan.replace_end, block)
    check_parses(plan.doc, edit)
    return edit


def problem(plan: DocPlan, raw: str) -> str | None:
    """Why a docstring answer is unusable (routing's check), or None: what :func:`finish`
    refuses, or a docstring that misses parameters."""
    try:
        edit = finish(plan, raw)
    except EditError as exc:
        return str(exc)
    return docstring_problem(plan.prompt.meta.get("code", ""), edit.new_text, plan.language)


def _statement(node):
    """The node that owns the lines a doc comment goes above (export, decorator…)."""
    while node.parent is not None and node.parent.type in (
            "export_statement", "decorated_definition", "lexical_declaration",
            "variable_declarator"):
        node = node.parent
    return node


def _jsdoc_before(doc: Document, node) -> tuple[int, int] | None:
    prev = node.prev_sibling
    if prev is not None and prev.type == "comment" and doc.source(prev).startswith("/**") \
            and node.start_point[0] - prev.end_point[0] <= 1:
        return line_start(doc, prev.start_byte), next_line_start(doc, prev.end_byte)
    return None


# ---------------------------------------------------------------- the baseline LLM

def baseline_request(spec, prompt: Prompt, api: str) -> BaselineRequest:
    return chat_baseline_request(SYSTEM, spec, prompt, api)


def baseline_reply(raw: str, api: str, prompt: Prompt) -> str:
    return raw  # post-processing extracts the code itself


# ---------------------------------------------------------------- the eval

def label(plan: DocPlan) -> str:
    return f"docstring for {plan.name}"


def eval_target(task) -> tuple[Document, Where]:
    """The task's function as a file, with the cursor on its ``def`` (the answer is the
    docstring block as it would be inserted: indented, triple-quoted)."""
    doc = Document(f"file:///eval/{task.id}", task.code, task.language or None)
    line = next((i for i, text in enumerate(task.code.splitlines())
                 if _DEFINITION_LINE.match(text)), 0)
    return doc, Where(line=line)


def oracle(task) -> str:
    return postprocess_docstring(task.reference, body_indent(task.code))


def combined_scores(row: dict) -> dict:
    return {}


def insert_docstring(code: str, block: str) -> str:
    """Put a docstring block (already indented for the body) after the def's signature."""
    tree = ast.parse(code)
    fn = tree.body[0]
    lines = code.splitlines(keepends=True)
    at = fn.body[0].lineno - 1
    if block and not block.endswith("\n"):
        block += "\n"
    return "".join(lines[:at]) + block + "".join(lines[at:])


def body_indent(code: str) -> str:
    fn = ast.parse(code).body[0]
    line = code.splitlines()[fn.body[0].lineno - 1]
    return line[: len(line) - len(line.lstrip())]


def scores(task, answer: str) -> dict:
    """``answer`` is the docstring as it would be inserted (indented, triple-quoted)."""
    text = ""
    parses = 0.0
    if answer.strip():
        try:
            fn = ast.parse(insert_docstring(task.code, answer)).body[0]
            text = ast.get_docstring(fn) or ""
            parses = float(bool(text))
        except SyntaxError:
            text = answer
    params = task.meta.get("params", [])
    documented = (sum(1 for p in params if p in similarity.tokens(text) or p in text)
                  / len(params) if params else (1.0 if text else 0.0))
    return {"rouge_l": similarity.rouge_l(text, task.reference),
            "bleu": similarity.bleu(text, task.reference),
            "parses": parses, "params_documented": documented}


def execution(task, answer: str) -> Run | None:
    return None  # a docstring has no tests to run


# ---------------------------------------------------------------- training and the gate

def training_example(code: str, docstring: str, budget: int, language: str = "python"
                     ) -> TrainingExample:
    """The definition without its docstring → the docstring text."""
    prompt = doc_prompt(code, language, budget)
    return TrainingExample(prompt.text, docstring + END_OF_TARGET,
                           {"code": code, "docstring": docstring})


def gate_base_prompt(prompt_text: str, meta: dict) -> str:
    return prompt_text  # zero-shot chat is the base's fair prompt too


def gate_postprocess(prompt_text: str, meta: dict, raw: str) -> str:
    return postprocess_docstring(raw, "    ")


def docstring_structure(block: str, code: str) -> dict[str, bool]:
    """Checks on a post-processed docstring block inserted into ``code``'s definition."""
    text = block.strip().strip('"').strip()
    first = text.splitlines()[0].strip() if text else ""
    checks = {
        "non_empty": bool(text),
        "summary_line": bool(first) and len(first) <= 120
        and not first.startswith(("def ", "class ")),
        "no_code_echo": not any(line.strip().startswith(("def ", "class ", "return "))
                                for line in text.splitlines()),
    }
    checks["inserts_cleanly"] = bool(text) and _inserts_cleanly(block, code)
    return checks


def _inserts_cleanly(block: str, code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                         | ast.ClassDef)), None)
    if node is None:
        return False
    lines = code.splitlines(keepends=True)
    at = node.body[0].lineno - 1
    new = "".join(lines[:at]) + block + "".join(lines[at:])
    try:
        new_tree = ast.parse(new)
    except SyntaxError:
        return False
    new_node = next(n for n in new_tree.body if isinstance(n, type(node)))
    return ast.get_docstring(new_node) is not None


def gate_scores(meta: dict, output: str) -> dict[str, float]:
    checks = docstring_structure(output, meta["code"])
    text = output.strip().strip('"').strip()
    return {"rouge_l": similarity.rouge_l(text, meta["docstring"]),
            "structure": float(all(checks.values())),
            **{k: float(v) for k, v in checks.items()}}


CARD_TEXT = ("docstring generation (ChatML prompt `chatml-doc`; reply is the docstring text, "
             "ending with `<|im_end|>`)")
"""What the adapter's model card says this task's adapter teaches."""
