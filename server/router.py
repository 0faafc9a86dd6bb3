"""Task → specialist → engine call. The one place where escalation to a large LLM plugs in.

Today every task goes to its small specialist (routing policy ``never``). A policy such as
``on-failure`` or ``on-low-confidence`` belongs in :meth:`Router.call`, after the
specialist's answer is known: check it, and if it fails, ask the baseline and report that
call with ``source="baseline"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from covey_specialists.client import Completion, EngineClient
from covey_specialists.prompts import Prompt
from covey_specialists.table import Specialist, SpecialistsTable

log = logging.getLogger("covey.router")


@dataclass(frozen=True)
class Route:
    specialist: Specialist
    model: str
    """The served model name sent to the engine."""


class Router:
    def __init__(self, table: SpecialistsTable, client: EngineClient):
        self.table = table
        self.client = client
        self.served_models: list[str] = []
        """What the engine serves, from ``/v1/models``; empty until known."""

    def route(self, task: str) -> Route:
        spec = self.table.for_task(task)
        return Route(spec, self.model_for(spec))

    def model_for(self, spec: Specialist) -> str:
        """The specialist's served name; an engine that does not serve it gets its base.

        A remote engine (or a dev one) may serve the base under another name; vLLM lists
        the base model first in ``/v1/models``.
        """
        name = spec.served_name
        if self.served_models and name not in self.served_models:
            log.debug("engine does not serve %r; using %r", name, self.served_models[0])
            return self.served_models[0]
        return name

    async def refresh_models(self) -> bool:
        """Ask the engine what it serves; False when it does not answer."""
        try:
            self.served_models = await self.client.models()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable now"
            log.info("engine models unavailable: %s", exc)
            return False
        return True

    async def call(self, task: str, prompt: Prompt, *, language: str = "",
                   max_tokens: int | None = None) -> Completion:
        """Run ``task`` on its specialist. Escalation (policy ≠ ``never``) goes here."""
        route = self.route(task)
        if not self.served_models:
            await self.refresh_models()
            route = self.route(task)
        return await self.client.complete(route.specialist, prompt, language=language,
                                          max_tokens=max_tokens, model=route.model)
