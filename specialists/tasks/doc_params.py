"""Finishing a docstring that leaves parameters out (Python).

A small doc model often writes a one-line summary for a function that takes parameters,
or lists some of them and stops. :class:`ParamFiller` asks it for the rest, one
parameter at a time: the same prompt, continued with the docstring so far and the start
of the missing entry (``Args:`` / ``name: ``), so every word of a description is still
the model's. The entries follow the docstring's own convention — a Google ``Args:``
section, reST ``:param name:`` fields or a NumPy ``Parameters`` section — and a docstring
without one gets a Google ``Args:`` section before its ``Returns:``/``Raises:``, if any.
"""

from __future__ import annotations

import ast
import re
import textwrap

MAX_FILLED = 8
"""At most this many parameters are asked for (one short call each)."""
ENTRY_TOKENS = 48
"""Tokens for one parameter's description; it ends at the end of its line."""

_GOOGLE = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params)\s*:\s*$")
_NUMPY = re.compile(r"^(\s*)Parameters\s*$")
_REST = re.compile(r"^\s*:(param|type)\b")
_LATER_SECTION = re.compile(
    r"^\s*(Returns?|Yields?|Raises|Examples?|Notes?|See Also|Warnings?|:returns?:|:rtype:"
    r"|:raises?\b)", re.IGNORECASE)


def signature_names(code: str) -> list[str]:
    """The first function's parameters as a docstring names them: ``*args``, ``**kw``
    (not ``self``/``cls``)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return []
    fn = next((n for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if fn is None:
        return []
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)]
    if a.vararg is not None:
        names.append("*" + a.vararg.arg)
    names += [x.arg for x in a.kwonlyargs]
    if a.kwarg is not None:
        names.append("**" + a.kwarg.arg)
    return [n for n in names if n not in ("self", "cls")]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name.lstrip('*'))}(?!\w)", text) is not None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


class ParamFiller:
    """The docstring ``text`` (no quotes, dedented) and the parameters it misses.

    :meth:`pending` names the next one to ask for; :meth:`continuation` is what follows the
    prompt for it; :meth:`add` takes the model's line; :attr:`text` is the result.
    """

    tokens_per_entry = ENTRY_TOKENS

    def __init__(self, text: str, missing: list[str]) -> None:
        lines = text.strip("\n").splitlines()
        self.missing = missing[:MAX_FILLED]
        self.asked: set[str] = set()
        self.entries: list[str] = []
        self.header: list[str] = []
        self.before, self.after, self.entry = self._place(lines)

    def _place(self, lines: list[str]) -> tuple[list[str], list[str], str]:
        """Where the new entries go: (lines before, lines after, entry prefix with
        ``{name}``)."""
        for i, line in enumerate(lines):
            match = _GOOGLE.match(line) or (
                _NUMPY.match(line) if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
                else None)
            if match is None:
                continue
            outer = len(match.group(1))
            numpy = match.re is _NUMPY
            start = i + (2 if numpy else 1)
            end = start
            while end < len(lines) and (not lines[end].strip()
                                        or len(_indent(lines[end])) > outer
                                        or (numpy and not _LATER_SECTION.match(lines[end]))):
                end += 1
            while end > start and not lines[end - 1].strip():
                end -= 1
            entries = [ln for ln in lines[start:end] if ln.strip()]
            first = entries[0] if entries else ""
            indent = _indent(first) if entries else match.group(1) + ("" if numpy else "    ")
            return lines[:end], lines[end:], indent + ("{name} : " if numpy else "{name}: ")
        fields = [i for i, line in enumerate(lines) if _REST.match(line)]
        if fields:
            end = fields[-1] + 1
            while end < len(lines) and lines[end].strip() and not lines[end].lstrip().startswith(
                    ":") and len(_indent(lines[end])) > len(_indent(lines[fields[-1]])):
                end += 1
            return lines[:end], lines[end:], _indent(lines[fields[-1]]) + ":param {name}: "
        later = next((i for i, line in enumerate(lines) if i and _LATER_SECTION.match(line)),
                     len(lines))
        before = lines[:later]
        while before and not before[-1].strip():
            before.pop()
        self.header = ["", "Args:"]
        return before, lines[later:], "    {name}: "

    def pending(self) -> str | None:
        return next((n for n in self.missing if n not in self.asked), None)

    def continuation(self, name: str) -> str:
        """The docstring up to the start of ``name``'s entry, to follow the prompt."""
        return "\n".join(self.before + self._added() + [self.entry.format(name=name)])

    def add(self, name: str, reply: str) -> None:
        self.asked.add(name)
        description = reply.split("\n")[0].strip().removesuffix('"""').strip()
        if description:
            self.entries.append(self.entry.format(name=name) + description)

    def _added(self) -> list[str]:
        return (self.header if self.entries or self.header else []) + self.entries

    @property
    def text(self) -> str:
        if not self.entries:
            return "\n".join(self.before + self.after)
        after = self.after
        if self.header and after and after[0].strip():  # a new section: a blank line apart
            after = ["", *after]
        return "\n".join(self.before + self.header + self.entries + after)


def follow_up(code: str, text: str, cut_short: bool) -> ParamFiller | None:
    """A filler for the parameters of the function in ``code`` that the docstring ``text``
    never names, or None when it names them all. ``cut_short``: the answer hit its token
    limit, so its last line is unfinished and goes. An empty answer stays empty: there is
    nothing to finish."""
    if not text.strip():
        return None
    if cut_short and "\n" in text.strip("\n"):
        text = text.strip("\n").rsplit("\n", 1)[0]
    missing = [n for n in signature_names(code) if not _mentions(text, n)]
    return ParamFiller(text, missing) if missing else None
