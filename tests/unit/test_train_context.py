"""Completion training examples carry the repository context serving builds: the same
builder, the same document (the hole emptied), the same cursor, the example's own package
as the workspace; the held-out split does not change."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from covey_eval.splits import is_heldout_in_repository
from covey_specialists.document import Document
from covey_specialists.repo_context import Workspace
from covey_specialists.table import load_table
from covey_specialists.tasks import completion
from covey_specialists.tasks.protocol import Where
from covey_training import data_completion
from covey_training.card import write_card
from covey_training.dataset import SourceSet, build_dataset, context_package
from covey_training.sources import iter_source_paths

PRICING = textwrap.dedent('''\
    """Prices."""


    def apply_discount(price: float, rate: float) -> float:
        """Return the price after a discount of rate."""
        return round(price * (1 - rate), 2)
    ''')

CART = textwrap.dedent('''\
    from shop.pricing import apply_discount


    def total(items, rate):
        subtotal = sum(items)
        discounted = apply_discount(subtotal, rate)
        return discounted


    def total_with_tax(items, rate, tax):
        net = apply_discount(sum(items), rate)
        return net * (1 + tax)
    ''')
"""Each function uses the import: the document without one use still shows another near
the cursor (the import statement itself is no use, so a hole that removes a file's only
use has no context, as served)."""

ONCE = textwrap.dedent('''\
    from shop.pricing import apply_discount


    def checkout(items, rate):
        subtotal = sum(items)
        paid = apply_discount(subtotal, rate)
        print(paid)
        return paid
    ''')
"""Uses its import once: a hole over that use only the context can answer."""

LONELY = textwrap.dedent('''\
    import os


    def home():
        where = os.path.expanduser("~")
        return os.path.abspath(where)
    ''')


def _shop(tmp_path: Path) -> Path:
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    (shop / "pricing.py").write_text(PRICING)
    (shop / "cart.py").write_text(CART)
    (shop / "lonely.py").write_text(LONELY)
    (shop / "once.py").write_text(ONCE)
    return shop


def _by_file(examples, rel):
    return [ex for ex in examples if ex.source.rsplit(":", 1)[0] == rel]


def _served_repo(base: Path, package: Path, rel: str, prefix: str, suffix: str,
                 multiline: bool) -> str:
    """What ``completion.plan`` puts in the prompt for a cursor at the hole."""
    budget, count, _ = data_completion.context_budget()
    workspace = Workspace(index=data_completion.package_index(package, base), key=rel,
                          budget_tokens=budget, count=count)
    doc = Document(f"file:///{rel}", prefix + suffix, "python")
    spec = load_table().for_task("completion")
    plan = completion.plan(doc, Where(offset=len(prefix), multiline=multiline), spec,
                           workspace=workspace)
    return plan.prompt.meta.get("repo", "")


def test_an_example_using_an_imported_function_has_its_definition_as_served(tmp_path):
    shop = _shop(tmp_path)
    examples, info = build_dataset("completion", [shop], split="all", per_file=40, workers=1)
    text = CART
    using = [ex for ex in _by_file(examples, "shop/cart.py")
             if "apply_discount(" in ex.meta["middle"]]
    assert using
    for ex in using:
        assert ex.meta["repo_context"] is True
        # the other module's path and signature, in the prompt
        assert "# shop/pricing.py\n" in ex.prompt
        assert "# def apply_discount(price: float, rate: float) -> float:\n" in ex.prompt
        assert '#     """Return the price after a discount of rate."""\n' in ex.prompt
        # one builder: the repo part is exactly what plan renders for this cursor
        start, end = map(int, ex.source.rsplit(":", 1)[1].split("-"))
        prefix, suffix = text[:start], text[end:]
        repo = _served_repo(tmp_path, shop, "shop/cart.py", prefix, suffix,
                            ex.meta["multiline"])
        assert repo and repo in ex.prompt
        rebuilt = completion.training_example(prefix, ex.meta["middle"], suffix,
                                              ex.meta["multiline"], "shop/cart.py",
                                              completion.TRAIN_BUDGET, "fim-smol", repo)
        assert ex.prompt == rebuilt.prompt
        # the fair base's prompt (for the gate) carries it too, above the function
        assert repo + "def total" in rebuilt.meta["base_prompt"]
    assert info.repo_context["examples"] == sum(ex.meta["repo_context"] for ex in examples)
    assert 0 < info.repo_context["share"] < 1
    assert info.repo_context["budget_tokens"] == int(
        load_table().engine.max_model_len * load_table().for_task("completion")
        .repo_context_share)


def test_a_file_without_workspace_imports_has_no_context(tmp_path):
    shop = _shop(tmp_path)
    examples, _ = build_dataset("completion", [shop], split="all", per_file=40, workers=1)
    lonely = _by_file(examples, "shop/lonely.py")
    assert lonely
    for ex in lonely:
        assert ex.meta["repo_context"] is False
        assert "shop/" not in ex.prompt
    # without a workspace at all (the option off, or a top-level module): the old prompt
    plain, info = build_dataset("completion", [shop], split="all", per_file=40, workers=1,
                                repo_context=False)
    assert not info.repo_context
    old = {ex.source: ex.prompt for ex in plain}
    for ex in lonely:
        assert ex.prompt == old[ex.source]


def _names(heldout: bool, n: int) -> list[str]:
    """Packages whose files (``__init__``, ``pricing``, ``cart``) all fall on one side of a
    repository's split (by module within it)."""
    found = [f"pkg{i}" for i in range(5000)
             if all(is_heldout_in_repository(f"pkg{i}/{m}.py") == heldout
                    for m in ("__init__", "pricing", "cart"))]
    return found[:n]


def test_the_held_out_split_is_unchanged_and_never_reaches_a_training_prompt(tmp_path):
    repo = tmp_path / "repo"
    train_pkgs, held_pkgs = _names(False, 4), _names(True, 2)
    for i, name in enumerate(train_pkgs + held_pkgs):
        (repo / name).mkdir(parents=True)
        (repo / name / "__init__.py").write_text("")
        # no two alike, or near-duplicate removal would drop one's examples
        (repo / name / "pricing.py").write_text(
            PRICING.replace("rate), 2)", f"rate) * {i + 2}, {i})")
            + f"\n\nCURRENCY = {name!r}\nSYMBOL = CURRENCY.upper()[:{i + 1}]\n")
        # each package's cart uses a held-out package's function, and its own
        other = held_pkgs[0]
        (repo / name / "cart.py").write_text(
            f"from {other}.pricing import apply_discount as held\n"
            + CART.replace("shop.pricing", f"{name}.pricing")
            + "\n\ndef again(x):\n    return held(x, 0.5)\n")
    roots = [repo]
    with_context, info = build_dataset("completion", roots, per_file=40, workers=1,
                                       decontaminate=False)
    without, _ = build_dataset("completion", roots, per_file=40, workers=1,
                               decontaminate=False, repo_context=False)
    files = {ex.source.rsplit(":", 1)[0] for ex in with_context}
    assert files == {ex.source.rsplit(":", 1)[0] for ex in without}
    assert files == {rel for _, rel in iter_source_paths(roots, "train")
                     if not rel.endswith("__init__.py")}
    assert not any(is_heldout_in_repository(f) for f in files)
    # the same spans: context changes prompts, not which code is trained on
    assert sorted(ex.source for ex in with_context) == sorted(ex.source for ex in without)
    assert info.repo_context["examples"] > 0
    for ex in with_context:
        assert not any(f"{name}/" in ex.prompt for name in held_pkgs)
    # (the held-out definition is in use: with every file, serving's index, it shows)
    everything, _ = build_dataset("completion", roots, split="all", per_file=40, workers=1)
    assert any(f"# {held_pkgs[0]}/pricing.py" in ex.prompt for ex in everything
               if not is_heldout_in_repository(ex.source.rsplit(":", 1)[0]))


def test_the_stdlib_and_packages_use_the_top_level_package_the_user_their_root(tmp_path):
    shop = _shop(tmp_path)
    stdlib = SourceSet("cpython-stdlib", "PSF-2.0", (tmp_path,))
    assert context_package(stdlib, tmp_path, tmp_path, "shop/cart.py") == shop
    (tmp_path / "solo.py").write_text(LONELY)
    assert context_package(stdlib, tmp_path, tmp_path, "solo.py") is None
    package = SourceSet("shop", "MIT", (shop,))
    assert context_package(package, shop, tmp_path, "shop/cart.py") == shop
    mine = SourceSet(str(tmp_path), "user-supplied", (tmp_path,))
    assert context_package(mine, tmp_path, tmp_path, "shop/cart.py") == tmp_path


def test_the_card_gives_the_share_with_context(tmp_path):
    dataset = {"split": "train", "files": 1, "examples": 4, "sources": [],
               "repo_context": {"examples": 1, "share": 0.25, "budget_tokens": 512,
                                "counted_with": "tokenizer"}}
    result = {"steps": 1, "examples_seen": 4, "tokens_seen": 9, "seconds": 1.0,
              "first_loss": 2.0, "final_loss": 1.0}
    card = write_card(tmp_path, "completion", dataset, {"rank": 8}, result, None, "covey train")
    assert "- Repository context: 25.0% of examples (1)" in card.read_text()


@pytest.mark.slow
def test_training_can_start_from_an_existing_adapter(prepared_model):
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    from covey_training.lora import TrainConfig, attach_lora, load_base, load_init_adapter

    shipped = Path(completion.__file__).resolve().parents[1] / "adapters" / "completion"
    cfg = TrainConfig(rank=8, alpha=16, init_adapter=str(shipped))
    model, _ = load_base(prepared_model, "cpu")
    model = attach_lora(model, cfg)
    assert load_init_adapter(model, shipped, cfg) > 0
    loaded, stored = get_peft_model_state_dict(model), load_file(
        str(shipped / "adapter_model.safetensors"))
    assert all(torch.equal(loaded[k], stored[k].float()) for k in stored)
    with pytest.raises(ValueError, match="rank 8"):
        load_init_adapter(model, shipped, TrainConfig(rank=4, alpha=8))


def test_holes_only_the_context_answers_are_chosen_first(tmp_path):
    """With three examples a file, one is a hole over the file's only use of an imported
    name, whose definition the context carries; the dataset counts them."""
    shop = _shop(tmp_path)
    examples, info = build_dataset("completion", [shop], split="all", per_file=3, workers=1)
    once = _by_file(examples, "shop/once.py")
    needy = [ex for ex in once if ex.meta["needs_context"]]
    assert len(needy) == 1
    assert "apply_discount" in needy[0].meta["middle"]
    assert "# def apply_discount(price: float, rate: float) -> float:\n" in needy[0].prompt
    assert not any(ex.meta["needs_context"] for ex in _by_file(examples, "shop/lonely.py"))
    assert info.repo_context["needing_it"] == sum(ex.meta["needs_context"] for ex in examples)


def test_training_on_a_repository_continues_the_adapter_in_use(tmp_path):
    """Today's adapter keeps what it knew: with REPOS, training starts from it (same rank),
    unless --fresh, another --init-adapter, or a rank it cannot start from says otherwise."""
    from covey_training.cli import starting_adapter

    in_use = tmp_path / "v3"
    in_use.mkdir()
    (in_use / "adapter_config.json").write_text('{"r": 8}')
    given = tmp_path / "other"
    assert starting_adapter(None, False, True, in_use, 8)[0] == in_use
    assert starting_adapter(given, False, True, in_use, 8) == (given, "")
    assert starting_adapter(None, True, True, in_use, 8) == (None, "")
    assert starting_adapter(None, False, False, in_use, 8) == (None, "")  # the stdlib recipe
    assert starting_adapter(None, False, True, None, 8) == (None, "")  # the untuned base
    start, note = starting_adapter(None, False, True, in_use, 16)
    assert start is None and "rank 8, not 16" in note
