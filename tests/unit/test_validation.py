"""Answer checks used for escalation (pure), the served-answer choice, and baseline settings."""

from __future__ import annotations

import pytest

from covey_specialists.baseline import BaselineConfig
from covey_specialists.document import Document
from covey_specialists.routing import Decision, pick
from covey_specialists.table import Specialist
from covey_specialists.tasks import Where, completion, doc, refactor
from covey_specialists.tasks.completion import (
    CompletionContext,
    beside_cursor,
    completion_prompt,
)
from covey_specialists.tasks.doc import doc_prompt

PREFIX = "def add(a, b):\n    return "
SPEC = Specialist(key="completion", task="completion", prompt_format="fim-smol")


def _problem(prefix: str, middle: str, suffix: str, language: str = "python") -> str | None:
    doc = Document("file:///t", prefix + suffix, language)
    plan = completion.plan(doc, Where(offset=len(prefix)), SPEC)
    return completion.problem(plan, middle)


@pytest.mark.parametrize("middle, problem", [
    ("a + b", None),
    ("", "empty answer"),
    ("  \n", "empty answer"),
    ("a +", "does not parse"),
    ("(a, b", "does not parse"),
])
def test_completion_problem(middle, problem):
    found = _problem(PREFIX, middle, "\n")
    assert found == problem or (problem and found.startswith(f"the suggested edit {problem}"))


def test_completion_in_surroundings_that_never_parse_is_not_held_against_it():
    assert _problem("x = (\n  def", "a +", "") is None  # no more errors than before
    # javascript is checked with the same tree-sitter check
    assert _problem("f(", "1, 2", ");\n", "javascript") is None
    assert _problem("f(", "1, (", ");\n", "javascript") is not None


@pytest.mark.parametrize("code, language, params", [
    ("def f(self, a, b=1, *args, c, **kw):\n    pass", "python", ["a", "b", "args", "c", "kw"]),
    ("    async def g(x):\n        pass", "python", ["x"]),
    ("class C:\n    pass", "python", []),
    ("function sum(a, b = 2, ...rest) { return a + b }", "javascript", ["a", "b", "rest"]),
    ("const f = (x, y) => x * y", "javascript", ["x", "y"]),
])
def test_function_params(code, language, params):
    assert doc.function_params(code, language) == params


def test_docstring_problem_names_missing_parameters():
    code = "def scale(values, factor, offset=0):\n    pass"
    assert doc.docstring_problem(code, "Scale values by factor, plus offset.") is None
    assert doc.docstring_problem(code, "Scale the values.") == \
        "docstring misses parameters factor, offset"
    assert doc.docstring_problem(code, "Multiply each value by the factors.") == \
        "docstring misses parameters values, factor, offset"  # whole words only
    assert doc.docstring_problem(code, "   ") == "empty docstring"


@pytest.mark.parametrize("after, problem", [
    ("def f(xs):\n    return [x * 2 for x in xs]\n", None),
    ("def f(xs):\n    out = []\n", "code unchanged"),
    ("def f(xs:\n", "does not parse"),
    ("def g(xs):\n    return xs\n", "drops function f"),
    ("def f(items):\n    return items\n", "changes the parameters of f"),
    ("", "empty answer"),
])
def test_refactor_problem(after, problem):
    before = "def f(xs):\n    out = []\n"
    assert refactor.refactor_problem(before, after) == problem


def test_refactor_of_a_fragment_that_does_not_parse_alone_is_not_checked_for_syntax():
    assert refactor.refactor_problem("    if x:\n", "    if y:\n") is None


@pytest.mark.parametrize("escalate, specialist_ok, baseline_ok, source", [
    (False, True, False, "specialist"),
    (False, False, False, "none"),
    (True, True, True, "baseline"),
    (True, True, False, "specialist"),   # dead baseline: the valid specialist answer
    (True, False, False, "none"),        # …and nothing when that is invalid too
    (True, False, True, "baseline"),
])
def test_pick(escalate, specialist_ok, baseline_ok, source):
    assert pick(Decision(escalate, ""), specialist_ok, baseline_ok) == source


def test_baseline_from_editor_options_needs_an_explicit_url(monkeypatch):
    assert BaselineConfig.from_options({}) is None
    assert BaselineConfig.from_options({"url": "", "model": "m"}) is None
    monkeypatch.setenv("MY_KEY", "sk-1")
    cfg = BaselineConfig.from_options({"url": "https://api.example/v1/", "model": "m",
                                       "api_key_env": "MY_KEY"})
    assert (cfg.url, cfg.model, cfg.api_key, cfg.api) == ("https://api.example/v1", "m",
                                                          "sk-1", "chat")
    with pytest.raises(ValueError, match="chat or completions"):
        BaselineConfig.from_options({"url": "http://x", "api": "bogus"})


def test_baseline_requests_from_specialist_prompts():
    spec = Specialist(key="completion", task="completion", prompt_format="fim-smol",
                      max_tokens=64, stop=("\n\n\n",))
    prompt = completion_prompt(CompletionContext("x = ", "\ny = 2"), "fim-smol", 3000)
    chat = completion.baseline_request(spec, prompt, "chat")
    assert chat.messages[1]["content"] == "x = <CURSOR>\ny = 2" and chat.max_tokens == 256
    plain = completion.baseline_request(spec, prompt, "completions")
    assert plain.prompt == "x = " and plain.stop == ["\n\n\n"] and plain.max_tokens == 64
    messages = doc.baseline_request(spec, doc_prompt("def f(): pass", "python", 1000),
                                    "chat").messages
    assert messages[1]["content"].startswith("Write the docstring") and \
        "<|im" not in messages[1]["content"]
    block = completion_prompt(CompletionContext("def f(x):\n", "", multiline=True),
                              "fim-smol", 3000)
    plain = completion.baseline_request(spec, block, "completions")
    assert plain.prompt == "def f(x):\n    "  # the indent the editor types, as the fair base
    assert completion.baseline_reply("return x", "completions", block) == "    return x"
    assert completion.baseline_reply("```py\n1\n```", "chat", prompt) == "1"
    assert doc.baseline_reply("```py\n1\n```", "chat", prompt) == "```py\n1\n```"


def test_the_baseline_gets_the_same_repository_context():
    spec = Specialist(key="completion", task="completion", prompt_format="fim-smol",
                      max_tokens=64)
    repo = "# shop/models.py\n# def make_user(name: str) -> User:\n"
    prompt = completion_prompt(CompletionContext("u = ", "\n", repo=repo, path="app.py"),
                               "fim-smol", 3000)
    chat = completion.baseline_request(spec, prompt, "chat").messages[1]["content"]
    assert chat == ("Other files of the repository:\nshop/models.py\n"
                    "def make_user(name: str) -> User:\n\nThe file:\nu = <CURSOR>\n")
    assert completion.baseline_request(spec, prompt, "completions").prompt == repo + "u = "
    bare = completion_prompt(CompletionContext("u = ", "\n"), "fim-smol", 3000)
    assert completion.baseline_request(spec, bare, "chat").messages[1]["content"] == \
        "u = <CURSOR>\n"


def test_the_context_goes_just_above_the_top_level_statement_at_the_cursor():
    """Near enough for the small model to use, and the same for every keystroke inside one
    function; post-processing still sees the file's own prefix."""
    repo = "# shop/models.py\n# def make_user(name: str) -> User:\n"
    prefix = ("import os\n\n\n@cache\ndef f(x):\n    return x\n\n\n"
              "# a comment on C\n@dataclass\nclass C:\n    def m(self):\n        ")
    prompt = completion_prompt(CompletionContext(prefix, "\n", repo=repo, multiline=True),
                               "fim-smol", 3000)
    assert "    return x\n\n\n" + repo + "# a comment on C\n@dataclass\nclass C:" in prompt.text
    assert prompt.meta["prefix"] == prefix
    typed = completion_prompt(CompletionContext(prefix + "return self", "\n", repo=repo,
                                                multiline=True), "fim-smol", 3000)
    assert typed.text.index(repo) == prompt.text.index(repo)
    assert beside_cursor(repo, "x = 1\ny = ") == "x = 1\n" + repo + "y = "
    # a window that starts inside a function: the context goes first
    assert beside_cursor(repo, "    a = 1\n    b = ") == repo + "    a = 1\n    b = "
    assert beside_cursor("", prefix) == prefix
