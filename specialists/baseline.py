"""A client for any OpenAI-compatible endpoint: the large-LLM baseline.

Chat (``/v1/chat/completions``) or plain completions (``/v1/completions``), streamed, with
usage requested on the stream. 429 and 5xx answers are retried with backoff, honouring
``Retry-After``. Like the engine client it never raises (except on cancellation) and
reports each call to its sink exactly once, with ``source="baseline"``.

:func:`ask` turns a specialist's prompt into the baseline's request (chat messages, or the
plain text prompt) and its reply into text the specialist's post-processing accepts, so
escalation (editor and eval alike) needs nothing task-specific of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass

import httpx

from covey_settings import layer, structure
from covey_specialists.sse import sse_chunks
from covey_specialists.table import Specialist
from covey_specialists.tasks import task_module
from covey_specialists.tasks.common import Prompt
from covey_usage.calls import CallSink, LogSink, ModelCall, new_call_id

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class BaselineSettings:
    """The baseline as the user configures it (editor settings, environment, eval flags)."""

    url: str = ""
    """OpenAI-compatible base URL; empty: no baseline, nothing is ever sent anywhere."""
    model: str = "gpt-4.1"
    """The model to ask."""
    api_key_env: str = "COVEY_BASELINE_API_KEY"
    """Environment variable holding the API key."""
    api: str = "chat"
    """``chat`` (``/v1/chat/completions``) or ``completions`` (``/v1/completions``)."""


BASELINE_ENV = {"COVEY_BASELINE_URL": "url", "COVEY_BASELINE_MODEL": "model",
                "COVEY_BASELINE_API": "api"}
"""The environment variables the CLI's baseline settings come from."""


@dataclass(frozen=True)
class BaselineConfig:
    url: str
    model: str
    api_key: str = ""
    api: str = "chat"
    """``chat`` or ``completions``."""
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: BaselineSettings) -> BaselineConfig | None:
        """None without a URL: nothing is ever sent anywhere unless the user gave one."""
        if not settings.url.strip():
            return None
        if settings.api not in ("chat", "completions"):
            raise ValueError(f"baseline.api must be chat or completions, not {settings.api!r}")
        return cls(url=settings.url.strip().rstrip("/"), model=settings.model or "gpt-4.1",
                   api_key=os.environ.get(settings.api_key_env, ""), api=settings.api)

    @classmethod
    def from_options(cls, options: dict | None) -> BaselineConfig | None:
        """From editor settings ``{url, model, api_key_env, api}``; None without a URL."""
        settings = structure(BaselineSettings, layer(editor=options or {}), error=ValueError,
                             prefix=("baseline",))
        return cls.from_settings(settings)

    @classmethod
    def from_env(cls, url: str | None = None, model: str | None = None,
                 api: str | None = None) -> BaselineConfig | None:
        """From options, else COVEY_BASELINE_URL / _MODEL / _API_KEY / _API; None if unset."""
        flags = {"url": url, "model": model, "api": api}
        settings = structure(BaselineSettings, layer(env=BASELINE_ENV, editor=flags,
                                                            editor_name="options"),
                             error=ValueError, prefix=("baseline",))
        return cls.from_settings(settings)


@dataclass
class BaselineReply:
    text: str
    call: ModelCall
    retries: int = 0


class BaselineClient:
    def __init__(self, config: BaselineConfig, *, sink: CallSink | None = None,
                 client_name: str = "eval"):
        if config.api not in ("chat", "completions"):
            raise ValueError(f"baseline api must be chat or completions, not {config.api!r}")
        self.config = config
        self.sink = sink or LogSink()
        self.client_name = client_name
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        base = config.url if config.url.endswith("/v1") else config.url + "/v1"
        self._http = httpx.AsyncClient(base_url=base, headers=headers,
                                       timeout=httpx.Timeout(None, connect=10.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, *, task: str, messages: list[dict] | None = None,
                       prompt: str | None = None, max_tokens: int = 256,
                       stop: list[str] | None = None, eval_run_id: str | None = None,
                       language: str = "") -> BaselineReply:
        cfg = self.config
        call = ModelCall(id=new_call_id(), task=task, specialist="baseline", model=cfg.model,
                         adapter="", base_model=cfg.model, engine_url=cfg.url,
                         client=self.client_name, language=language, started_at=time.time(),
                         source="baseline", eval_run_id=eval_run_id)
        body: dict = {"model": cfg.model, "stream": True, "max_tokens": max_tokens,
                      "temperature": 0.0, "stream_options": {"include_usage": True}}
        if stop:
            body["stop"] = stop[:4]  # OpenAI accepts at most four
        if cfg.api == "chat":
            body["messages"] = messages or [{"role": "user", "content": prompt or ""}]
            path = "/chat/completions"
        else:
            body["prompt"] = prompt if prompt is not None else _flatten(messages or [])
            path = "/completions"
        started = time.perf_counter()
        pieces: list[str] = []
        retries = 0
        try:
            async with asyncio.timeout(cfg.timeout_s):
                while True:
                    status, wait = await self._attempt(path, body, call, started, pieces)
                    if status is None:
                        break
                    if retries >= cfg.max_retries:
                        raise _Failed(f"HTTP {status} after {retries} retries")
                    retries += 1
                    await asyncio.sleep(wait if wait is not None
                                        else cfg.backoff_s * 2 ** (retries - 1))
        except asyncio.CancelledError:
            call.status = "cancelled"
            raise
        except TimeoutError:
            call.status, call.error = "timeout", f"no answer within {cfg.timeout_s:g}s"
        except (httpx.HTTPError, _Failed) as exc:
            call.status, call.error = "error", str(exc) or type(exc).__name__
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
            text = "".join(pieces)
            if not call.completion_tokens and pieces:
                call.completion_tokens = len(pieces)
            call.prompt_text, call.completion_text = json.dumps(body.get("messages")
                                                                or body.get("prompt")), text
            self.sink.record(call)
        return BaselineReply(text="".join(pieces), call=call, retries=retries)

    async def _attempt(self, path: str, body: dict, call: ModelCall, started: float,
                       pieces: list[str]) -> tuple[int | None, float | None]:
        """One request; (status, wait) when it should be retried, (None, None) when done."""
        pieces.clear()
        call.ttft_ms = None
        async with self._http.stream("POST", path, json=body) as response:
            if response.status_code in RETRY_STATUSES:
                await response.aread()
                return response.status_code, _retry_after(response)
            if response.status_code != 200:
                detail = (await response.aread()).decode("utf-8", "replace")[:300]
                raise _Failed(f"baseline answered HTTP {response.status_code}: {detail}")
            async for chunk in sse_chunks(response, "baseline", _Failed):
                call.take_usage(chunk)
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    call.mark_text(piece, started)
                    if piece:
                        pieces.append(piece)
        return None, None


async def ask(client: BaselineClient, spec: Specialist, prompt: Prompt, *,
              language: str = "", eval_run_id: str | None = None) -> tuple[BaselineReply, str]:
    """Ask the baseline the specialist's question; (the reply, its text in specialist form).

    The task's module turns the prompt into the baseline's request and its reply into
    text the task's post-processing accepts.
    """
    api = client.config.api
    task = task_module(prompt.task)
    req = task.baseline_request(spec, prompt, api)
    reply = await client.complete(task=spec.task, messages=req.messages, prompt=req.prompt,
                                  max_tokens=req.max_tokens, stop=req.stop,
                                  eval_run_id=eval_run_id, language=language)
    return reply, task.baseline_reply(reply.text, api, prompt)


class _Failed(RuntimeError):
    pass


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


def _flatten(messages: list[dict]) -> str:
    return "\n\n".join(m.get("content", "") for m in messages)
