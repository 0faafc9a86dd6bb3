"""Suites: HumanEval derivation, stdlib tasks by offsets, the held-out split, sampling."""

from covey_eval import humaneval, splits, stdlib, suites
from covey_eval.suites import stratified_sample


def test_humaneval_counts_match_openai_infilling_sets():
    assert len(humaneval.single_line()) == 1033
    assert len(humaneval.multi_line()) == 5815


def test_humaneval_tasks_rebuild_the_original_program():
    by_id = {p["task_id"]: p for p in humaneval.problems()}
    for task in humaneval.single_line()[:200] + humaneval.multi_line()[:300]:
        problem = by_id[task.stratum]
        original = problem["prompt"] + problem["canonical_solution"]
        rebuilt = task.prefix + task.reference + task.suffix
        if task.id.split("/L")[1].split("-")[0] == "0":
            # the span starts at line 0: the prefix carries one extra newline
            assert rebuilt == problem["prompt"] + "\n" + problem["canonical_solution"]
        else:
            assert rebuilt == original
        assert task.reference.strip()


def test_heldout_split_is_by_top_level_module_and_stable():
    root = splits.stdlib_root()
    assert splits.is_heldout(root / "email" / "parser.py") == splits.is_heldout("email/utils.py")
    assert splits.split_key(root / "json" / "decoder.py") == "json"
    assert splits.split_key("copy.py") == "copy"
    assert splits.split_key("/somewhere/site-packages/requests/api.py") == "requests"
    names = [p.name for p in root.iterdir()]
    held = [n for n in names if splits.is_heldout(n)]
    assert 0.05 < len(held) / len(names) < 0.3
    assert all(splits.is_heldout(rel) for rel in stdlib.heldout_files())


def test_stdlib_fim_tasks_are_offsets_into_installed_files():
    tasks = stdlib.fim_tasks()
    assert len(tasks) > 500
    for task in tasks[:100]:
        text = stdlib.stdlib_file(task.meta["file"]).read_text(encoding="utf-8")
        assert text[task.meta["start"]:task.meta["end"]] == task.reference
        assert task.prefix + task.reference + task.suffix == text
        assert ("\n" in task.reference) <= task.multiline


def test_stdlib_doc_and_refactor_tasks():
    doc = stdlib.doc_tasks()
    assert len(doc) > 100
    assert all('"""' not in t.code.split("\n", 1)[1][:5] for t in doc[:50])
    refactor = stdlib.refactor_tasks()
    assert len(refactor) > 50
    assert {t.meta["instruction_key"] for t in refactor} >= {"type-hints", "simplify"}


def test_stratified_sample_spreads_over_strata_and_is_seeded():
    tasks = list(humaneval.single_line())
    sample = stratified_sample(tasks, 164, seed=3)
    assert len({t.stratum for t in sample}) == 164
    assert [t.id for t in sample] == [t.id for t in stratified_sample(tasks, 164, seed=3)]
    assert [t.id for t in sample] != [t.id for t in stratified_sample(tasks, 164, seed=4)]
    assert len(suites.load("humaneval-ml", limit=10)) == 10


def test_unknown_suite_is_a_clear_error():
    try:
        suites.load("nope")
    except suites.SuiteError as exc:
        assert "unknown suite 'nope'" in str(exc)
    else:
        raise AssertionError("no error")


def test_a_function_that_calls_compile_keeps_its_module_tests_when_swapped_in():
    """The swap compiles with the module's own __future__ flags, not the harness's: codeop's
    tests compare the code objects its _compile makes with ones compiled without them."""
    from covey_eval import execute

    (task,) = [t for t in stdlib.refactor_tasks() if t.id == "codeop.py:_compile"]
    metric, job = execute.job(task, task.code)
    outcome = job()
    assert metric == "behaviour_preserved" and outcome.passed, outcome
    broken = task.code.replace("flags |= PyCF_DONT_IMPLY_DEDENT", "pass")
    assert not execute.job(task, broken)[1]().passed
