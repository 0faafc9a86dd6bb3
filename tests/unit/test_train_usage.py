"""Accepted suggestions in the usage log become training examples, only with stored text."""

from __future__ import annotations

from covey_specialists.tasks import completion as prompts
from covey_training.dataset import USAGE_WEIGHT, build_dataset
from covey_training.usage_data import accepted_examples
from covey_usage import open_usage_log
from covey_usage.calls import ModelCall, new_call_id

SECRET = "AKIA" + "ZZZZYYYYXXXXWWWW"


def _call(prompt: str, completion: str, status: str = "ok") -> ModelCall:
    return ModelCall(id=new_call_id(), task="completion", specialist="completion",
                     model="completion", adapter="", base_model="smol",
                     engine_url="http://127.0.0.1:1", status=status, prompt_text=prompt,
                     completion_text=completion)


def _fim(prefix: str, suffix: str = "\n") -> str:
    ctx = prompts.CompletionContext(prefix=prefix, suffix=suffix)
    return prompts.completion_prompt(ctx, "fim-smol", 3000).text


def _log(path, store_text: bool, calls: list[tuple[ModelCall, bool | None]]) -> None:
    usage = open_usage_log(path, store_text=store_text, meter=False, settle_s=0)
    for call, accepted in calls:
        usage.record(call)
        if accepted is not None:
            usage.mark_accepted(call.id, accepted)
    usage.close()


def test_only_accepted_rows_with_text_in_the_served_format_are_used(tmp_path):
    db = tmp_path / "usage.db"
    good = _call(_fim("def area(r):\n    return "), "3.14159 * r * r")
    rejected = _call(_fim("x = "), "1")
    other_format = _call("def f():\n    return ", "1")  # e.g. an escalated call
    leaked = _call(_fim("KEY = "), f'"{SECRET}"')
    _log(db, True, [(good, True), (rejected, False), (other_format, True), (leaked, True)])

    examples, stats = accepted_examples("completion", db)
    assert stats.accepted == 3 and stats.other_format == 1
    assert [ex.source for ex in examples] == [f"usage:{good.id}", f"usage:{leaked.id}"]
    assert examples[0].target == "3.14159 * r * r<|endoftext|>"
    assert examples[0].prompt == good.prompt_text

    # the dataset scrubs them like any other example: the planted key never gets through;
    # what is kept counts USAGE_WEIGHT times in training
    data, info = build_dataset("completion", [tmp_path / "empty"], usage_examples=examples)
    assert info.from_usage == 1 and info.scrub["dropped"] == {"aws-access-key": 1}
    assert SECRET not in "".join(ex.to_json() for ex in data)
    assert [ex.source for ex in data] == [f"usage:{good.id}"] * USAGE_WEIGHT


def test_the_servers_outcomes_decide_and_text_removed_later_is_left_out(tmp_path):
    """A full accept the server inferred counts even without covey.accept; one whose text
    was gone at a retention check does not; a partial accept does not (the stored answer is
    more than the user kept)."""
    db = tmp_path / "usage.db"
    inferred, removed, partial = (_call(_fim(f"v{i} = "), str(i)) for i in range(3))
    usage = open_usage_log(db, store_text=True, meter=False, settle_s=0)
    for call, fields in ((inferred, {"outcome": "accepted", "retained_30s": 1}),
                         (removed, {"outcome": "accepted", "retained_30s": 1,
                                    "retained_120s": 0}),
                         (partial, {"outcome": "partial"})):
        usage.record(call)
        usage.mark_outcome(call.id, fields)
    usage.close()
    examples, stats = accepted_examples("completion", db)
    assert [ex.source for ex in examples] == [f"usage:{inferred.id}"]
    assert (stats.accepted, stats.removed) == (2, 1)


def test_rows_without_stored_text_are_counted_not_used(tmp_path):
    db = tmp_path / "usage.db"
    _log(db, False, [(_call(_fim("y = "), "2"), True)])
    examples, stats = accepted_examples("completion", db)
    assert examples == [] and stats.accepted == 1 and stats.without_text == 1
