"""The unit of evaluation: one task, of one of three kinds, with what scoring needs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    id: str
    suite: str
    kind: str
    """``completion``, ``doc`` or ``refactor`` — also the specialist's task."""
    stratum: str
    """The group stratified sampling balances over (e.g. problem, module, span size)."""
    prefix: str = ""
    suffix: str = ""
    code: str = ""
    """doc/refactor input: the function without its docstring / the code to rewrite."""
    instruction: str = ""
    reference: str = ""
    """The known-good answer: the middle, the docstring, or the original code."""
    language: str = "python"
    multiline: bool = False
    test: str = ""
    """Code appended to the candidate program whose exit status decides pass/fail."""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def program(self, middle: str) -> str:
        """The executable program for a completion candidate (HumanEval-style tasks)."""
        return f"{self.prefix}{middle}{self.suffix}\n\n{self.test}\n"
