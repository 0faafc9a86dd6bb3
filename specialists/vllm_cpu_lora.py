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
trace. Here the whole LoRA term of a layer is one opaque custom op (``covey::lora_linear``),
so the model compiles around it: on a 2-core Xeon a decode step took 66–73 ms through the
completion adapter and 57–63 ms through the base, against 96–103 and 92–104 ms uncompiled.
``COVEY_CPU_COMPILE=off`` keeps vLLM's choice (startup then skips the ~2 minutes of the
first compilation; later starts reuse vLLM's compile cache).

Installed as a vLLM general plugin (pyproject's ``vllm.general_plugins`` entry point), so
it reaches the engine-core process too; it acts only when Covey's engine manager sets
``COVEY_CPU_LORA=grouped`` and the CPU punica wrapper is importable.
"""

from __future__ import annotations

import logging
import os
import weakref
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


FUSED_MAX_TOKENS = 32
"""Up to this many tokens (decode steps) the B side is one block-diagonal product; above
it (a prefill) one product per slice is cheaper than the block-diagonal one's zeros."""


def add_lora_linear(wrapper, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices,
                    *, buffer=None, **kwargs) -> None:
    """``PunicaWrapperCPU.add_lora_linear`` as one opaque custom op, so that torch.compile
    can trace the model around it (the op decides per step which adapters run)."""
    import torch

    torch.ops.covey.lora_linear(y, x, wrapper._token_lora_indices, list(lora_a_stacked),
                                list(lora_b_stacked), float(scale), list(output_slices))


def lora_linear(y, x, token_slots, lora_a_stacked, lora_b_stacked, scale, output_slices) -> None:
    """Adds each token's adapter term to ``y`` with the slices fused: one product for all the
    slices' A matrices (side by side), then one for their B matrices (block-diagonal) in a
    decode step, or one per slice in a prefill. A decode step of a 30-layer model makes 120
    such calls, where the fallback made 840 small ops' worth; on CPU each op costs tens of
    microseconds whatever its size. ``token_slots`` is vLLM's per-token slot buffer (-1: no
    adapter); its first ``len(x)`` entries hold this step's."""
    x = x.view(-1, x.shape[-1])
    out = y.view(-1, y.shape[-1])
    groups = _step_groups(token_slots, x.shape[0])
    if not groups:
        return
    down, up, ups = _fused(lora_a_stacked, lora_b_stacked, output_slices)
    for slot, rows in groups:
        xs = x.float() if rows is None else x[rows].float()
        hidden = xs @ down[slot]
        if scale != 1.0:
            hidden.mul_(scale)
        if xs.shape[0] <= FUSED_MAX_TOKENS:
            parts = [(hidden, up[slot], 0)]
        else:
            parts, row, col = [], 0, 0
            for u, size in zip(ups, output_slices, strict=True):
                rank = u.shape[1]
                parts.append((hidden[:, row:row + rank], u[slot, :, :size], col))
                row, col = row + rank, col + size
        for h, w, col in parts:
            if rows is None:  # adds the float32 product in place, rounding once
                out[:, col:col + w.shape[1]].add_(h @ w)
            else:
                out[rows, col:col + w.shape[1]] += (h @ w).to(out.dtype)


_last_step: list = [None, None]
"""(key, groups) of the latest forward step: every LoRA layer of a step shares its slots."""


def _step_groups(token_slots, tokens: int):
    """:func:`_groups` of this step's tokens, worked out once per step rather than per layer.
    vLLM writes the per-token slots in place before each step, which bumps ``_version``."""
    key = (token_slots.data_ptr(), tokens, token_slots._version)
    if _last_step[0] == key:
        return _last_step[1]
    groups = _groups(token_slots[:tokens])
    _last_step[:] = [key, groups]
    return groups


def _groups(token_slots):
    """(slot, rows) per adapter in the batch; rows None when every token shares it."""
    slots = set(token_slots.tolist())
    if len(slots) == 1:
        (slot,) = slots
        return [] if slot < 0 else [(slot, None)]
    return [(slot, token_slots == slot) for slot in sorted(slots - {-1})]


_fused_cache: dict[tuple, tuple[int, tuple]] = {}


def _fused(lora_a_stacked, lora_b_stacked, output_slices):
    """Per slot: [in, slices × rank] (A's, transposed, side by side),
    [slices × rank, Σ out] (B's, transposed, block-diagonal) and each B alone, float32,
    made once per version of the weights (loading an adapter writes them in place)."""
    # loading an adapter into a slot writes every slice, the first ones included
    first_a, first_b = lora_a_stacked[0], lora_b_stacked[0]
    key = (id(first_a), id(first_b))
    version = first_a._version + first_b._version
    cached = _fused_cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    if cached is None:
        weakref.finalize(first_a, _fused_cache.pop, key, None)
    downs = [_float32_transposed(a) for a in lora_a_stacked]  # [slots, in, rank]
    ups = [_float32_transposed(b) for b in lora_b_stacked]  # [slots, rank, out]
    down = downs[0].new_zeros(downs[0].shape[0], downs[0].shape[1],
                              sum(d.shape[2] for d in downs))
    up = ups[0].new_zeros(ups[0].shape[0], down.shape[2], sum(output_slices))
    row = col = 0
    for d, u, size in zip(downs, ups, output_slices, strict=True):
        rank = d.shape[2]
        down[:, :, row:row + rank] = d
        up[:, row:row + rank, col:col + size] = u[:, :, :size]
        row, col = row + rank, col + size
    _fused_cache[key] = (version, (down, up, ups))
    return down, up, ups


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
    _register_op()
    for name, op in OPS.items():
        if hasattr(punica_cpu, name):
            setattr(punica_cpu, name, op)
    punica_cpu.PunicaWrapperCPU.add_lora_linear = add_lora_linear
    if os.environ.get(COMPILE_ENV) != "off":
        _keep_compilation(cpu.CpuPlatform)
    log.info("grouped LoRA ops installed in vLLM's CPU punica wrapper")


_library = None
"""The ``covey`` op library; it must outlive registration, or the op goes with it."""


def _register_op() -> None:
    # A bare library entry, not torch.library.custom_op: that wrapper costs about 80 us per
    # call, and a decode step of the model makes 120 calls.
    global _library
    import torch

    if _library is not None:
        return
    _library = torch.library.Library("covey", "FRAGMENT")
    _library.define("lora_linear(Tensor(a!) y, Tensor x, Tensor token_slots, "
                    "Tensor[] lora_a_stacked, Tensor[] lora_b_stacked, float scale, "
                    "int[] output_slices) -> ()")
    _library.impl("lora_linear", lora_linear, "CPU")
    torch.library.register_fake("covey::lora_linear", lambda *args: None, lib=_library)


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
