"""The systems under evaluation: each turns a task into an answer in the task's edit form.

Answer forms: completion → the middle text; doc → the docstring block as it would be
inserted (indented, triple-quoted); refactor → the rewritten code.

- ``oracle`` answers with the reference and ``empty`` with nothing: sanity bounds.
- ``specialist`` calls the engine with the table's specialist (its adapter, if any).
- ``base`` calls the same engine and prompts with the untuned base model (``model=base``).
- ``baseline`` calls an OpenAI-compatible LLM endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from covey_eval.scoring import body_indent
from covey_eval.tasks import Task
from covey_specialists import prompts
from covey_specialists.baseline import BaselineClient
from covey_specialists.calls import ModelCall
from covey_specialists.client import EngineClient
from covey_specialists.table import Specialist, SpecialistsTable

SYSTEM_NAMES = ("specialist", "base", "baseline", "oracle", "empty")
CHAT_COMPLETION_SYSTEM = (
    "You fill in missing code. The user shows a file with the cursor marked <CURSOR>. "
    "Reply with only the code that belongs at the cursor — no explanation, no fences.")


@dataclass
class Answer:
    text: str
    call: ModelCall | None = None


class System:
    name: str = ""
    label: str = ""
    kind: str = "sanity"
    """``sanity``, ``local`` (small model on the engine) or ``llm`` (the baseline)."""

    async def answer(self, task: Task) -> Answer:
        raise NotImplementedError


class OracleSystem(System):
    name, label = "oracle", "oracle (the reference answer)"

    async def answer(self, task: Task) -> Answer:
        if task.kind == "doc":
            return Answer(prompts.postprocess_docstring(task.reference, body_indent(task.code)))
        return Answer(task.reference)


class EmptySystem(System):
    name, label = "empty", "empty (answers nothing)"

    async def answer(self, task: Task) -> Answer:
        return Answer("")


def build_prompt(task: Task, spec: Specialist, completion_format: str | None = None
                 ) -> prompts.Prompt:
    if task.kind == "completion":
        ctx = prompts.CompletionContext(prefix=task.prefix, suffix=task.suffix,
                                        language=task.language, multiline=task.multiline)
        return prompts.completion_prompt(ctx, completion_format or spec.prompt_format,
                                         spec.max_prompt_chars)
    if task.kind == "doc":
        return prompts.doc_prompt(task.code, task.language, spec.max_prompt_chars)
    return prompts.refactor_prompt(task.code, task.instruction, task.language,
                                   spec.max_prompt_chars)


def postprocess(task: Task, raw: str, prompt: prompts.Prompt) -> str:
    if task.kind == "completion":
        return prompts.postprocess_completion(raw, prompt)
    if task.kind == "doc":
        return prompts.postprocess_docstring(raw, body_indent(task.code))
    return prompts.postprocess_refactor(raw, task.code)


class EngineSystem(System):
    """A small model on the engine: the table's specialist, or the untuned base."""

    kind = "local"

    def __init__(self, name: str, client: EngineClient, table: SpecialistsTable,
                 run_id: str | None, *, untuned: bool = False):
        self.name, self.client, self.table, self.run_id = name, client, table, run_id
        self.untuned = untuned
        spec = table.for_task("completion")
        base = spec.base if spec.base != "default" else "SmolLM2-135M-Instruct"
        self.label = (f"base (untuned small model {base})" if untuned
                      else f"specialist (small model {base}, adapters: "
                           f"{self._adapters() or 'none — untuned'})")

    def _adapters(self) -> str:
        return ", ".join(f"{s.task}={s.adapter}" for s in self.table.specialists.values()
                         if s.adapter)

    async def answer(self, task: Task) -> Answer:
        spec = self.table.for_task(task.kind)
        prompt = build_prompt(task, spec)
        result = await self.client.complete(spec, prompt, language=task.language,
                                            eval_run_id=self.run_id,
                                            model="base" if self.untuned else None)
        if not result.ok:
            return Answer("", result.call)
        return Answer(postprocess(task, result.text, prompt), result.call)


class BaselineSystem(System):
    kind = "llm"

    def __init__(self, client: BaselineClient, table: SpecialistsTable, run_id: str | None):
        self.name = "baseline"
        self.client, self.table, self.run_id = client, table, run_id
        self.label = f"baseline LLM ({client.config.model} at {client.config.url})"

    async def answer(self, task: Task) -> Answer:
        spec = self.table.for_task(task.kind)
        chat = self.client.config.api == "chat"
        prompt = build_prompt(task, spec, completion_format="prefix")
        messages = chat_messages(task, prompt) if chat else None
        stop = None if chat else [s for s in spec.stop if s.strip()]
        reply = await self.client.complete(task=task.kind, messages=messages,
                                           prompt=None if chat else prompt.text,
                                           max_tokens=max(spec.max_tokens, 256), stop=stop,
                                           eval_run_id=self.run_id, language=task.language)
        if reply.call.status != "ok":
            return Answer("", reply.call)
        raw = reply.text
        if task.kind == "completion" and chat:
            raw = prompts.extract_code(raw)
        return Answer(postprocess(task, raw, prompt), reply.call)


def chat_messages(task: Task, prompt: prompts.Prompt) -> list[dict]:
    if task.kind == "completion":
        user = f"{prompt.meta['prefix']}<CURSOR>{prompt.meta['suffix']}"
        return [{"role": "system", "content": CHAT_COMPLETION_SYSTEM},
                {"role": "user", "content": user}]
    system = prompts.DOC_SYSTEM if task.kind == "doc" else prompts.REFACTOR_SYSTEM
    # the user turn of the specialist's ChatML prompt, without the template tokens
    user = prompt.text.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
