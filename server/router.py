"""Task → specialist → engine call, escalating to the baseline LLM per the specialist's
routing policy (:mod:`covey_specialists.escalation`).

A baseline exists only when the user configured its URL; without one every answer is the
specialist's, whatever the policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from covey_specialists import escalation
from covey_specialists.baseline import BaselineClient
from covey_specialists.client import Completion, EngineClient
from covey_specialists.table import Specialist, SpecialistsTable
from covey_specialists.tasks.common import Prompt

log = logging.getLogger("covey.router")


@dataclass(frozen=True)
class Route:
    specialist: Specialist
    model: str
    """The served model name sent to the engine."""


class Router:
    def __init__(self, table: SpecialistsTable, client: EngineClient,
                 baseline: BaselineClient | None = None):
        self.table = table
        self.client = client
        self.baseline = baseline
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
                   max_tokens: int | None = None,
                   validate: escalation.Validate | None = None,
                   withhold: escalation.Withhold | None = None) -> Completion:
        """Run ``task`` small-model first; the served answer (its call says whether it came
        from the baseline), or, when nothing is served, the call that says why.

        ``validate`` checks raw answer text (None: usable, else why not); under a policy
        other than ``never`` a failed check escalates or serves nothing. ``withhold`` may
        hide the specialist's answer (its call then has status ``withheld``); log-probs are
        asked for when it is given.
        """
        route = self.route(task)
        if not self.served_models and self.table.for_task(task).routing != "always-baseline":
            await self.refresh_models()
            route = self.route(task)
        routed = await escalation.answer(route.specialist, prompt, engine=self.client,
                                         baseline=self.baseline, validate=validate,
                                         language=language, model=route.model,
                                         max_tokens=max_tokens,
                                         logprobs=True if withhold is not None else None,
                                         withhold=withhold)
        return routed.as_completion()

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.baseline is not None:
            await self.baseline.aclose()
