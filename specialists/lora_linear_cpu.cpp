// covey::lora_linear for vLLM's CPU engine, in C++ (see vllm_cpu_lora.py).
//
// Adds each token's adapter term to y: y[t, slice] += B_slice[slot] (scale * A[slot] x[t]),
// where slot is the token's adapter slot (-1: none). A decode step of a 30-layer model
// calls this 120 times; in Python each call cost about 90 us of dispatch, dtype
// conversions and small BLAS calls, more than the arithmetic (163k multiply-adds per token
// per layer). Here a few tokens go through plain loops the compiler vectorises, and a
// prefill's hundreds of tokens through one BLAS product per adapter.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

// Up to this many tokens (decode steps, several requests in flight) the loops; above it
// BLAS. Eight requests' decode step: the adapter added 13-15 ms through the loops, 18-20 ms
// through BLAS (bf16 products of 8 rows cost oneDNN about 20 us each).
constexpr int64_t kLoopMaxTokens = 16;

// Set by the build (vllm_cpu_lora.load_op) on CPUs with bf16 instructions.
#ifdef COVEY_BF16_PRODUCTS
constexpr bool kBf16Products = true;
#else
constexpr bool kBf16Products = false;
#endif

// A layer's adapter weights, in their own dtype (bf16 converts to float32 exactly inside
// the loops, and half the bytes to read), laid out for row-times-matrix products.
struct Fused {
  at::Tensor owner_a, owner_b;  // keep the keys' tensors alive: no reused addresses
  int64_t version = -1;
  at::Tensor down;              // [slots, in, sum of ranks]: the slices' A side by side
  std::vector<at::Tensor> ups;  // per slice [slots, rank, out]
  std::vector<int64_t> ranks;
};

std::mutex cache_mutex;
std::unordered_map<const void*, Fused> cache;

at::Tensor transposed(const at::Tensor& stacked) {
  // vLLM stacks [slots, 1, rows, cols]; we want [slots, cols, rows]
  const at::Tensor w = stacked.dim() == 4 ? stacked.squeeze(1) : stacked;
  return w.transpose(1, 2).contiguous();
}

int64_t versions(at::TensorList tensors) {
  int64_t sum = 0;
  for (const auto& t : tensors) sum += t._version();
  return sum;
}

// Made once per version of the weights: loading an adapter writes them in place.
const Fused& fused(at::TensorList a, at::TensorList b) {
  const void* key = a[0].unsafeGetTensorImpl();
  const int64_t version = versions(a) + versions(b);
  std::lock_guard<std::mutex> lock(cache_mutex);
  Fused& entry = cache[key];
  if (entry.version == version) return entry;
  std::vector<at::Tensor> downs;
  entry.ups.clear();
  entry.ranks.clear();
  for (size_t s = 0; s < a.size(); ++s) {
    downs.push_back(transposed(a[s]));  // [slots, in, rank]
    entry.ups.push_back(transposed(b[s]));  // [slots, rank, out]
    entry.ranks.push_back(downs.back().size(2));
  }
  entry.down = at::cat(downs, 2).contiguous();
  entry.owner_a = a[0];
  entry.owner_b = b[0];
  entry.version = version;
  return entry;
}

// Columns of slice s that y, the adapter and the model all have (their padding may differ).
int64_t slice_width(const Fused& f, size_t s, int64_t size, int64_t col, int64_t y_width) {
  return std::max<int64_t>(0, std::min({size, f.ups[s].size(2), y_width - col}));
}

// Tokens by adapter slot (-1: none).
std::vector<std::vector<int64_t>> rows_by_slot(const int64_t* slots, int64_t tokens,
                                               int64_t slot_count) {
  std::vector<std::vector<int64_t>> rows(slot_count);
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] >= 0) rows.at(slots[t]).push_back(t);
  }
  return rows;
}

// Each weight row is converted to float32 once and applied to every token of its slot, so a
// step of several requests reads the weights once.
template <typename scalar_t>
void add_by_loops(const at::Tensor& y, const at::Tensor& x, const int64_t* slots,
                  const Fused& f, double scale, at::IntArrayRef output_slices) {
  const int64_t in = x.size(1), rank_sum = f.down.size(2), y_width = y.size(1);
  const auto rows_of = rows_by_slot(slots, x.size(0), f.down.size(0));
  std::vector<float> xs, hidden, sum, weights(std::max(rank_sum, y_width));
  float* __restrict__ w = weights.data();
  for (size_t slot = 0; slot < rows_of.size(); ++slot) {
    const auto& rows = rows_of[slot];
    const auto n = static_cast<int64_t>(rows.size());
    if (n == 0) continue;
    xs.resize(n * in);
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* xt = x.data_ptr<scalar_t>() + rows[i] * x.stride(0);
      for (int64_t k = 0; k < in; ++k) xs[i * in + k] = static_cast<float>(xt[k]);
    }
    hidden.assign(n * rank_sum, 0.0f);
    const scalar_t* a = f.down.data_ptr<scalar_t>() + slot * in * rank_sum;
    for (int64_t k = 0; k < in; ++k) {
      for (int64_t r = 0; r < rank_sum; ++r) w[r] = static_cast<float>(a[k * rank_sum + r]);
      for (int64_t i = 0; i < n; ++i) {
        const float xk = xs[i * in + k];
        float* __restrict__ h = hidden.data() + i * rank_sum;
        for (int64_t r = 0; r < rank_sum; ++r) h[r] += xk * w[r];
      }
    }
    if (scale != 1.0) {
      for (auto& h : hidden) h *= static_cast<float>(scale);
    }
    sum.assign(n * y_width, 0.0f);
    int64_t first_rank = 0, col = 0;
    for (size_t s = 0; s < f.ups.size(); ++s) {
      const int64_t rank = f.ranks[s], out = f.ups[s].size(2);
      const int64_t width = slice_width(f, s, output_slices[s], col, y_width);
      const scalar_t* b = f.ups[s].data_ptr<scalar_t>() + slot * rank * out;
      for (int64_t r = 0; r < rank; ++r) {
        for (int64_t j = 0; j < width; ++j) w[j] = static_cast<float>(b[r * out + j]);
        for (int64_t i = 0; i < n; ++i) {
          const float hr = hidden[i * rank_sum + first_rank + r];
          float* __restrict__ dst = sum.data() + i * y_width + col;
          for (int64_t j = 0; j < width; ++j) dst[j] += hr * w[j];
        }
      }
      first_rank += rank;
      col += output_slices[s];
    }
    const int64_t written = std::min(col, y_width);
    for (int64_t i = 0; i < n; ++i) {
      scalar_t* yt = y.data_ptr<scalar_t>() + rows[i] * y.stride(0);
      const float* add = sum.data() + i * y_width;
      // the float32 sum is added to y and rounded once
      for (int64_t j = 0; j < written; ++j) {
        yt[j] = static_cast<scalar_t>(static_cast<float>(yt[j]) + add[j]);
      }
    }
  }
}

void add_by_blas(const at::Tensor& y, const at::Tensor& x, const int64_t* slots,
                 const Fused& f, double scale, at::IntArrayRef output_slices) {
  const int64_t tokens = x.size(0);
  auto rows_of = rows_by_slot(slots, tokens, f.down.size(0));
  // bf16 products where the CPU has bf16 instructions (oneDNN accumulates in float32):
  // on a 2-core EPYC they took a quarter of the float32 path's time, the float32 add into
  // a bf16 output most of it; elsewhere bf16 products are slower than float32 ones
  const bool bf16 = kBf16Products && x.scalar_type() == at::kBFloat16 &&
                    y.scalar_type() == at::kBFloat16 && f.down.scalar_type() == at::kBFloat16;
  const auto dtype = bf16 ? at::kBFloat16 : at::kFloat;
  for (size_t slot = 0; slot < rows_of.size(); ++slot) {
    const auto count = static_cast<int64_t>(rows_of[slot].size());
    if (count == 0) continue;
    const bool one_for_all = count == tokens;
    at::Tensor rows;
    at::Tensor xs = x;
    if (!one_for_all) {
      rows = at::from_blob(rows_of[slot].data(), {count}, at::kLong).clone();
      xs = x.index_select(0, rows);
    }
    at::Tensor hidden = at::mm(xs.to(dtype), f.down[slot].to(dtype));
    if (scale != 1.0) hidden.mul_(scale);
    int64_t first_rank = 0, col = 0;
    for (size_t s = 0; s < f.ups.size(); ++s) {
      const int64_t rank = f.ranks[s];
      const int64_t width = slice_width(f, s, output_slices[s], col, y.size(1));
      if (width > 0) {
        const at::Tensor h = hidden.narrow(1, first_rank, rank);
        const at::Tensor b = f.ups[s][slot].narrow(1, 0, width).to(dtype);
        at::Tensor target = y.narrow(1, col, width);
        if (one_for_all && bf16) {
          target.addmm_(h, b);
        } else if (one_for_all) {
          target.add_(at::mm(h, b));  // float32 product added in place, rounded once
        } else {
          target.index_add_(0, rows, at::mm(h, b).to(y.scalar_type()));
        }
      }
      first_rank += rank;
      col += output_slices[s];
    }
  }
}

void lora_linear(const at::Tensor& y, const at::Tensor& x, const at::Tensor& token_slots,
                 at::TensorList lora_a_stacked, at::TensorList lora_b_stacked, double scale,
                 at::IntArrayRef output_slices) {
  TORCH_CHECK(lora_a_stacked.size() == output_slices.size() &&
                  lora_b_stacked.size() == output_slices.size(),
              "covey::lora_linear: one A and one B per output slice");
  const int64_t tokens = x.numel() / x.size(-1);
  if (tokens == 0) return;
  TORCH_CHECK(token_slots.numel() >= tokens, "covey::lora_linear: fewer slots than tokens");
  // vLLM's slot buffer is int64 and contiguous: read it in place, no tensor op per call
  // (the base model's steps make 120 calls that add nothing)
  const bool direct = token_slots.scalar_type() == at::kLong && token_slots.is_contiguous();
  const at::Tensor slots =
      direct ? token_slots : token_slots.narrow(0, 0, tokens).to(at::kLong).contiguous();
  const int64_t* slot_of = slots.data_ptr<int64_t>();
  if (std::all_of(slot_of, slot_of + tokens, [](int64_t s) { return s < 0; })) return;
  const at::Tensor out = y.view({-1, y.size(-1)});
  const at::Tensor in = x.reshape({-1, x.size(-1)}).contiguous();
  const Fused& f = fused(lora_a_stacked, lora_b_stacked);
  const auto dtype = out.scalar_type();
  if (tokens <= kLoopMaxTokens && in.scalar_type() == dtype && f.down.scalar_type() == dtype &&
      out.stride(1) == 1) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype,
                                    "covey_lora_linear", [&] {
                                      add_by_loops<scalar_t>(out, in, slot_of, f, scale,
                                                             output_slices);
                                    });
  } else {
    add_by_blas(out, in, slot_of, f, scale, output_slices);
  }
}

}  // namespace

TORCH_LIBRARY(covey, m) {
  m.def("lora_linear(Tensor(a!) y, Tensor x, Tensor token_slots, Tensor[] lora_a_stacked, "
        "Tensor[] lora_b_stacked, float scale, int[] output_slices) -> ()");
}

TORCH_LIBRARY_IMPL(covey, CPU, m) { m.impl("lora_linear", &lora_linear); }
