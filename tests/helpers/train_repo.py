"""A tiny repository for training tests: two small functions per module, in modules that
fall on the training side or the held-out side of the split, as a test needs."""

from __future__ import annotations

from pathlib import Path

from covey_training.sources import is_held_out

BODY = '''\
def scale(values, factor):
    """Multiply every value by factor."""
    out = []
    for v in values:
        out.append(v * factor)
    return out


def clamp(x, low, high):
    """Limit x to the range low..high."""
    if x < low:
        return low
    return min(x, high)
'''


def module_names(held: bool, n: int) -> list[str]:
    """``n`` module names on the held-out side (``held``) or the training side."""
    names = (f"mod_{i}" for i in range(1000))
    return [m for m in names if is_held_out(f"{m}.py") == held][:n]


def tiny_repo(root: Path, train: int = 2, held: int = 2) -> Path:
    root.mkdir()
    for name in module_names(False, train) + module_names(True, held):
        (root / f"{name}.py").write_text(BODY)
    return root
