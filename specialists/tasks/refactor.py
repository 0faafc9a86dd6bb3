"""Refactoring a selection as instructed: prompts, post-processing, checks, the edit, eval
scores and training examples.

Prompts, per kind of model: the specialist and the untuned base both get a zero-shot
ChatML turn with the instruction (the base model is an instruct model, so that is its fair
prompt too); the baseline LLM gets the same turn as chat messages, or the same text on
``/v1/completions``.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

from covey_specialists.document import Document
from covey_specialists.repo_context import Workspace, used_definitions
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
    parse_python,
    reindent,
)
from covey_specialists.tasks.protocol import Where
from covey_specialists.tasks.refactor_hints import HintFiller, hint_filler
from covey_specialists.tasks.refactor_repair import (
    cut_after_final_return,
    keep_bodies,
    keep_parameters,
)

NAME = "refactor"
FORMATS = {"chatml-refactor"}
SYSTEM = (
    "You refactor code exactly as instructed, keeping its behaviour. "
    "Reply with the rewritten code only."
)
END_OF_TARGET = "<|im_end|>"
SERVED_PROMPT_START = f"<|im_start|>system\n{SYSTEM}"
EXECUTION_METRIC = "behaviour_preserved"
VALIDATE_BY_RUNNING = True
"""Routing's check also runs the module's tests, where the task has them."""
GATE_PRIMARY, GATE_SECONDARY = "success", "parses"
GATE_MAX_NEW_TOKENS = 384
SHOWS_ONLY_SURE = False
"""A rewrite the user asked for is always answered."""
FAIR_BASE_FORMAT = "chatml-refactor"
"""The base is an instruct model: the same zero-shot chat turn is its fair prompt."""
SPREAD_HELDOUT = False
TRAIN_BUDGET = 900
"""Characters of prompt context in a training example (the served format)."""
TRAIN_PER_FILE = 4
"""Training examples per source file by default (``covey train --per-file``)."""

READY_INSTRUCTIONS = {
    "simplify": "Simplify this code without changing its behaviour.",
    "type-hints": "Add type hints to the function signatures.",
    "extract-function": "Extract the repeated or self-contained logic into a helper function.",
    "comprehension": "Rewrite loops that build lists as list comprehensions.",
    "early-return": "Use early returns to reduce nesting.",
    "any-all": "Replace the search loop with any() or all().",
    "dict-comprehension": "Rewrite loops that build dictionaries as dict comprehensions.",
}


def refactor_prompt(code: str, instruction: str, language: str, budget: int,
                    repo: str = "") -> Prompt:
    """``repo``: the definitions the code uses from other files, shown before it."""
    code = code[:budget]
    used = f"It uses, from other files:\n```{language}\n{repo}```\n" if repo else ""
    user = f"{used}Instruction: {instruction}\n```{language}\n{code}\n```"
    return Prompt(NAME, "chatml-refactor", chatml(SYSTEM, user),
                  {"code": code, "instruction": instruction, "language": language,
                   "repo": repo})


def stream_done(prompt: Prompt, text: str) -> bool:
    return False  # the reply ends with the model's own end of turn


def finished_part(prompt: Prompt, text: str) -> str:
    return text  # a rewrite cut short keeps its lines: the follow-up finishes it


def shrink(prompt: Prompt, keep: float) -> None:
    """A refactor rewrites all of its selection: its context cannot be cut."""
    return None


def follow_up(prompt: Prompt, raw: str, cut_short: bool) -> HintFiller | None:
    """What finishes a Python type-hints refactor whose code (repaired, as the editor would
    show it) leaves parameters or returns without a hint (see :mod:`refactor_hints`), or
    None. An answer cut at its token limit is finished too: the repaired code is the
    original's, with the signatures the model wrote, and one that does not parse has no
    spot to fill."""
    instruction = prompt.meta.get("instruction")
    if prompt.meta.get("language") != "python" or \
            instruction != READY_INSTRUCTIONS["type-hints"]:
        return None
    return hint_filler(repaired_code(raw, prompt.meta["code"], instruction))


def repaired_code(raw: str, original: str, instruction: str = "") -> str:
    """The code of the reply, dedented. Python answers are repaired where that keeps
    behaviour: asked for type hints, the original takes the model's signatures and keeps
    its bodies; dead text after the function's last return goes; and a ready instruction
    (which promises the same behaviour) keeps the original parameters."""
    code = textwrap.dedent(extract_code(raw))
    if instruction == READY_INSTRUCTIONS["type-hints"]:
        code = keep_bodies(code, original)
    code = cut_after_final_return(code, original)
    if instruction in READY_INSTRUCTIONS.values():
        code = keep_parameters(code, original)
    return code


def postprocess_refactor(raw: str, original: str, instruction: str = "") -> str:
    """The repaired code of the reply (:func:`repaired_code`) at the selection's indent."""
    code = repaired_code(raw, original, instruction)
    first = next((ln for ln in original.splitlines() if ln.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    out = reindent(code, indent)
    if original.endswith("\n") and not out.endswith("\n"):
        out += "\n"
    return out


# ---------------------------------------------------------------- answer checks

def _interface(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Top-level (and method) function names → their parameter names."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                not node.name.startswith("_"):
            a = node.args
            out.setdefault(node.name, tuple(x.arg for x in (*a.posonlyargs, *a.args,
                                                              *a.kwonlyargs)))
    return out


def refactor_problem(original: str, rewritten: str, language: str = "python") -> str | None:
    """No code, unchanged code, or (Python) code that does not parse or changes the public
    interface: a function of the original that is gone or takes other parameters.

    A changed interface is what a static check can see of a change in behaviour; tests,
    where a caller has them, see the rest.
    """
    if not rewritten.strip():
        return "empty answer"
    if rewritten.strip() == original.strip():
        return "code unchanged"
    if language != "python":
        return None
    before = parse_python(original)
    after = parse_python(rewritten)
    if after is None:
        return "does not parse" if before is not None else None
    if before is None:
        return None
    new = _interface(after)
    for name, params in _interface(before).items():
        if name not in new:
            return f"drops function {name}"
        if new[name] != params:
            return f"changes the parameters of {name}"
    return None


# ---------------------------------------------------------------- the edit

@dataclass(frozen=True)
class RefactorPlan:
    prompt: Prompt
    doc: Document
    start: int
    end: int
    original: str
    language: str


def plan(doc: Document, where: Where, spec, *, fair_base: bool = False,
         workspace: Workspace | None = None) -> RefactorPlan:
    """Whole lines ``where.line..where.last_line`` rewritten per ``where.instruction`` (a
    ready one's key, or words); the same prompt for the fair base
    (:data:`FAIR_BASE_FORMAT`)."""
    first_line = where.line
    last_line = where.line if where.last_line is None else where.last_line
    instruction = READY_INSTRUCTIONS.get(where.instruction, where.instruction)
    budget = spec.max_prompt_chars
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
    repo = used_definitions(doc, start, end, workspace)
    prompt = refactor_prompt(original, instruction.strip(), doc.language or "text", budget,
                             repo)
    return RefactorPlan(prompt, doc, start, end, original, doc.language or "")


def finish(plan: RefactorPlan, raw: str) -> Edit:
    code = postprocess_refactor(raw, plan.original, plan.prompt.meta["instruction"])
    if not code.strip():
        raise EditError("the model returned no code")
    if code == plan.original:
        raise EditError("the model returned the code unchanged")
    edit = Edit(plan.start, plan.end, code)
    check_parses(plan.doc, edit)
    return edit


def problem(plan: RefactorPlan, raw: str) -> str | None:
    """Why a refactor answer is unusable (routing's check), or None: what :func:`finish`
    refuses, or a rewrite that changes the functions' interface."""
    try:
        edit = finish(plan, raw)
    except EditError as exc:
        return str(exc)
    return refactor_problem(plan.original, edit.new_text, plan.language)


# ---------------------------------------------------------------- the baseline LLM

def baseline_request(spec, prompt: Prompt, api: str) -> BaselineRequest:
    return chat_baseline_request(SYSTEM, spec, prompt, api)


def baseline_reply(raw: str, api: str, prompt: Prompt) -> str:
    return raw  # post-processing extracts the code itself


# ---------------------------------------------------------------- the eval

def label(plan: RefactorPlan) -> str:
    return NAME


def eval_target(task) -> tuple[Document, Where]:
    """The task's code as a file, all of it selected, with the task's instruction."""
    doc = Document(f"file:///eval/{task.id}", task.code, task.language or None)
    return doc, Where(line=0, last_line=max(0, len(task.code.rstrip("\n").split("\n")) - 1),
                      instruction=task.instruction)


def oracle(task) -> str:
    return task.reference


def refactor_parse(code: str) -> ast.Module | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
        return None
    return tree


def nesting_depth(node: ast.AST, depth: int = 0) -> int:
    blocks = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith)
    best = depth
    for child in ast.iter_child_nodes(node):
        inner = depth + 1 if isinstance(child, blocks) else depth
        best = max(best, nesting_depth(child, inner))
    return best


def _functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def instruction_satisfied(key: str, before: ast.Module, after: ast.Module) -> bool:
    """Did the rewrite do what was asked? Checked on the syntax tree; the same tree never
    does (the editor refuses unchanged code, and "no bigger" would credit it)."""
    if ast.dump(after) == ast.dump(before):
        return False
    if key == "type-hints":
        fns = _functions(after)
        args = [a for f in fns for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                if a.arg not in ("self", "cls")]
        return bool(fns) and all(a.annotation is not None for a in args) \
            and all(f.returns is not None for f in fns)
    if key == "comprehension":
        comps = sum(isinstance(n, (ast.ListComp, ast.GeneratorExp)) for n in ast.walk(after))
        return comps > sum(isinstance(n, (ast.ListComp, ast.GeneratorExp))
                           for n in ast.walk(before))
    if key == "early-return":
        return nesting_depth(after) < nesting_depth(before)
    if key == "extract-function":
        return len(_functions(after)) > len(_functions(before))
    # simplify: no bigger than before
    return len(list(ast.walk(after))) <= len(list(ast.walk(before)))


def diff_lines(before: str, after: str) -> int:
    return len(changed_diff_lines(before.splitlines(), after.splitlines()))


def scores(task, answer: str) -> dict:
    after = refactor_parse(answer)
    before = refactor_parse(task.code)
    key = task.meta.get("instruction_key", "simplify")
    satisfied = (float(instruction_satisfied(key, before, after))
                 if after is not None and before is not None else 0.0)
    return {"parses": float(after is not None), "instruction_satisfied": satisfied,
            "diff_lines": diff_lines(task.code, answer)}


def combined_scores(row: dict) -> dict:
    """``success``: the answer parses, does what the instruction asked and passes the
    module's tests. Behaviour alone is no success: unchanged code keeps it too."""
    parts = ("parses", "instruction_satisfied", EXECUTION_METRIC)
    if any(row.get(name) is None for name in parts):
        return {}
    return {"success": float(all(row[name] == 1.0 for name in parts))}


def execution(task, answer: str) -> Run | None:
    """The module's tests with the function swapped in (suites that have them); an answer
    that does not parse fails them without running."""
    if not task.meta.get("test_module"):
        return None
    if refactor_parse(answer) is None:
        return Run(EXECUTION_METRIC, "unparsed")
    return Run(EXECUTION_METRIC, "module-tests")


# ---------------------------------------------------------------- training and the gate

def training_example(code: str, instruction: str, rewritten: str, budget: int,
                     language: str = "python") -> TrainingExample:
    """Instruction + a function → the function rewritten (by a codemod)."""
    prompt = refactor_prompt(code, instruction, language, budget)
    return TrainingExample(prompt.text, rewritten.rstrip("\n") + END_OF_TARGET,
                           {"code": code, "instruction": instruction, "reference": rewritten})


def gate_base_prompt(prompt_text: str, meta: dict) -> str:
    return prompt_text  # zero-shot chat is the base's fair prompt too


def gate_postprocess(prompt_text: str, meta: dict, raw: str) -> str:
    return postprocess_refactor(raw, meta["code"], meta.get("instruction", ""))


def _parses(code: str) -> bool:
    return parse_python(code) is not None


def _normal_ast(code: str) -> str | None:
    tree = parse_python(code)
    return ast.dump(tree) if tree is not None else None


_BLOCKS = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith)


def nesting_total(tree: ast.AST) -> int:
    """Sum over statements of how many if/for/while/with/try blocks enclose them."""
    def walk(node: ast.AST, depth: int) -> int:
        total = depth if isinstance(node, ast.stmt) else 0
        inner = depth + 1 if isinstance(node, _BLOCKS) else depth
        return total + sum(walk(c, inner) for c in ast.iter_child_nodes(node))
    return walk(tree, 0)


def codemod_satisfied(code: str, meta: dict) -> bool:
    """Does ``code`` show the structure the codemod's instruction asked for?"""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    mod = meta.get("codemod")
    if mod == "comprehension":
        has_comp = any(isinstance(n, ast.ListComp) for n in ast.walk(tree))
        appends_in_loop = any(isinstance(n, ast.For) and any(
            isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
            and c.func.attr == "append" for c in ast.walk(n)) for n in ast.walk(tree))
        return has_comp and not appends_in_loop
    if mod == "early-return":
        return nesting_total(tree) < nesting_total(ast.parse(textwrap.dedent(meta["code"])))
    if mod == "type-hints":
        fns = _functions(tree)
        args = [a for f in fns for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                if a.arg not in ("self", "cls")]
        return bool(fns) and all(a.annotation is not None for a in args) \
            and all(f.returns is not None for f in fns)
    if mod == "simplify":
        before = ast.parse(textwrap.dedent(meta["code"]))
        return len(list(ast.walk(tree))) <= len(list(ast.walk(before)))
    if mod == "any-all":
        return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                   and n.func.id in ("any", "all") for n in ast.walk(tree))
    if mod == "dict-comprehension":
        return any(isinstance(n, ast.DictComp) for n in ast.walk(tree))
    if mod == "extract-variable":
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
        return meta["name"] in assigned
    return False


def refactor_checks(code: str, meta: dict) -> dict[str, bool]:
    """The gate's checks: parses, does what the codemod did, and (the codemod's rewrite being
    behaviour-equivalent) has the same syntax tree as its rewrite."""
    ok_parse = _parses(code)
    reference = _normal_ast(meta["reference"])
    return {
        "parses": ok_parse,
        "instruction_satisfied": ok_parse and codemod_satisfied(code, meta),
        "behaviour_preserved": ok_parse and reference is not None
        and _normal_ast(code) == reference,
    }


def gate_scores(meta: dict, output: str) -> dict[str, float]:
    checks = refactor_checks(output, meta)
    return {"success": float(all(checks.values())), **{k: float(v) for k, v in checks.items()}}


CARD_TEXT = ("instructed refactoring (ChatML prompt `chatml-refactor`; reply is the rewritten "
             "code, ending with `<|im_end|>`)")
"""What the adapter's model card says this task's adapter teaches."""
