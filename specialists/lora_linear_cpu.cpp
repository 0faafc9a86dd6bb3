// covey::lora_linear for vLLM's CPU engine, in C++ (see vllm_cpu_lora.py).
//
// Adds each token's adapter term to y: y[t, slice] += B_slice[slot] (scale * A[slot] x[t]),
// where slot is the token's adapter slot (-1: none). A decode step of a 30-layer model
// calls this 120 times; in Python each call cost about 90 us of dispatch, dtype
// conversions and small BLAS calls, more than the arithmetic (81k multiply-adds per token
// per layer for a rank-8 adapter). Here up to 128 tokens go through register-tiled loops,
// and a longer prefill through one BLAS product per adapter.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

// Up to this many tokens (decode steps, short prefill chunks) the loops; above it BLAS.
// Per decode step of 30 layers (rank 8, 2-core EPYC): 8 tokens 1.3 ms through the loops;
// 32 tokens 6 ms through the loops against 14 ms through bf16 BLAS (about 100 us a call
// whatever the size), 128 tokens 14 against 17 ms; 200 tokens 25 against 16 ms.
constexpr int64_t kLoopMaxTokens = 128;

// Set by the build (vllm_cpu_lora.load_op) on CPUs with bf16 instructions.
#ifdef COVEY_BF16_PRODUCTS
constexpr bool kBf16Products = true;
#else
constexpr bool kBf16Products = false;
#endif

// One slot's adapter weights in a layer, in their own dtype (bf16 converts to float32
// exactly inside the loops, and half the bytes to read), laid out for row-times-matrix
// products. Only the ranks the adapter uses are kept: vLLM pads every adapter to
// --max-lora-rank with zeros (a rank-8 adapter in rank-16 slots did half its work on them).
struct SlotWeights {
  at::Tensor down;              // [in, columns]: the slices' kept A rows side by side,
                                // zero columns up to a multiple of kLanes
  std::vector<at::Tensor> ups;  // per slice [kept rank, out]
  std::vector<int64_t> ranks;   // per slice
  int64_t rank_sum = 0;         // 0: the slot is empty
};

struct Fused {
  at::Tensor owner_a, owner_b;  // keep the keys' tensors alive: no reused addresses
  int64_t version = -1;
  std::vector<SlotWeights> slots;
};

// Float32 lanes per tile.
constexpr int64_t kLanes = 16;

std::mutex cache_mutex;
std::unordered_map<const void*, Fused> cache;

at::Tensor unstacked(const at::Tensor& stacked) {
  return stacked.dim() == 4 ? stacked.squeeze(1) : stacked;  // vLLM stacks [slots, 1, r, c]
}

int64_t versions(at::TensorList tensors) {
  int64_t sum = 0;
  for (const auto& t : tensors) sum += t._version();
  return sum;
}

SlotWeights slot_weights(at::TensorList a, at::TensorList b, int64_t slot) {
  SlotWeights w;
  std::vector<at::Tensor> downs;
  for (size_t s = 0; s < a.size(); ++s) {
    const at::Tensor down = unstacked(a[s])[slot];  // [rank, in]
    const at::Tensor up = unstacked(b[s])[slot];    // [out, rank]
    // a rank adds nothing unless both its A row and its B column hold a non-zero
    const at::Tensor kept = (down.ne(0).any(1) & up.ne(0).any(0)).nonzero().squeeze(1);
    downs.push_back(down.index_select(0, kept).t());
    w.ups.push_back(up.index_select(1, kept).t().contiguous());
    w.ranks.push_back(kept.size(0));
    w.rank_sum += kept.size(0);
  }
  const int64_t padding = (kLanes - w.rank_sum % kLanes) % kLanes;
  downs.push_back(at::zeros({downs[0].size(0), padding}, downs[0].options()));
  w.down = at::cat(downs, 1).contiguous();
  return w;
}

// Made once per version of the weights: loading an adapter writes them in place.
const Fused& fused(at::TensorList a, at::TensorList b) {
  const void* key = a[0].unsafeGetTensorImpl();
  const int64_t version = versions(a) + versions(b);
  std::lock_guard<std::mutex> lock(cache_mutex);
  Fused& entry = cache[key];
  if (entry.version == version) return entry;
  entry.slots.clear();
  for (int64_t slot = 0; slot < unstacked(a[0]).size(0); ++slot) {
    entry.slots.push_back(slot_weights(a, b, slot));
  }
  entry.owner_a = a[0];
  entry.owner_b = b[0];
  entry.version = version;
  return entry;
}

// Columns of slice s that y, the adapter and the model all have (their padding may differ).
int64_t slice_width(const SlotWeights& w, size_t s, int64_t size, int64_t col,
                    int64_t y_width) {
  return std::max<int64_t>(0, std::min({size, w.ups[s].size(1), y_width - col}));
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

// Sixteen float32 lanes (GCC/Clang vector extension): one AVX-512 register, two AVX2 ones.
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef uint16_t Bits16 __attribute__((vector_size(kLanes * sizeof(uint16_t))));
typedef uint32_t Bits32 __attribute__((vector_size(kLanes * sizeof(uint32_t))));

template <typename scalar_t>
inline Lanes load_lanes(const scalar_t* p) {
  Lanes v;
  for (int64_t l = 0; l < kLanes; ++l) v[l] = static_cast<float>(p[l]);
  return v;
}

// bf16 is the top half of a float32: widen and shift, no rounding
template <>
inline Lanes load_lanes(const c10::BFloat16* p) {
  Bits16 bits;
  std::memcpy(&bits, p, sizeof bits);
  const Bits32 wide = __builtin_convertvector(bits, Bits32) << 16;
  Lanes v;
  std::memcpy(&v, &wide, sizeof v);
  return v;
}

template <typename scalar_t>
inline void store_lanes(scalar_t* p, const Lanes& v) {
  for (int64_t l = 0; l < kLanes; ++l) p[l] = static_cast<scalar_t>(v[l]);
}

// float32 to bf16 rounded to nearest even, NaN kept a NaN: c10::BFloat16's rounding, in lanes
template <>
inline void store_lanes(c10::BFloat16* p, const Lanes& v) {
  Bits32 bits;
  std::memcpy(&bits, &v, sizeof bits);
  const Bits32 rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const Bits32 nan = (Bits32)(v != v);  // all ones where NaN
  const Bits16 narrow = __builtin_convertvector((nan & 0x7FC0u) | (~nan & rounded), Bits16);
  std::memcpy(p, &narrow, sizeof narrow);
}

// hidden[T][columns] = scale * xs[T][in] @ down[in][columns]. The T tiles of sums stay in
// registers while the weights stream past once: the first loops, one multiply-add per load
// and store, reached about 3 GMAC/s.
template <int T, typename scalar_t>
void down_tiles(const float* xs, int64_t in, const SlotWeights& w, float scale, float* hidden) {
  const int64_t columns = w.down.size(1);
  const scalar_t* down = w.down.data_ptr<scalar_t>();
  for (int64_t c0 = 0; c0 < columns; c0 += kLanes) {
    Lanes acc[T] = {};
    for (int64_t k = 0; k < in; ++k) {
      const Lanes row = load_lanes(down + k * columns + c0);
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) acc[i] += xs[i * in + k] * row;
    }
    for (int i = 0; i < T; ++i) {
      const Lanes scaled = acc[i] * scale;
      std::memcpy(hidden + i * columns + c0, &scaled, sizeof scaled);
    }
  }
}

// y_i[col:col+width] += hidden_i[first:first+rank] @ up[rank][:width], the float32 sum added
// to y and rounded once.
template <int T, typename scalar_t>
void up_tiles(const float* hidden, int64_t columns, int64_t first, const at::Tensor& up,
              int64_t width, scalar_t* const* y_rows, int64_t col) {
  const int64_t rank = up.size(0), out = up.size(1);
  const scalar_t* b = up.data_ptr<scalar_t>();
  int64_t j0 = 0;
  for (; j0 + kLanes <= width; j0 += kLanes) {
    Lanes acc[T] = {};
    for (int64_t r = 0; r < rank; ++r) {
      const Lanes row = load_lanes(b + r * out + j0);
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) acc[i] += hidden[i * columns + first + r] * row;
    }
    for (int i = 0; i < T; ++i) {
      scalar_t* yt = y_rows[i] + col + j0;
      store_lanes(yt, load_lanes(yt) + acc[i]);
    }
  }
  for (int i = 0; i < T; ++i) {  // the last columns, fewer than a tile
    scalar_t* yt = y_rows[i] + col;
    for (int64_t j = j0; j < width; ++j) {
      float acc = 0.0f;
      for (int64_t r = 0; r < rank; ++r) {
        acc += hidden[i * columns + first + r] * static_cast<float>(b[r * out + j]);
      }
      yt[j] = static_cast<scalar_t>(static_cast<float>(yt[j]) + acc);
    }
  }
}

// T tokens of one slot: their rows of x, through the slot's A and then each slice's B.
template <int T, typename scalar_t>
void add_tokens(const at::Tensor& y, const at::Tensor& x, const int64_t* rows,
                const SlotWeights& w, double scale, at::IntArrayRef output_slices,
                std::vector<float>& xs, std::vector<float>& hidden) {
  const int64_t in = x.size(1), columns = w.down.size(1), y_width = y.size(1);
  xs.resize(T * in);
  hidden.resize(T * columns);
  scalar_t* y_rows[T];
  for (int i = 0; i < T; ++i) {
    const scalar_t* xt = x.data_ptr<scalar_t>() + rows[i] * x.stride(0);
    for (int64_t k = 0; k < in; ++k) xs[i * in + k] = static_cast<float>(xt[k]);
    y_rows[i] = y.data_ptr<scalar_t>() + rows[i] * y.stride(0);
  }
  down_tiles<T, scalar_t>(xs.data(), in, w, static_cast<float>(scale), hidden.data());
  int64_t first = 0, col = 0;
  for (size_t s = 0; s < w.ups.size(); ++s) {
    const int64_t width = slice_width(w, s, output_slices[s], col, y_width);
    if (width > 0 && w.ranks[s] > 0) {
      up_tiles<T, scalar_t>(hidden.data(), columns, first, w.ups[s], width, y_rows, col);
    }
    first += w.ranks[s];
    col += output_slices[s];
  }
}

// Up to kLoopMaxTokens tokens (decode steps, short prefill chunks): register-tiled loops,
// in groups of up to 8 tokens of a slot, so each group reads the slot's weights once.
template <typename scalar_t>
void add_by_loops(const at::Tensor& y, const at::Tensor& x, const int64_t* slots,
                  const Fused& f, double scale, at::IntArrayRef output_slices) {
  const auto rows_of = rows_by_slot(slots, x.size(0), f.slots.size());
  std::vector<float> xs, hidden;
  for (size_t slot = 0; slot < rows_of.size(); ++slot) {
    const SlotWeights& w = f.slots[slot];
    const auto& rows = rows_of[slot];
    const auto n = static_cast<int64_t>(rows.size());
    if (w.rank_sum == 0) continue;
    for (int64_t i = 0; i < n;) {
      const int64_t* group = rows.data() + i;
      const int64_t left = n - i;
      if (left >= 8) {
        add_tokens<8, scalar_t>(y, x, group, w, scale, output_slices, xs, hidden), i += 8;
      } else if (left >= 4) {
        add_tokens<4, scalar_t>(y, x, group, w, scale, output_slices, xs, hidden), i += 4;
      } else if (left >= 2) {
        add_tokens<2, scalar_t>(y, x, group, w, scale, output_slices, xs, hidden), i += 2;
      } else {
        add_tokens<1, scalar_t>(y, x, group, w, scale, output_slices, xs, hidden), i += 1;
      }
    }
  }
}

void add_by_blas(const at::Tensor& y, const at::Tensor& x, const int64_t* slots,
                 const Fused& f, double scale, at::IntArrayRef output_slices) {
  const int64_t tokens = x.size(0);
  auto rows_of = rows_by_slot(slots, tokens, f.slots.size());
  // bf16 products where the CPU has bf16 instructions (oneDNN accumulates in float32):
  // on a 2-core EPYC they took a quarter of the float32 path's time, the float32 add into
  // a bf16 output most of it; elsewhere bf16 products are slower than float32 ones
  const bool bf16 = kBf16Products && x.scalar_type() == at::kBFloat16 &&
                    y.scalar_type() == at::kBFloat16 &&
                    f.slots[0].down.scalar_type() == at::kBFloat16;
  const auto dtype = bf16 ? at::kBFloat16 : at::kFloat;
  for (size_t slot = 0; slot < rows_of.size(); ++slot) {
    const SlotWeights& w = f.slots[slot];
    const auto count = static_cast<int64_t>(rows_of[slot].size());
    if (count == 0 || w.rank_sum == 0) continue;
    const bool one_for_all = count == tokens;
    at::Tensor rows;
    at::Tensor xs = x;
    if (!one_for_all) {
      rows = at::from_blob(rows_of[slot].data(), {count}, at::kLong).clone();
      xs = x.index_select(0, rows);
    }
    at::Tensor hidden = at::mm(xs.to(dtype), w.down.narrow(1, 0, w.rank_sum).to(dtype));
    if (scale != 1.0) hidden.mul_(scale);
    int64_t first = 0, col = 0;
    for (size_t s = 0; s < w.ups.size(); ++s) {
      const int64_t rank = w.ranks[s];
      const int64_t width = slice_width(w, s, output_slices[s], col, y.size(1));
      if (width > 0 && rank > 0) {
        const at::Tensor h = hidden.narrow(1, first, rank);
        const at::Tensor b = w.ups[s].narrow(1, 0, width).to(dtype);
        at::Tensor target = y.narrow(1, col, width);
        if (one_for_all && bf16) {
          target.addmm_(h, b);
        } else if (one_for_all) {
          target.add_(at::mm(h, b));  // float32 product added in place, rounded once
        } else {
          target.index_add_(0, rows, at::mm(h, b).to(y.scalar_type()));
        }
      }
      first += rank;
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
  if (tokens <= kLoopMaxTokens && in.scalar_type() == dtype &&
      f.slots[0].down.scalar_type() == dtype &&
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
