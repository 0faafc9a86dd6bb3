"""A small repository for the repo suite's tests: one function whose every line uses a
name from another file (``total``), one with local names only (``double_all``), one with
a name from the standard library (``where``), beside a top-level ``path.py`` named like
the stdlib's ``os.path``, which the index's lenient lookup would take for it."""

from __future__ import annotations

from pathlib import Path

HELPERS = '''\
def scale_price(amount, factor):
    """Multiply a price by a factor, rounded to cents."""
    return round(amount * factor, 2)


class Basket:
    def add(self, item):
        return item


def tax_of(amount):
    """The tax on an amount."""
    return amount * 0.2
'''
# every body line of each function uses the names it is about (in ``total``, a name from
# the other file that no other line uses), so whichever line or run of lines the suite
# punches out, the hole's kind is known
SHOP = '''\
from os.path import join

from pkg.helpers import Basket, scale_price, tax_of


def total(items, factor):
    first = scale_price(items[0], factor)
    basket = Basket()
    return tax_of(first) + len(basket.add(items))


def double_all(items):
    doubled = [item * 2 for item in items]
    count = len(doubled)
    return doubled, count


def where(name):
    base = join("/tmp", name)
    full = join(base, "x")
    return join(full, "y")
'''
# a top-level module named like the stdlib's ``os.path``, which the index's lenient lookup
# would take for it: ``join`` above must still count as the stdlib's
PATH = "def join(*parts):\n    return '/'.join(parts)\n"


def synthetic_repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "helpers.py").write_text(HELPERS)
    (root / "pkg" / "shop.py").write_text(SHOP)
    (root / "path.py").write_text(PATH)
    return root
