"""Faster LoRA on vLLM's CPU backend: one matrix product per adapter in the batch.

vLLM's CPU build has no LoRA kernels; its PyTorch fallback (``vllm.lora.ops.torch_ops``)
gathers a copy of the adapter's matrices for every token (``weights[indices]``) and
multiplies token by token with ``einsum``. A 700-token prompt thus copies each LoRA matrix
700 times in each of the model's 30 layers, which made the first token through an adapter
1.7x slower than through the base model (benchmarks/bench_engine.py).

These replacements compute the same products, grouped by adapter: tokens that share a slot
(usually all of them: the editor asks one specialist at a time) take one ``x @ W.T``, in
float32 against a converted copy of the weights made once.
Tokens without an adapter (slot -1) get no LoRA term at all, where the fallback's
``weights[-1]`` silently borrowed the last slot's matrices (harmless only while that slot
is empty). Products are float32 (the fallback's bf16 expand rounded before adding), cast to
the output's dtype when written.

vLLM also turns torch.compile off on CPU whenever LoRA is on, since its fallback does not
trace. Here the whole LoRA term of a layer is one opaque custom op (``covey::lora_linear``,
C++ in ``lora_linear_cpu.cpp``, built by :func:`load_op` when the engine starts), so the
model compiles around it. A decode step makes 120 such calls; written in Python each cost
about 90 us of dispatch, dtype conversions and small BLAS calls (10.7 ms of a step whose
base model took 26-28 ms on a 2-core AMD EPYC). The C++ op keeps only the ranks an adapter
uses (vLLM pads each to ``--max-lora-rank`` with zeros), runs up to 128 tokens through
register-tiled loops over the weights in their own dtype, and a longer prefill through
BLAS: a decode step of eight requests costs the adapter about 2-4 ms more than the base
model's 35-40 ms, where the Python op cost 10 ms more for one request.
``COVEY_CPU_COMPILE=off`` keeps vLLM's choice (startup then skips the ~2 minutes of the
first compilation; later starts reuse vLLM's compile cache).

Installed as a vLLM general plugin (pyproject's ``vllm.general_plugins`` entry point), so
it reaches the engine-core process too; it acts only when Covey's engine manager sets
``COVEY_CPU_LORA=grouped`` and the CPU punica wrapper is importable.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# a child of vLLM's logger, so the line reaches the engine log from every vLLM process
log = logging.getLogger("vllm.covey_cpu_lora")

ENV = "COVEY_CPU_LORA"
MODE = "grouped"
COMPILE_ENV = "COVEY_CPU_COMPILE"
"""``off``: leave vLLM's CPU engine uncompiled with LoRA, as vLLM itself does."""


def lora_product(inputs: torch.Tensor, weights: torch.Tensor,
                 indices: torch.Tensor) -> torch.Tensor | None:
    """Each token's row of ``inputs`` times its adapter's matrix (transposed), in float32.

    ``inputs`` is [tokens, in]; ``weights`` is [slots, (1,) out, in]; ``indices`` holds each
    token's slot, -1 for none. Returns [tokens, out], or None when no token has an adapter.
    """
    x = inputs.float()
    slots = set(indices[: x.shape[0]].tolist())
    matrices = _float32_transposed(weights)
    if len(slots) == 1:
        (slot,) = slots
        return None if slot < 0 else x @ matrices[slot]
    token_slots = indices[: x.shape[0]]
    out = x.new_zeros(x.shape[0], matrices.shape[2])
    for slot in slots - {-1}:
        rows = token_slots == slot
        out[rows] = x[rows] @ matrices[slot]
    return out


_converted: dict[int, tuple[int, torch.Tensor]] = {}


def _float32_transposed(weights: torch.Tensor) -> torch.Tensor:
    """[slots, in, out] float32 copy of the stacked LoRA weights, made once per version.

    Small bf16 products cost about ten times their float32 equivalent on CPUs without AMX,
    and converting per call costs as much again. The stacked weights live as long as the
    engine and change only in place (loading an adapter), which bumps ``_version``.
    """
    key = id(weights)
    cached = _converted.get(key)
    if cached is not None and cached[0] == weights._version:
        return cached[1]
    if cached is None:
        weakref.finalize(weights, _converted.pop, key, None)
    stacked = weights.squeeze(1) if weights.dim() == 4 else weights
    matrices = stacked.float().transpose(1, 2).contiguous()
    _converted[key] = (weights._version, matrices)
    return matrices


def bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling=1.0):
    out = lora_product(inputs, lora_a_weights, lora_indices_tensor)
    width = lora_a_weights.shape[-2]
    if out is None:
        output_tensor[:, :width] = 0
    else:
        output_tensor[:, :width] = scaling * out


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs=True):
    _expand_into(inputs, lora_b_weights, output_tensor, lora_indices_tensor, 0,
                 output_tensor.shape[1], add_inputs)


def bgmv_expand_slice(inputs, lora_b_weights, output_tensor, lora_indices_tensor,
                      slice_offset, slice_size, add_inputs=True):
    _expand_into(inputs, lora_b_weights, output_tensor, lora_indices_tensor, slice_offset,
                 slice_size, add_inputs)


def _expand_into(inputs, weights, output, indices, offset, size, add_inputs) -> None:
    out = lora_product(inputs, weights, indices)
    # the adapter and the model may pad their widths differently: write the common part
    width = min(size, weights.shape[-2], output.shape[1] - offset)
    target = output[:, offset:offset + width]  # one input row broadcasts, as in the fallback
    if out is None:
        if not add_inputs:
            target.zero_()
    elif add_inputs:
        target += out[:, :width].to(output.dtype)
    else:
        target.copy_(out[:, :width])


def _exploded(lora_indices_tensor, seq_len_tensor):
    """Per-sequence slots → per-token slots (prefill batches hold whole prompts)."""
    return lora_indices_tensor.repeat_interleave(seq_len_tensor)


def sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, scaling):
    bgmv_shrink(inputs, lora_a_weights, output_tensor,
                _exploded(lora_indices_tensor, seq_len_tensor), scaling)


def sgmv_expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, add_inputs=False):
    bgmv_expand(inputs, lora_b_weights, output_tensor,
                _exploded(lora_indices_tensor, seq_len_tensor), add_inputs)


def sgmv_expand_slice(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                      lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
                      slice_size, add_inputs=False):
    bgmv_expand_slice(inputs, lora_b_weights, output_tensor,
                      _exploded(lora_indices_tensor, seq_len_tensor), slice_offset,
                      slice_size, add_inputs)


def add_lora_linear(wrapper, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices,
                    *, buffer=None, **kwargs) -> None:
    """``PunicaWrapperCPU.add_lora_linear`` as one opaque custom op, so that torch.compile
    can trace the model around it (the op reads each step's adapter slots at run time)."""
    import torch

    torch.ops.covey.lora_linear(y, x, wrapper._token_lora_indices, list(lora_a_stacked),
                                list(lora_b_stacked), float(scale), list(output_slices))


OPS = {f.__name__: f for f in (bgmv_shrink, bgmv_expand, bgmv_expand_slice, sgmv_shrink,
                               sgmv_expand, sgmv_expand_slice)}


def register() -> None:
    """vLLM general-plugin hook: swap the CPU punica wrapper's ops when Covey asks for it."""
    if os.environ.get(ENV) != MODE:
        return
    try:
        from vllm.lora.punica_wrapper import punica_cpu
        from vllm.platforms import cpu
    except ImportError:  # a vLLM without the CPU wrapper: nothing to replace
        return
    for name, op in OPS.items():
        if hasattr(punica_cpu, name):
            setattr(punica_cpu, name, op)
    problem = load_op()
    if problem:
        log.warning("covey::lora_linear could not be built (%s): LoRA runs uncompiled, one "
                    "product per slice", problem)
        return
    punica_cpu.PunicaWrapperCPU.add_lora_linear = add_lora_linear
    if os.environ.get(COMPILE_ENV) != "off":
        _keep_compilation(cpu.CpuPlatform)
    log.info("grouped LoRA ops installed in vLLM's CPU punica wrapper")


OP_SOURCE = Path(__file__).with_name("lora_linear_cpu.cpp")


@functools.cache  # once per process: a second try after a failed build may load a stale one
def load_op() -> str | None:
    """Builds ``covey::lora_linear`` from :data:`OP_SOURCE` and loads it; returns why it
    could not, or None. torch keeps the build (``~/.cache/torch_extensions``) and rebuilds
    only when the source changes; about 12 s on a 2-core CPU. A C++ compiler is already
    needed: torch.compile builds the model's kernels with it."""
    import torch
    from torch.utils import cpp_extension

    try:
        name, cflags = _build_options()
        cpp_extension.load(name, [str(OP_SOURCE)], is_python_module=False, extra_cflags=cflags)
    except Exception as exc:  # no compiler, no headers: the engine still runs, uncompiled
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    torch.library.register_fake("covey::lora_linear", lambda *args: None)
    return None


def _cpu_flags() -> str:
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def cpu_has_bf16(flags: str | None = None) -> bool:
    """Whether this CPU (or one with these /proc/cpuinfo ``flags``) multiplies bf16 in
    hardware (AVX512-BF16 or AMX); without, bf16 products are slower than float32 ones."""
    return bool({"avx512_bf16", "amx_bf16"} & set((flags or _cpu_flags()).split()))


def _build_options() -> tuple[str, list[str]]:
    """The op's build name and compiler flags. One build per CPU: ``-march=native`` code may
    not run on another processor, and a home folder can move between machines. bf16
    products for prefills only where the CPU has bf16 instructions."""
    flags = _cpu_flags()
    cflags = ["-O3", "-march=native"]
    if cpu_has_bf16(flags):
        cflags.append("-DCOVEY_BF16_PRODUCTS")
    return f"covey_lora_linear_{hashlib.sha1(flags.encode()).hexdigest()[:10]}", cflags


def _keep_compilation(platform) -> None:
    """vLLM's CPU platform turns torch.compile off whenever LoRA is on, because its own
    fallback ops do not trace. Ours is one opaque custom op, so the model compiles around it:
    the config is checked as if LoRA were off, and LoRA is put back after."""
    original = platform.check_and_update_config.__func__
    if getattr(original, "_covey", False):
        return

    def check_and_update_config(cls, vllm_config) -> None:
        lora = vllm_config.lora_config
        vllm_config.lora_config = None
        try:
            original(cls, vllm_config)
        finally:
            vllm_config.lora_config = lora

    check_and_update_config._covey = True
    platform.check_and_update_config = classmethod(check_and_update_config)
