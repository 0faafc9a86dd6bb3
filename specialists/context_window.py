"""Prompts that fit the engine's context window, counted in the engine's own tokens.

A specialist's ``max_prompt_chars`` bounds its prompt in characters, which suits ordinary
code (about 3.5 characters a token) but not a table of numbers or comments in Chinese (a
token or more a character): 3,000 such characters overflow SmolLM2's 2,048 tokens, and
vLLM answers HTTP 400, so the editor showed nothing. A prompt that leaves less room than
the answer's ``max_tokens`` is worse: vLLM quietly shortens the answer.

vLLM names its window (``max_model_len``) and its model's folder (``root``) in
``/v1/models``. When that folder is on this machine, the client counts each prompt with
the model's tokenizer and, if prompt and answer do not fit, has the task cut its context
further (:func:`covey_specialists.tasks.shrink`). An engine whose tokenizer is not here
(another machine's) gets prompts as they were built.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from covey_specialists.tasks import shrink
from covey_specialists.tasks.common import Prompt

log = logging.getLogger("covey.context")

SHRINK_TRIES = 4
"""Cuts before giving up; each aims a little under the room left, since tokens are not
spread evenly over the characters it cuts."""
SHRINK_MARGIN = 0.95


class PromptTooLong(ValueError):
    """The prompt cannot be cut to fit (a refactor's selection is cut by no one)."""


@dataclass(frozen=True)
class ContextWindow:
    max_model_len: int
    tokenizer: object
    """A ``tokenizers.Tokenizer``: the same tokens vLLM will count."""

    @classmethod
    def from_models(cls, cards: list[dict]) -> ContextWindow | None:
        """The window of the base model in a ``/v1/models`` answer, or None when it names
        no length or its tokenizer is not on this machine."""
        base = next((c for c in cards if c.get("max_model_len")), None)
        if base is None or not isinstance(base.get("root"), str):
            return None
        tokenizer = load_tokenizer(base["root"])
        return None if tokenizer is None else cls(int(base["max_model_len"]), tokenizer)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=True).ids)

    def fit(self, prompt: Prompt, max_tokens: int) -> Prompt:
        """``prompt``, or the task's shorter one, such that it and ``max_tokens`` of answer
        fit the window; :class:`PromptTooLong` when the task cannot cut it enough."""
        room = self.max_model_len - max_tokens
        tokens = self.count(prompt.text)
        for _ in range(SHRINK_TRIES):
            if tokens <= room:
                return prompt
            shorter = shrink(prompt, room / tokens * SHRINK_MARGIN)
            if shorter is None:
                break
            prompt, tokens = shorter, self.count(shorter.text)
        if tokens <= room:
            return prompt
        raise PromptTooLong(
            f"the prompt is {tokens} tokens; with {max_tokens} for the answer it does not "
            f"fit the model's {self.max_model_len}-token context")


@functools.lru_cache(maxsize=4)
def load_tokenizer(folder: str):
    """The ``tokenizer.json`` in a local model folder, or None."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        from tokenizers import Tokenizer
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - no count means prompts go out as built
        log.warning("cannot load the tokenizer %s: %s", path, exc)
        return None
