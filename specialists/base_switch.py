"""``covey models use``: switch every specialist to another base in the user's table.

The completion prompt takes the base's own FIM format; adapters trained on another base
are set aside (the shipped ones come back on the default base), and so is a show threshold
calibrated on an adapter that no longer serves.
"""

from __future__ import annotations

import dataclasses
import math

from covey_specialists import engine, model_registry
from covey_specialists.base_model import ModelError
from covey_specialists.table import SpecialistsTable, shipped_specialists
from covey_specialists.tasks import task_module
from covey_specialists.user_table import read_user_table, write_user_table


def switch_base(name: str, current: SpecialistsTable) -> list[str]:
    """Point every specialist of the user's table at the base ``name`` (``current`` is
    the table in force); what changed, a line each. ModelError for an unknown base."""
    if name == "default":
        fmt = model_registry.LEARNED_FORMAT
    else:
        card = model_registry.registered(name)
        if card is None:
            raise ModelError(f"no base is registered as {name!r}; run `covey "
                              "models add PATH --name NAME` first")
        fmt = card.fim_format
    shipped = shipped_specialists()
    user_file, data = read_user_table()
    lines = []
    for spec in current.specialists.values():
        entry = data.setdefault("specialists", {}).setdefault(spec.key, {})
        entry["base"] = name
        if fmt in task_module(spec.task).FORMATS and spec.prompt_format != fmt:  # FIM
            entry["prompt_format"] = fmt
            lines.append(f"{spec.key}: prompt format {spec.prompt_format} -> {fmt}")
        keep = _adapter_for(spec, name, shipped.get(spec.key))
        if keep != spec.adapter:
            entry["adapter"] = keep
            untuned = f"(none: the untuned base, until `covey train {spec.task}`)"
            lines.append(f"{spec.key}: adapter {spec.adapter or '(none)'} -> {keep or untuned}")
            # a show threshold is calibrated on one adapter's answers: none for another
            original = shipped.get(spec.key)
            entry["min_show_logprob"] = (original.min_show_logprob if original and
                                         keep == original.adapter else -math.inf)
        if spec.workspaces:
            entry["workspaces"] = [{"root": ws.root, "adapter": ws.adapter}
                                   for ws in spec.workspaces if _fits(ws.adapter, spec, name)]
            for ws in spec.workspaces:
                if not _fits(ws.adapter, spec, name):
                    lines.append(f"{spec.key}: the adapter for {ws.root} was trained on "
                                 "another base; set aside")
    write_user_table(user_file, data)
    return lines


def _adapter_for(spec, base: str, shipped) -> str:
    """The adapter a specialist keeps on ``base``: its own if it was trained on that base,
    else the shipped one if that was, else none."""
    for candidate in (spec.adapter, shipped.adapter if shipped else ""):
        if candidate and _fits(candidate, spec, base):
            return candidate
    return ""


def _fits(adapter: str, spec, base: str) -> bool:
    try:
        engine.resolve_adapter(dataclasses.replace(spec, adapter=adapter, base=base))
    except engine.EngineError:
        return False
    return True
