"""The grouped CPU LoRA ops compute what vLLM's own PyTorch fallback computes."""

import pytest
import torch

from covey_specialists import vllm_cpu_lora as grouped

torch_ops = pytest.importorskip("vllm.lora.ops.torch_ops")

TOKENS, HIDDEN, RANK, OUT, SLOTS = 7, 48, 8, 40, 3


def weights(*shape):
    torch.manual_seed(sum(shape))
    w = torch.randn(*shape, dtype=torch.bfloat16)
    w[-1] = 0  # the spare slot is empty, so the fallback's weights[-1] adds nothing
    return w


@pytest.mark.parametrize("slots", [[1] * TOKENS, [0, 0, 1, 1, -1, 0, 1], [-1] * TOKENS])
def test_shrink_matches_vllms_fallback(slots):
    x = torch.randn(TOKENS, HIDDEN, dtype=torch.bfloat16)
    a = weights(SLOTS, 1, RANK, HIDDEN)
    idx = torch.tensor(slots)
    ours, theirs = (torch.full((TOKENS, RANK), 7.0) for _ in range(2))
    grouped.bgmv_shrink(x, a, ours, idx, 0.5)
    torch_ops.bgmv_shrink(x, a, theirs, idx, 0.5)
    torch.testing.assert_close(ours, theirs)


# float32 outputs: the fallback then computes in float32 too, so results agree to rounding;
# bfloat16 outputs: ours adds a float32 product, the fallback a bf16 one (one bf16 step apart)
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, {}),
                                             (torch.bfloat16, {"atol": 3e-2, "rtol": 1e-2})])
@pytest.mark.parametrize("add_inputs", [True, False])
@pytest.mark.parametrize("slots", [[1] * TOKENS, [0, 1, 1, -1, 0, 0, 1], [-1] * TOKENS])
def test_expand_and_expand_slice_match_vllms_fallback(slots, add_inputs, dtype, tolerance):
    x = torch.randn(TOKENS, RANK, dtype=torch.float32)
    b = weights(SLOTS, 1, OUT, RANK)
    idx = torch.tensor(slots)
    base = torch.randn(TOKENS, OUT + 16, dtype=dtype)
    ours, theirs = base.clone(), base.clone()
    grouped.bgmv_expand(x, b, ours, idx, add_inputs)
    torch_ops.bgmv_expand(x, b, theirs, idx, add_inputs)
    torch.testing.assert_close(ours, theirs, **tolerance)
    ours, theirs = base.clone(), base.clone()
    grouped.bgmv_expand_slice(x, b, ours, idx, 10, OUT, add_inputs)
    torch_ops.bgmv_expand_slice(x, b, theirs, idx, 10, OUT, add_inputs)
    torch.testing.assert_close(ours, theirs, **tolerance)


def test_prefill_ops_explode_per_sequence_slots_like_vllm():
    x = torch.randn(TOKENS, HIDDEN, dtype=torch.bfloat16)
    a = weights(SLOTS, 1, RANK, HIDDEN)
    seq_slots, seq_lens = torch.tensor([1, 0]), torch.tensor([4, 3])
    ours, theirs = torch.zeros(TOKENS, RANK), torch.zeros(TOKENS, RANK)
    args = (torch.tensor([0, 4]), seq_lens, seq_slots, 2, 4, TOKENS)
    grouped.sgmv_shrink(x, a, ours, *args, 1.0)
    torch_ops.sgmv_shrink(x, a, theirs, *args, 1.0)
    torch.testing.assert_close(ours, theirs)
    assert ours.abs().sum() > 0


def test_a_token_without_an_adapter_gets_no_lora_term_even_when_every_slot_is_full():
    x = torch.randn(2, HIDDEN, dtype=torch.bfloat16)
    a = torch.randn(SLOTS, 1, RANK, HIDDEN, dtype=torch.bfloat16)  # no empty slot
    out = torch.full((2, RANK), 3.0)
    grouped.bgmv_shrink(x, a, out, torch.tensor([-1, 0]), 1.0)
    assert out[0].abs().sum() == 0 and out[1].abs().sum() > 0


@pytest.fixture
def lora_linear():
    """The C++ op, built as the engine builds it (torch caches the build)."""
    assert grouped.load_op() is None
    return torch.ops.covey.lora_linear


@pytest.fixture
def cpu_wrapper(monkeypatch):
    """vLLM's CPU punica wrapper with its own ops back after the test."""
    punica_cpu = pytest.importorskip("vllm.lora.punica_wrapper.punica_cpu")
    for name in grouped.OPS:
        monkeypatch.setattr(punica_cpu, name, getattr(torch_ops, name))
    monkeypatch.setattr(punica_cpu.PunicaWrapperCPU, "add_lora_linear",
                        punica_cpu.PunicaWrapperCPU.add_lora_linear)
    return punica_cpu


def test_register_replaces_the_cpu_wrappers_ops_only_when_asked(monkeypatch, cpu_wrapper):
    monkeypatch.delenv(grouped.ENV, raising=False)
    grouped.register()
    assert cpu_wrapper.bgmv_shrink is torch_ops.bgmv_shrink
    monkeypatch.setenv(grouped.ENV, grouped.MODE)
    grouped.register()
    assert cpu_wrapper.bgmv_shrink is grouped.bgmv_shrink
    assert cpu_wrapper.PunicaWrapperCPU.add_lora_linear is grouped.add_lora_linear
    assert hasattr(torch.ops.covey, "lora_linear")


def test_without_the_built_op_the_engine_keeps_vllms_uncompiled_linear_path(monkeypatch,
                                                                            cpu_wrapper):
    """No C++ compiler: the grouped per-slice ops still replace the fallback's, and vLLM's
    CPU platform is left to turn compilation off, as it does with LoRA."""
    original = cpu_wrapper.PunicaWrapperCPU.add_lora_linear
    kept = []
    monkeypatch.setattr(grouped, "load_op", lambda: "RuntimeError: no C++ compiler")
    monkeypatch.setattr(grouped, "_keep_compilation", kept.append)
    monkeypatch.setenv(grouped.ENV, grouped.MODE)
    grouped.register()
    assert cpu_wrapper.bgmv_shrink is grouped.bgmv_shrink
    assert cpu_wrapper.PunicaWrapperCPU.add_lora_linear is original
    assert kept == []


def reference_lora_linear(y, x, a_stacked, b_stacked, scale, slices, slots):
    """vLLM's documented semantics, token by token, slice by slice, in float64."""
    out = y.double().clone()
    for t, slot in enumerate(slots):
        if slot < 0:
            continue
        offset = 0
        for a, b, size in zip(a_stacked, b_stacked, slices, strict=True):
            delta = x[t].double() @ a[slot, 0].double().t() @ b[slot, 0].double().t() * scale
            out[t, offset:offset + size] += delta
            offset += size
    return out


# 1 and 3 tokens: decode steps of one and of three requests; 7 and 40: more requests in
# flight, or a short prefill (the op's loops, in groups of 8, 4, 2 and 1 tokens of a slot);
# 150: a prefill (BLAS products per adapter). bf16 everywhere is the engine's case; a
# float32 output beside bf16 inputs takes the products' path at any size.
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens", [1, 3, TOKENS, 40, 150])
@pytest.mark.parametrize("slots", [[1], [0, 1, 1, -1, 0, 0, 1], [-1]])
def test_lora_linear_matches_the_per_slice_semantics(lora_linear, slots, tokens, dtype):
    slots = (slots * tokens)[:tokens]
    slices = (OUT, 16, 16)  # e.g. q, k and v of a merged QKV projection
    x = torch.randn(tokens, HIDDEN, dtype=torch.bfloat16)
    a_stacked = tuple(weights(SLOTS, 1, RANK, HIDDEN) for _ in slices)
    b_stacked = tuple(weights(SLOTS, 1, size, RANK) for size in slices)
    y = torch.randn(tokens, sum(slices), dtype=dtype)
    expected = reference_lora_linear(y, x, a_stacked, b_stacked, 0.5, slices, slots)
    lora_linear(y, x, torch.tensor(slots + [0, 0]), a_stacked, b_stacked, 0.5, slices)
    torch.testing.assert_close(y.double(), expected, **tolerance(dtype, tokens))


def tolerance(dtype, tokens):
    """bf16: the float32 sum is rounded once into y (one bf16 step of the result); a
    prefill's bf16 products also round the rank-sized middle (terms here are about 10)."""
    if dtype == torch.float32:
        return {"atol": 1e-4, "rtol": 1e-4}
    return {"atol": 6e-2 if tokens <= 128 else 1e-1, "rtol": 8e-3}


@pytest.mark.parametrize("tokens", [5, 150])
def test_lora_linear_skips_the_zero_padded_ranks_exactly(lora_linear, tokens):
    """vLLM pads each adapter to the engine's maximum rank with zeros; the op keeps only the
    ranks an adapter uses, per slot and slice, and must add what the full product adds."""
    slices = (OUT, 16)
    a_stacked = tuple(weights(SLOTS, 1, RANK, HIDDEN) for _ in slices)
    b_stacked = tuple(weights(SLOTS, 1, size, RANK) for size in slices)
    for a, b in zip(a_stacked, b_stacked, strict=True):
        a[0, 0, 3:] = 0  # slot 0: a rank-3 adapter in rank-8 slots
        b[0, 0, :, 3:] = 0
    a_stacked[1][1, 0, 2] = 0  # slot 1: one rank with no A row, one with no B column
    b_stacked[1][1, 0, :, 5] = 0
    x = torch.randn(tokens, HIDDEN, dtype=torch.bfloat16)
    y = torch.randn(tokens, sum(slices), dtype=torch.bfloat16)
    slots = ([0, 1, 0, -1, 1] * tokens)[:tokens]
    expected = reference_lora_linear(y, x, a_stacked, b_stacked, 0.5, slices, slots)
    lora_linear(y, x, torch.tensor(slots), a_stacked, b_stacked, 0.5, slices)
    torch.testing.assert_close(y.double(), expected, **tolerance(torch.bfloat16, tokens))


def test_lora_linear_writes_only_the_columns_every_side_has(lora_linear):
    """An adapter padded narrower than the model's slice leaves the rest of y as it was."""
    x = torch.randn(2, HIDDEN, dtype=torch.bfloat16)
    a, b = (weights(SLOTS, 1, RANK, HIDDEN),), (weights(SLOTS, 1, OUT - 8, RANK),)
    y = torch.zeros(2, OUT, dtype=torch.bfloat16)
    lora_linear(y, x, torch.tensor([0, 0]), a, b, 1.0, (OUT,))
    assert y[:, : OUT - 8].abs().sum() > 0
    assert y[:, OUT - 8:].abs().sum() == 0


def test_fused_weights_follow_an_adapter_loaded_in_place(lora_linear):
    x = torch.randn(2, HIDDEN)
    a, b = (weights(SLOTS, 1, RANK, HIDDEN),), (weights(SLOTS, 1, OUT, RANK),)
    slots = torch.tensor([0, 0])
    first = torch.zeros(2, OUT)
    lora_linear(first, x, slots, a, b, 1.0, (OUT,))
    b[0][0].mul_(2)  # what loading another adapter into slot 0 looks like: an in-place copy
    second = torch.zeros(2, OUT)
    lora_linear(second, x, slots, a, b, 1.0, (OUT,))
    torch.testing.assert_close(second, 2 * first, atol=1e-3, rtol=1e-3)


class LoraLinear(torch.nn.Module):
    """A linear layer with vLLM's LoRA call, as the engine's compiled model makes it."""

    def __init__(self, wrapper, slices):
        super().__init__()
        self.base = torch.nn.Linear(HIDDEN, sum(slices), bias=False)
        self.wrapper, self.slices = wrapper, slices
        self.a = tuple(weights(SLOTS, 1, RANK, HIDDEN) for _ in slices)
        self.b = tuple(weights(SLOTS, 1, size, RANK) for size in slices)

    def forward(self, x):
        y = self.base(x)
        self.wrapper.add_lora_linear(y, x, self.a, self.b, 1.0, self.slices)
        return y


def test_the_op_compiles_whole_and_reads_each_steps_slots_at_run_time(monkeypatch, cpu_wrapper):
    """The engine compiles the model once (vLLM traces it with no guards), so neither which
    adapter runs nor whether one does may be baked into the graph."""
    from types import SimpleNamespace

    monkeypatch.setenv(grouped.ENV, grouped.MODE)
    grouped.register()
    slots = torch.full((8,), -1)
    wrapper = SimpleNamespace(_token_lora_indices=slots)
    wrapper.add_lora_linear = lambda *args: grouped.add_lora_linear(wrapper, *args)
    layer = LoraLinear(wrapper, (OUT, 16))
    compiled = torch.compile(layer, fullgraph=True, dynamic=True, backend="aot_eager")
    x = torch.randn(3, HIDDEN)
    with torch.no_grad():
        for step in ([-1, -1, -1], [0, 0, 0], [1, -1, 0]):
            slots[:3] = torch.tensor(step)
            torch.testing.assert_close(compiled(x), layer(x))
        assert not torch.equal(compiled(x), layer.base(x))


def test_the_cpu_platform_checks_the_config_as_if_lora_were_off_and_keeps_lora():
    from types import SimpleNamespace

    class Platform:
        @classmethod
        def check_and_update_config(cls, vllm_config):
            # what vLLM's CPU platform does with LoRA on
            vllm_config.compilation = "none" if vllm_config.lora_config else "compiled"

    config = SimpleNamespace(lora_config={"max_loras": 4}, compilation=None)
    grouped._keep_compilation(Platform)
    grouped._keep_compilation(Platform)  # registering twice wraps once
    Platform.check_and_update_config(config)
    assert config.compilation == "compiled"
    assert config.lora_config == {"max_loras": 4}


@pytest.mark.parametrize("device,env,mode", [
    ("cpu", {grouped.ENV: grouped.MODE}, "cpu-grouped-compiled"),
    ("cpu", {grouped.ENV: grouped.MODE, grouped.COMPILE_ENV: "off"}, "cpu-grouped"),
    ("cpu", {grouped.ENV: "off"}, "vllm"),
    ("cuda", {grouped.ENV: grouped.MODE}, "vllm"),
    ("cpu", {grouped.ENV: grouped.MODE, "CXX": "/nonexistent/c++"}, "cpu-grouped"),
])
def test_engine_status_names_the_lora_mode_the_plugin_runs(device, env, mode):
    from covey_specialists import engine

    assert engine.lora_mode(device, env) == mode
