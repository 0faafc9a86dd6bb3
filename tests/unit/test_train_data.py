"""Training data builders: FIM spans, docstring pairs, codemod refactors, splits."""

from __future__ import annotations

import ast
import random
import textwrap

import pytest

from covey_specialists.tasks import common, completion, refactor
from covey_specialists.tasks import doc as doc_task
from covey_specialists.tasks.refactor import nesting_total
from covey_training import codemods
from covey_training.data_completion import completion_examples
from covey_training.data_doc import doc_examples
from covey_training.data_refactor import MAX_REPEATS, balance, refactor_examples
from covey_training.examples import Example, read_jsonl, write_jsonl
from covey_training.sources import (
    SourceFile,
    default_roots,
    is_held_out,
    iter_sources,
)

SAMPLE = textwrap.dedent('''\
    import os


    def walk(root, suffix=".py"):
        """Yield the files under root that end with suffix."""
        found = []
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith(suffix):
                    found.append(os.path.join(dirpath, name))
        return found


    def names(paths):
        """Return the base names of paths."""
        out = []
        for p in paths:
            out.append(os.path.basename(p))
        return out


    class Counter:
        """Count things by key."""

        def __init__(self):
            self.counts = {}

        def add(self, key, n=1):
            """Add n to the count of key."""
            self.counts[key] = self.counts.get(key, 0) + n
            return self.counts[key]
    ''')


def _source(text=SAMPLE, rel="pkg/sample.py"):
    return SourceFile(root=None, rel=rel, text=text, tree=ast.parse(text))


def test_completion_examples_use_the_served_prompt_and_align_with_lines():
    src = _source()
    examples = completion_examples(src, random.Random(0), per_file=20, budget=3000)
    assert examples
    pre, suf, mid = common.SMOL_FIM
    for ex in examples:
        start, end = map(int, ex.source.rsplit(":", 1)[1].split("-"))
        middle = ex.meta["middle"]
        assert src.text[start:end] == middle
        assert ex.target == middle + "<|endoftext|>"
        # the exact text the server would send for this cursor
        ctx = completion.CompletionContext(prefix=src.text[:start], suffix=src.text[end:],
                                        multiline=ex.meta["multiline"])
        assert ex.prompt == completion.completion_prompt(ctx, "fim-smol", 3000).text
        assert ex.prompt.startswith(suf) and ex.prompt.endswith(mid) and pre in ex.prompt
        if ex.meta["kind"] == "token":  # mid-line to mid-line, inside one line
            assert "\n" not in middle and not ex.meta["multiline"]
            continue
        # other spans end at a line end, and start at a line start, its indent or a node
        assert src.text[end] == "\n"
        line_start = src.text.rfind("\n", 0, start) + 1
        before = src.text[line_start:start]
        assert ex.meta["kind"] == "rest" or not before.strip()
        if ex.meta["kind"] != "rest":
            assert "\n" not in middle or ex.meta["multiline"]


def test_completion_targets_survive_postprocessing():
    src = _source()
    for ex in completion_examples(src, random.Random(1), per_file=20, budget=3000):
        prompt = common.Prompt("completion", "fim-smol", ex.prompt,
                                {"prefix": ex.meta["prefix_tail"], "suffix": ex.meta["suffix_head"],
                                 "multiline": ex.meta["multiline"]})
        shown = completion.postprocess_completion(ex.target, prompt)
        assert shown.strip() == ex.meta["middle"].strip()


def test_doc_examples_remove_the_docstring_and_target_it():
    text = SAMPLE.replace('"""Yield the files under root that end with suffix."""',
                          '"""Yield the files under root that end with suffix.\n\n'
                          '    Args:\n        root: Where to start.\n'
                          '        suffix: The file name ending to keep.\n    """')
    examples = doc_examples(_source(text), random.Random(0), per_file=10, budget=3000)
    by_name = {ex.meta["name"]: ex for ex in examples}
    # one-line summaries of functions with parameters (names, add) are not taught
    assert set(by_name) == {"walk", "Counter"}
    walk = by_name["walk"]
    doc = ("Yield the files under root that end with suffix.\n\nArgs:\n"
           "    root: Where to start.\n    suffix: The file name ending to keep.")
    assert walk.target == doc + "<|im_end|>"
    assert '"""' not in walk.meta["code"] and "def walk(root" in walk.meta["code"]
    assert walk.prompt == doc_task.doc_prompt(walk.meta["code"], "python", 3000).text
    block = doc_task.postprocess_docstring(walk.target.removesuffix("<|im_end|>"), "    ")
    assert block.startswith('    """Yield the files under root') and "root: Where" in block


def _run(code: str, name: str, *args):
    namespace = {"os": __import__("os")}
    exec(code, namespace)
    return namespace[name](*args)


def test_comprehension_codemod_preserves_behaviour():
    code = textwrap.dedent('''\
        def evens(values, limit):
            out = []
            for v in values:
                if v % 2 == 0 and v < limit:
                    out.append(v * 10)
            return out
        ''')
    new = codemods.loop_to_comprehension(code)
    assert new is not None and "[v * 10 for v in values if v % 2 == 0 and v < limit]" in new
    for args in ([range(20), 9], [[], 3], [[2, 4, 5], 100]):
        assert _run(code, "evens", *args) == _run(new, "evens", *args)


def test_comprehension_codemod_refuses_when_loop_variable_is_used_later():
    code = textwrap.dedent('''\
        def last(values):
            out = []
            for v in values:
                out.append(v)
            return out, v
        ''')
    assert codemods.loop_to_comprehension(code) is None


@pytest.mark.parametrize("code,calls", [
    ('''\
def tag(d, key):
    if key in d:
        d[key] += 1
        d["total"] = d.get("total", 0) + 1
''', [({"a": 1}, "a"), ({"a": 1}, "b")]),
    ('''\
def sign(x):
    if x >= 0:
        return "+"
    else:
        y = "-"
        return y
''', [(3,), (-2,), (0,)]),
])
def test_early_return_codemod_preserves_behaviour(code, calls):
    new = codemods.early_return(code)
    assert new is not None and new != code
    assert nesting_total(ast.parse(new)) < nesting_total(ast.parse(code))
    for args in calls:
        a1 = [dict(a) if isinstance(a, dict) else a for a in args]
        a2 = [dict(a) if isinstance(a, dict) else a for a in args]
        assert _run(code, code.split("(")[0][4:], *a1) == _run(new, code.split("(")[0][4:], *a2)
        assert a1 == a2  # same side effects


def test_extract_variable_codemod():
    code = "def full(root, name):\n    return os.path.join(root, name.strip().lower())\n"
    new, expr, name = codemods.extract_variable(code)
    assert expr == "name.strip().lower()" and name == "lower_result"
    assert "    lower_result = name.strip().lower()\n    return os.path.join(root, lower_result)" \
        in new
    assert _run(code, "full", "/r", " X ") == _run(new, "full", "/r", " X ")


def test_refactor_examples_parse_and_carry_instruction():
    examples = refactor_examples(_source(), random.Random(0), per_file=10, budget=3000)
    assert {ex.meta["codemod"] for ex in examples} >= {"comprehension"}
    for ex in examples:
        ast.parse(ex.meta["reference"])
        assert ex.prompt == refactor.refactor_prompt(ex.meta["code"], ex.meta["instruction"],
                                                    "python", 3000).text
        assert ex.target.endswith("<|im_end|>")


def test_balance_cuts_common_codemods_and_repeats_rare_ones():
    def made(codemod: str, n: int) -> list[Example]:
        return [Example("refactor", f"{codemod} {i}", "t", f"f.py:{i}-{i + 1}",
                        {"codemod": codemod}) for i in range(n)]

    examples = made("type-hints", 300) + made("early-return", 100) + made("comprehension", 2)
    out, mix = balance(examples, random.Random(0))
    share = len(examples) // 3
    assert mix == {"type-hints": [300, share], "early-return": [100, share],
                   "comprehension": [2, 2 * MAX_REPEATS]}
    prompts = [ex.prompt for ex in out]
    assert len(set(p for p in prompts if p.startswith("type-hints"))) == share
    assert sorted(p for p in prompts if p.startswith("comprehension")) == \
        ["comprehension 0"] * MAX_REPEATS + ["comprehension 1"] * MAX_REPEATS


def test_split_keeps_held_out_modules_out_of_training():
    stdlib = default_roots()[0]
    # the split is by top-level module, so a package is never half in, half out
    assert is_held_out("json/decoder.py") == is_held_out("json/__init__.py")
    held = {s.rel for s in iter_sources([stdlib], "heldout")}
    assert held
    train_files = {s.rel for s in iter_sources([stdlib], "train")}
    assert not held & train_files


def test_jsonl_round_trip(tmp_path):
    examples = doc_examples(_source(), random.Random(0), per_file=10, budget=3000)
    assert write_jsonl(examples, tmp_path / "d.jsonl") == len(examples)
    assert read_jsonl(tmp_path / "d.jsonl") == examples


def test_type_hints_codemod_annotates_everything_and_keeps_behaviour():
    code = textwrap.dedent('''\
        def pad(text, width=8, fill=" ", *rest, strict=False, **options):
            if strict and len(text) > width:
                return None
            return text.rjust(width, fill)
        ''')
    new = codemods.type_hints(code)
    assert new is not None
    assert new.startswith("def pad(text: object, width: int = 8, fill: str = \" \", "
                          "*rest: object, strict: bool = False, **options: object) -> object:")
    assert _run(code, "pad", "ab", 4, "-") == _run(new, "pad", "ab", 4, "-")
    assert refactor.codemod_satisfied(new, {"codemod": "type-hints", "code": code})
    assert codemods.type_hints("def ping():\n    pass\n") is None  # nothing to annotate


@pytest.mark.parametrize(("code", "expected", "calls"), [
    ("def has_neg(xs):\n    for x in xs:\n        if x < 0:\n            return True\n"
     "    return False\n", "return any(x < 0 for x in xs)", [[1, -2], [], [3]]),
    ("def all_pos(xs):\n    for x in xs:\n        if x <= 0:\n            return False\n"
     "    return True\n", "return all(not (x <= 0) for x in xs)", [[1, 2], [], [0, 5]]),
])
def test_any_all_codemod_preserves_behaviour(code, expected, calls):
    new = codemods.any_all(code)
    assert new is not None and expected in new and "for x in xs:" not in new
    name = code.split("(")[0].removeprefix("def ")
    for arg in calls:
        assert _run(new, name, arg) == _run(code, name, arg)
    # a loop that does more than search is left alone
    assert codemods.any_all(code.replace("return True", "print(x)\n            return True")
                            .replace("return False\n    return", "x\n    return")) is None


def test_dict_comprehension_codemod_preserves_behaviour():
    code = ("def index(words):\n    out = {}\n    for i, w in enumerate(words):\n"
            "        out[w] = i * 2\n    return out\n")
    new = codemods.dict_comprehension(code)
    assert new is not None and "out = {w: i * 2 for i, w in enumerate(words)}" in new
    ast.parse(new)
    for words in (["a", "b", "a"], []):
        assert _run(new, "index", words) == _run(code, "index", words)
    assert refactor.codemod_satisfied(new, {"codemod": "dict-comprehension"})
    # the loop variable is read afterwards: the comprehension would not leak it
    assert codemods.dict_comprehension(code.replace("return out", "return out, i")) is None
    # key and value both call something: their order would change
    assert codemods.dict_comprehension(code.replace("out[w] = i * 2", "out[f(w)] = g(i)")) \
        is None


def test_training_on_a_repository_mixes_in_a_share_of_generic_code(tmp_path):
    """``covey train completion REPO`` keeps what the adapter knew: a share of the
    training set comes from a seeded sample of the standard library's training files."""
    from helpers.train_repo import tiny_repo

    from covey_training.dataset import build_dataset

    repo = tiny_repo(tmp_path / "repo", train=4, held=1)
    kwargs = {"decontaminate": False, "workers": 1}
    own, _ = build_dataset("completion", [repo], **kwargs)
    mixed, info = build_dataset("completion", [repo], generic_share=0.5, **kwargs)
    again, _ = build_dataset("completion", [repo], generic_share=0.5, **kwargs)
    generic = [ex for ex in mixed if ex.source not in {o.source for o in own}]
    assert len(own) > 0 and len(generic) == len(own)  # half of the set
    assert not any((repo / ex.source.split(":")[0]).exists() for ex in generic)
    assert info.generic == {"share": 0.5, "examples": len(own), "source": "cpython-stdlib"}
    assert [ex.source for ex in again] == [ex.source for ex in mixed]  # seeded
