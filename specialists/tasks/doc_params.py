"""Finishing a docstring that leaves parameters out (Python docstrings, JSDoc blocks).

A small doc model often writes a one-line summary for a function that takes parameters,
or lists some of them and stops. :class:`ParamFiller` asks it for the rest, one
parameter at a time: the same prompt, continued with the docstring so far and the start
of the missing entry (``Args:`` / ``name: ``), so every word of a description is still
the model's. The entries follow the docstring's own convention — a Google ``Args:``
section, reST ``:param name:`` fields or a NumPy ``Parameters`` section — and a docstring
without one gets a Google ``Args:`` section before its ``Returns:``/``Raises:``, if any.
A JSDoc block gets ``@param name`` tags after its last one, or before its other tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_FILLED = 8
"""At most this many parameters are asked for (one short call each)."""
ENTRY_TOKENS = 48
"""Tokens for one parameter's description; it ends at the end of its line."""

_GOOGLE = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params)\s*:\s*$")
_NUMPY = re.compile(r"^(\s*)Parameters\s*$")
_HEAD_ONLY = re.compile(r"^\s*\**\w+\s*(\(.*\))?\s*:\s*$")
"""An entry whose description starts on the next line."""
_REST = re.compile(r"^\s*:(param|type)\b")
_JSDOC_PARAM = re.compile(r"^\s*@(param|arg|argument)\b")
_JSDOC_TAG = re.compile(r"^\s*@\w")
_LATER_SECTION = re.compile(
    r"^\s*(Returns?|Yields?|Raises|Examples?|Notes?|See Also|Warnings?|:returns?:|:rtype:"
    r"|:raises?\b)", re.IGNORECASE)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


@dataclass
class Place:
    """Where a docstring's new entries go."""

    before: list[str]
    after: list[str]
    entry: str
    """An entry's start, with ``{name}``; the model writes the rest of its line."""
    header: list[str] = field(default_factory=list)
    """Lines that open a new section before the first entry (none when one exists)."""
    gap_after: bool = True
    """A new section is set off from what follows it by a blank line."""


def _section(lines: list[str]) -> Place | None:
    """The end of a Google ``Args:`` or NumPy ``Parameters`` section, in its entries' form."""
    for i, line in enumerate(lines):
        numpy = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        match = _GOOGLE.match(line) or (_NUMPY.match(line) if numpy else None)
        if match is None:
            continue
        numpy = match.re is _NUMPY
        start = end = i + (2 if numpy else 1)
        while end < len(lines) and (not lines[end].strip()
                                    or len(_indent(lines[end])) > len(match.group(1))
                                    or (numpy and not _LATER_SECTION.match(lines[end]))):
            end += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        entries = [ln for ln in lines[start:end] if ln.strip()]
        indent = _indent(entries[0]) if entries else match.group(1) + ("" if numpy else "    ")
        if numpy:
            return Place(lines[:end], lines[end:], indent + "{name} : ")
        last = max((k for k, ln in enumerate(entries) if _indent(ln) == indent), default=0)
        if entries and _HEAD_ONLY.match(entries[last]) and last + 1 < len(entries) \
                and len(_indent(entries[last + 1])) > len(indent):  # "x (int):" + a line
            return Place(lines[:end], lines[end:], f"{indent}{{name}}:\n"
                         + _indent(entries[last + 1]))
        return Place(lines[:end], lines[end:], indent + "{name}: ")
    return None


def _rest_fields(lines: list[str]) -> Place | None:
    """After the last reST ``:param:``/``:type:`` field (and its continuation lines)."""
    fields = [i for i, line in enumerate(lines) if _REST.match(line)]
    if not fields:
        return None
    indent = _indent(lines[fields[-1]])
    end = fields[-1] + 1
    while end < len(lines) and lines[end].strip() and not lines[end].lstrip().startswith(":") \
            and len(_indent(lines[end])) > len(indent):
        end += 1
    return Place(lines[:end], lines[end:], indent + ":param {name}: ")


def _jsdoc_tags(lines: list[str]) -> Place:
    """After the last ``@param`` tag (and its continuation lines), else before the first
    other tag (``@returns``…), else at the end; a blank line sets the first tag off from
    the description, as JSDoc does."""
    params = [i for i, line in enumerate(lines) if _JSDOC_PARAM.match(line)]
    if params:
        end = params[-1] + 1
        while end < len(lines) and lines[end].strip() and not _JSDOC_TAG.match(lines[end]):
            end += 1
        return Place(lines[:end], lines[end:], "@param {name} ")
    first_tag = next((i for i, line in enumerate(lines) if _JSDOC_TAG.match(line)), len(lines))
    before = lines[:first_tag]
    while before and not before[-1].strip():
        before.pop()
    return Place(before, lines[first_tag:], "@param {name} ", header=[""] if before else [],
                 gap_after=False)


def _new_section(lines: list[str]) -> Place:
    """A Google ``Args:`` section before ``Returns:``/``Raises:``…, else at the end."""
    later = next((i for i, line in enumerate(lines) if i and _LATER_SECTION.match(line)),
                 len(lines))
    before = lines[:later]
    while before and not before[-1].strip():
        before.pop()
    return Place(before, lines[later:], "    {name}: ", header=["", "Args:"])


class ParamFiller:
    """The docstring ``text`` (no quotes, dedented) and the parameters it misses.

    :meth:`pending` names the next one to ask for; :meth:`continuation` is what follows the
    prompt for it; :meth:`add` takes the model's line; :attr:`text` is the result.
    """

    tokens_per_entry = ENTRY_TOKENS

    def __init__(self, text: str, missing: list[str], language: str = "python") -> None:
        lines = text.strip("\n").splitlines()
        self.missing = missing[:MAX_FILLED]
        self.asked: set[str] = set()
        self.entries: list[str] = []
        self.place = (_section(lines) or _rest_fields(lines) or _new_section(lines)
                      if language == "python" else _jsdoc_tags(lines))

    def pending(self) -> str | None:
        return next((n for n in self.missing if n not in self.asked), None)

    def continuation(self, name: str) -> str:
        """The docstring up to the start of ``name``'s entry, to follow the prompt."""
        p = self.place
        return "\n".join(p.before + p.header + self.entries + [p.entry.format(name=name)])

    def add(self, name: str, reply: str) -> None:
        self.asked.add(name)
        description = reply.split("\n")[0].strip().removesuffix('"""').strip()
        if description:
            self.entries.append(self.place.entry.format(name=name) + description)

    @property
    def text(self) -> str:
        p = self.place
        if not self.entries:
            return "\n".join(p.before + p.after)
        after = p.after
        if p.header and p.gap_after and after and after[0].strip():  # a blank line apart
            after = ["", *after]
        return "\n".join(p.before + p.header + self.entries + after)

