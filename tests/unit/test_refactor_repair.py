"""Refactor answers repaired before they reach the editor: parameters kept, dead tails cut,
and under type hints the original's bodies kept."""

from __future__ import annotations

import textwrap

from covey_specialists.tasks.refactor import READY_INSTRUCTIONS, postprocess_refactor
from covey_specialists.tasks.refactor_repair import (
    cut_after_final_return,
    keep_bodies,
    keep_parameters,
)

ORIGINAL = textwrap.dedent('''\
    def glob(pathname, *, root_dir=None, recursive=False):
        return list(iglob(pathname, root_dir=root_dir, recursive=recursive))
    ''')


def _call(code: str, name: str, *args, **kwargs):
    scope: dict = {"iglob": lambda p, root_dir, recursive: [p, root_dir, recursive]}
    exec(code, scope)
    return scope[name](*args, **kwargs)


def test_dropped_defaults_and_keyword_marker_come_back_with_the_models_annotations():
    answer = ("def glob(pathname: str, root_dir: str, recursive: bool = True) -> list:\n"
              "    return list(iglob(pathname, root_dir=root_dir, recursive=recursive))\n")
    fixed = keep_parameters(answer, ORIGINAL)
    assert fixed.splitlines()[0] == ("def glob(pathname: str, *, root_dir: str = None, "
                                     "recursive: bool = False) -> list:")
    assert _call(fixed, "glob", "*.py") == _call(ORIGINAL, "glob", "*.py")


def test_a_dropped_parameter_comes_back_and_methods_are_matched_by_class():
    original = "class Cmd:\n    def show(self, header, cmds, maxcol):\n        return maxcol\n"
    answer = ("class Cmd:\n    def show(self, header: str, cmds: list) -> int:\n"
              "        return maxcol\n")
    fixed = keep_parameters(answer, original)
    assert "def show(self, header: str, cmds: list, maxcol) -> int:" in fixed
    assert fixed.endswith("        return maxcol\n")


def test_parameters_already_kept_leave_the_answer_byte_for_byte():
    answer = ("def glob(pathname: str, *, root_dir: str | None = None,\n"
              "         recursive: bool=False) -> list:\n"
              "    return list(iglob(pathname, root_dir=root_dir, recursive=recursive))\n")
    assert keep_parameters(answer, ORIGINAL) == answer


def test_new_helpers_and_unparsable_answers_are_left_alone():
    answer = ("def _helper(x):\n    return x\n\n\n"
              "def glob(pathname, *, root_dir=None, recursive=False):\n"
              "    return _helper(pathname)\n")
    assert keep_parameters(answer, ORIGINAL) == answer
    assert keep_parameters("def glob(pathname:\n", ORIGINAL) == "def glob(pathname:\n"


def test_only_ready_instructions_restore_parameters():
    answer = "def glob(pattern, *, root_dir=None, recursive=False):\n    return pattern\n"
    ready = postprocess_refactor(answer, ORIGINAL, READY_INSTRUCTIONS["simplify"])
    assert ready.startswith("def glob(pathname, *, root_dir=None, recursive=False):")
    asked = postprocess_refactor(answer, ORIGINAL, "Rename pathname to pattern.")
    assert asked == answer


def test_text_run_on_after_the_final_return_is_cut():
    answer = ('def f(x):\n    """Double x."""\n    if x:\n        return 2 * x\n'
              '    return 0\n    """Double x.\n\n    More words cut by the token lim')
    assert cut_after_final_return(answer, "def f(x):\n    return x\n") == \
        'def f(x):\n    """Double x."""\n    if x:\n        return 2 * x\n    return 0\n'


def test_a_cut_that_would_lose_code_or_a_function_is_refused():
    inside_if = 'def f(x):\n    if x:\n        return 1\n    y = (\n'
    assert cut_after_final_return(inside_if, "def f(x):\n    return x\n") == inside_if
    two = "def f(x):\n    return x\n\n\ndef g(y):\n    return (y\n"
    original = "def f(x):\n    return x\n\n\ndef g(y):\n    return y\n"
    assert cut_after_final_return(two, original) == two
    assert cut_after_final_return("def f(x):\n    return x\n", original) == \
        "def f(x):\n    return x\n"


CLASS = textwrap.dedent('''\
    class Files:
        @staticmethod
        def isdir(pathname, dir_fd=None):
            # Same as os.path.isdir(), but with dir_fd
            try:
                st = stat(pathname, dir_fd=dir_fd)
            except OSError:
                return False

            def check(mode):
                return mode > 0
            return check(st)
    ''')


def test_type_hints_keep_the_original_bodies_with_the_models_signatures():
    # the model dropped the comment and changed what the function returns
    answer = textwrap.dedent('''\
        class Files:
            @staticmethod
            def isdir(pathname: str, dir_fd: int | None = None) -> bool:
                try:
                    st = stat(pathname, dir_fd=dir_fd)
                except OSError:
                    return None

                def check(mode: int) -> bool:
                    return mode > 0
                return check(st)
        ''')
    fixed = keep_bodies(answer, CLASS)
    assert fixed == CLASS.replace("def isdir(pathname, dir_fd=None):",
                                  "def isdir(pathname: str, dir_fd: int | None = None) -> bool:"
                                  ).replace("def check(mode):", "def check(mode: int) -> bool:")
    hinted = postprocess_refactor(answer, CLASS, READY_INSTRUCTIONS["type-hints"])
    assert hinted == fixed
    other = postprocess_refactor(answer, CLASS, READY_INSTRUCTIONS["simplify"])
    assert "            return None\n" in other  # no body kept outside type hints


def test_an_answer_that_loops_in_its_docstring_still_gives_its_def_lines():
    original = "def run(source, filename=\"<input>\", symbol=\"single\"):\n    return source\n"
    looping = ('def run(source: str,\n        filename: str = "<input>",\n'
               '        symbol: str = "single") -> object:\n    r"""Run.\n\n'
               + "    - Return None if incomplete\n" * 40)
    fixed = keep_bodies(looping, original)
    assert fixed == ('def run(source: str, filename: str = "<input>", symbol: str = "single")'
                     ' -> object:\n    return source\n')
    assert keep_bodies("no code here", original) == "no code here"
    assert keep_bodies(looping, "not python (") == looping
