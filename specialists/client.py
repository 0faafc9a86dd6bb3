"""Async streaming client for an OpenAI-compatible engine (vLLM's ``/v1/completions``).

Every call streams, asks for usage on the stream, is bounded by the specialist's timeout,
and is reported to a :class:`~covey_usage.calls.CallSink` exactly once, whatever
happens. Cancelling the awaiting task closes the HTTP stream, which makes vLLM abort
the request. The client streams, times and counts; what a call is worth against the
baseline LLM is reckoned where calls are routed (:mod:`covey_specialists.routing`).

Stop strings are cut here, not by the engine: vLLM holds back as many characters as the
longest stop string (12 for ``<|endoftext|>``) until it knows they are not one, which
delayed every streamed piece by about three tokens. So the engine is asked to send the stop
string along and to stream special tokens as text, which also lets a stop that names one
(the completion adapter's ``<|endoftext|>``) end the generation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import httpx

from covey_settings import tls
from covey_specialists.context_window import ContextWindow, PromptTooLong
from covey_specialists.sse import sse_chunks
from covey_specialists.table import Specialist
from covey_specialists.tasks import finished_part, stream_done
from covey_specialists.tasks.common import Prompt
from covey_usage.calls import CallSink, LogSink, ModelCall, new_call_id

log = logging.getLogger("covey.client")


@dataclass
class EngineAnswer:
    text: str
    call: ModelCall
    finish_reason: str | None = None
    prompt: Prompt | None = None
    """The prompt sent: the one asked for, or its cut to fit the context window."""
    followups: list[ModelCall] = field(default_factory=list)
    """Calls that finished the answer after ``call`` (:mod:`covey_specialists.followup`)."""

    @property
    def ok(self) -> bool:
        return self.call.status == "ok"


class EngineClient:
    """One engine endpoint. Safe to share between concurrent requests."""

    def __init__(self, base_url: str, api_key: str = "", *, sink: CallSink | None = None,
                 base_model: str = "", client_name: str = "cli",
                 connect_timeout_s: float = 2.0, store_text: bool = True):
        self.base_url = base_url.rstrip("/")
        self.sink = sink or LogSink()
        self.base_model = base_model
        self.client_name = client_name
        self.store_text = store_text
        self.window: ContextWindow | None = None
        """The engine's context window, learned by :meth:`models`; None: not counted."""
        watch = getattr(self.sink, "watch_engine", None)  # the usage log; other sinks don't
        if watch is not None:
            watch(self.base_url, api_key)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, verify=tls.verify_for(self.base_url),
            timeout=httpx.Timeout(None, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def health(self) -> bool:
        try:
            response = await self._http.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def models(self) -> list[str]:
        """The served model names; learns the engine's context window on the way."""
        response = await self._http.get("/v1/models", timeout=5.0)
        response.raise_for_status()
        cards = response.json().get("data", [])
        self.window = await asyncio.to_thread(ContextWindow.from_models, cards)
        return [m["id"] for m in cards]

    async def complete(self, spec: Specialist, prompt: Prompt, *, language: str = "",
                       max_tokens: int | None = None, logprobs: bool = False,
                       eval_run_id: str | None = None, model: str | None = None,
                       extra_body: dict | None = None, report: bool = True) -> EngineAnswer:
        """Run one completion for ``spec``; never raises except on cancellation.

        ``extra_body`` adds engine-specific request fields (e.g. vLLM's ``ignore_eos``).
        ``report=False`` leaves reporting the call to the caller (:meth:`report`), which
        must then do it exactly once: escalation decides the row's status afterwards.
        """
        call = ModelCall(
            id=new_call_id(), task=spec.task, specialist=spec.key,
            model=model or spec.served_name, adapter=spec.adapter, base_model=self.base_model,
            engine_url=self.base_url, client=self.client_name, language=language,
            started_at=time.time(), eval_run_id=eval_run_id,
        )
        max_tokens = max_tokens or min(spec.max_tokens,
                                       prompt.meta.get("max_tokens", spec.max_tokens))
        body = {
            "model": call.model, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
            "max_tokens": max_tokens,
            "temperature": spec.temperature,
            "top_p": spec.top_p, "stop": list(spec.stop),
            "include_stop_str_in_output": True, "skip_special_tokens": False,
        }
        if spec.frequency_penalty:
            body["frequency_penalty"] = spec.frequency_penalty
        if logprobs:
            body["logprobs"] = 1
        body.update(spec.extra_body)
        body.update(extra_body or {})
        stops = tuple(body.get("stop") or ())
        started = time.perf_counter()
        pieces: list[str] = []
        token_logprobs: list[float] = []
        finish = None
        try:
            if self.window is not None:
                prompt = self.window.fit(prompt, max_tokens)
            body["prompt"] = prompt.text
            async with asyncio.timeout(spec.timeout_s):
                finish = await self._stream(body, call, started, pieces, token_logprobs,
                                            prompt, stops)
        except asyncio.CancelledError:
            call.status = "cancelled"
            raise
        except TimeoutError:
            call.status, call.error = "timeout", f"no answer within {spec.timeout_s:g}s"
        except httpx.ConnectError as exc:
            call.status, call.error = "error", f"engine unreachable at {self.base_url}: {exc}"
        except (httpx.HTTPError, EngineError, PromptTooLong) as exc:
            call.status, call.error = "error", str(exc) or type(exc).__name__
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
            text = cut_at_stop("".join(pieces), stops)
            if finish == "length":  # cut off mid-answer: keep what the task counts as done
                text = finished_part(prompt, text)
            if not call.completion_tokens and pieces:
                call.completion_tokens = len(token_logprobs) or len(pieces)
            if token_logprobs:
                call.mean_logprob = sum(token_logprobs) / len(token_logprobs)
                call.min_logprob = min(token_logprobs)
            if self.store_text:
                call.prompt_text, call.completion_text = prompt.text, text
            if report or call.status == "cancelled":
                self.report(call)
        return EngineAnswer(text=text, call=call, finish_reason=finish, prompt=prompt)

    async def _stream(self, body: dict, call: ModelCall, started: float,
                      pieces: list[str], token_logprobs: list[float],
                      prompt: Prompt, stops: tuple[str, ...]) -> str | None:
        finish = None
        text = ""
        async with self._http.stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode("utf-8", "replace")[:300]
                raise EngineError(f"engine answered HTTP {response.status_code}: {detail}")
            async for chunk in sse_chunks(response, "engine", EngineError):
                call.take_usage(chunk)
                for choice in chunk.get("choices") or ():
                    piece = choice.get("text") or ""
                    call.mark_text(piece, started)
                    pieces.append(piece)
                    lp = (choice.get("logprobs") or {}).get("token_logprobs") or ()
                    token_logprobs.extend(v for v in lp if isinstance(v, (int, float)))
                    finish = choice.get("finish_reason") or finish
                    text += piece
                if any(stop in text for stop in stops if stop):
                    return "stop"
                if stream_done(prompt, text):
                    return "complete"
        return finish

    def report(self, call: ModelCall) -> None:
        """Send a finished call to the sink; a broken sink is logged, never raised."""
        try:
            self.sink.record(call)
        except Exception:  # a broken log must never break completions
            log.exception("usage sink failed for call %s", call.id)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """``text`` up to its first stop string, as the engine would have cut it."""
    ends = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return text[:min(ends)] if ends else text


class EngineError(RuntimeError):
    """The engine answered, but not with a usable stream."""
