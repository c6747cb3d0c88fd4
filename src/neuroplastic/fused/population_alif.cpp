// The readouts of recurrent networks of adaptive LIF neurons (e-prop's LSNN cell; the recurrent LIF
// where β = 0) — spike input, one recurrent layer and a leaky readout, each model m its own weights —
// without writing anything but the readouts and each step's spike count: per model and sample, the
// whole sequence with the state in cache,
//
//   X_t = b^m + Σ_{k ∈ x_t} x_tk V^m[:, k],   R_t = Σ_{j: z_{t−1,j} ≠ 0} W^m[:, j]
//   z_t from X_t + R_t by the neurons' step (alif_step.h)
//   y_t = decay · y_{t−1} + c^m + Σ_{j: z_tj ≠ 0} U^m[:, j]
//
// in the operations and the order of the kernels a model's layer-by-layer pass runs: the input
// currents as grouped_linear adds them (the bias first) or as spike_sum does (the sum, then the bias),
// alif_recurrent_forward's event product and update, grouped_linear's readout and leaky_filter. That
// pass sums a step's recurrent product event by event only where the step before had few spikes
// across the whole batch; the counts written here let the caller check that it would have
// (population_lif.py), so the spikes are the same bits and the readouts agree to rounding.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "alif_step.h"
#include "population.h"
#include "shared.h"
#include "tile_sums.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

template <typename T>
using Lanes = typename Tile<T, 1, kReadoutLanes * sizeof(T)>::vec;  // a readout's padded row (tile_sums.h)

template <typename T>
struct Neurons {  // the constants as the layer's kernels cast them
  Cell<T> cell;
  T decay;
};

// out[0:kBlock] = init (or 0) + Σ over the listed rows of m (ld apart, offset `at`), row i weighted by
// w[i] where kWeighted: the block's currents in vector registers, added in the order listed.
template <typename T, bool kWeighted, int64_t kBlock, int64_t kBytes>
inline __attribute__((always_inline)) void block_sums(const T* m, int64_t ld, int64_t at, const int32_t* rows,
                                                      const T* w, int64_t count, const T* init, T* out) {
  using vec = typename Tile<T, 1, kBytes>::vec;
  constexpr int64_t per_vec = Tile<T, 1, kBytes>::per_vec, vectors = kBlock / per_vec;
  vec sums[vectors], loaded;
  for (int64_t l = 0; l < vectors; ++l) {
    if (init != nullptr) std::memcpy(&sums[l], init + at + l * per_vec, sizeof(vec));
    else sums[l] = vec{};
  }
  for (int64_t k = 0; k < count; ++k) {
    const T* row = m + int64_t(rows[k]) * ld + at;
    for (int64_t l = 0; l < vectors; ++l) {
      std::memcpy(&loaded, row + l * per_vec, sizeof(vec));
      if constexpr (kWeighted) loaded *= w[k];
      sums[l] += loaded;
    }
  }
  std::memcpy(out, sums, sizeof(sums));
}

// One model and one sample over every step. H = blocks · kBlock hidden neurons, padded with zeros
// (weights, bias: they never reach θ > 0): weight_t (n_in, H), bias (H) or none, recurrent_t (H, H)
// (row j: W[:, j]), alpha and rho (H), readout_t (H, kReadoutLanes), readout_bias (kReadoutLanes). The
// input's events of step t are col[off[t·row_stride] … off[t·row_stride + 1]). out: this item's row of
// step 0, rows out_stride apart; counts: its spikes per step; per_neuron (or null): each neuron's spikes over the
// sequence, then its spike of the last step (2·H). work holds 9·H values. Returns whether the final
// state is finite.
template <typename T, bool kWeighted, bool kBiasFirst, int64_t kBlock, int64_t kBytes>
NP_CLONES bool run_model(int64_t steps, int64_t blocks, int64_t outputs, const int64_t* off, const int32_t* col,
                         const T* val, int64_t row_stride, const T* __restrict__ weight_t,
                         const T* __restrict__ bias, const T* __restrict__ recurrent_t,
                         const T* __restrict__ alpha, const T* __restrict__ rho, const Neurons<T>& c,
                         const T* __restrict__ readout_t, const T* __restrict__ readout_bias,
                         T* __restrict__ out, int64_t out_stride, int32_t* __restrict__ counts,
                         int32_t* __restrict__ per_neuron,
                         T* __restrict__ work) {
  const int64_t hidden = blocks * kBlock;
  T *v = work, *a = v + hidden, *r = a + hidden, *z_prev = r + hidden, *z = z_prev + hidden;
  T *input = z + hidden, *rec = input + hidden;
  int32_t* fired = reinterpret_cast<int32_t*>(rec + hidden);  // z_prev's spikes, then z's (H ints each)
  int32_t* fired_now = fired + hidden;
  std::fill(work, work + 5 * hidden, T(0));
  int64_t fired_count = 0;
  Lanes<T> y{};
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t first = off[t * row_stride], events = off[t * row_stride + 1] - first;
    const T* values = kWeighted ? val + first : nullptr;  // binary input: no values
    for (int64_t at = 0; at < hidden; at += kBlock) {
      if constexpr (kBiasFirst) {  // grouped_linear: out = bias, then each term added
        block_sums<T, kWeighted, kBlock, kBytes>(weight_t, hidden, at, col + first, values, events, bias,
                                                 input + at);
      } else {  // spike_sum: the sum, then the bias added to it
        block_sums<T, kWeighted, kBlock, kBytes>(weight_t, hidden, at, col + first, values, events, nullptr,
                                                 input + at);
        for (int64_t i = at; i < at + kBlock; ++i) input[i] = bias != nullptr ? bias[i] + input[i] : T(0) + input[i];
      }
      block_sums<T, false, kBlock, kBytes>(recurrent_t, hidden, at, fired, nullptr, fired_count, nullptr, rec + at);
    }
    alif_step<kFastSigmoid, true, false>(hidden, input, rec, alpha, rho, c.cell, Surrogate<T>{}, z_prev, v, a, r, z,
                                         static_cast<T*>(nullptr));  // no h, so any surrogate
    int64_t spiked = 0;
    Lanes<T> sums, row;  // grouped_linear's readout: the bias, then a row per spike (z = 1: 1 · u is u)
    std::memcpy(&sums, readout_bias, sizeof(sums));
    for_each_nonzero(hidden, z, [&](int64_t j) {
      fired_now[spiked++] = int32_t(j);
      if (per_neuron != nullptr) ++per_neuron[j];
      std::memcpy(&row, readout_t + j * kReadoutLanes, sizeof(row));
      sums += row;
    });
    y = c.decay * y + sums;
    std::memcpy(out + t * out_stride, &y, outputs * sizeof(T));
    counts[t] = int32_t(spiked);
    std::swap(z_prev, z);
    std::swap(fired, fired_now);
    fired_count = spiked;
  }
  if (per_neuron != nullptr) {
    for (int64_t i = 0; i < hidden; ++i) per_neuron[hidden + i] = z_prev[i] != T(0);  // z_prev: the last step's
  }
  bool finite = true;
  for (int64_t i = 0; i < hidden; ++i) finite &= std::isfinite(v[i]) & std::isfinite(a[i]);
  return finite;
}

// offsets/columns/values: the input spikes' index over (X, T, B) rows, X = 1 (every model reads them)
// or M; weight_t (M, n_in, H), bias (M, H) or none, recurrent_t (M, H, H), alpha and rho (H),
// readout_t (M, H, kReadoutLanes), readout_bias (M, kReadoutLanes), H = 32 (one block of 32) or a multiple
// of 64
// (blocks of 64), padded with zeros
// (population_lif.py); out (T, B, M, O); counts (B, M, T); per_neuron (B, M, 2, H) or none. Returns how
// many (model, sample) ended with a non-finite state.
int64_t population_alif_forward(const at::Tensor& offsets, const at::Tensor& columns,
                                const std::optional<at::Tensor>& values, int64_t input_models, int64_t steps,
                                int64_t batch, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias,
                                bool bias_first, const at::Tensor& recurrent_t, const at::Tensor& alpha,
                                const at::Tensor& rho, double threshold, double adaptation, double t_ref, double dt,
                                const at::Tensor& readout_t, const at::Tensor& readout_bias, double decay,
                                at::Tensor out, at::Tensor counts, const std::optional<at::Tensor>& per_neuron) {
  const auto [models, inputs, hidden, outputs] = check_population(
      offsets, columns, values, input_models, steps, batch, weight_t, bias, threshold, readout_t, readout_bias, out);
  TORCH_CHECK(counts.dtype() == at::kInt && counts.is_contiguous() && counts.numel() == batch * models * steps,
              "counts must be int32 (B, M, T)");
  int32_t* each = neuron_counts(per_neuron, batch * models * 2 * hidden);
  check(recurrent_t, weight_t, models * hidden * hidden, "recurrent_t");
  for (const auto* row : {&alpha, &rho}) check(*row, weight_t, hidden, "alpha and rho");
  std::atomic<int64_t> diverged{0};
  AT_DISPATCH_FLOATING_TYPES(weight_t.scalar_type(), "population_alif_forward", [&] {
    using T = scalar_t;
    const int64_t* off = offsets.const_data_ptr<int64_t>();
    const int32_t* col = columns.const_data_ptr<int32_t>();
    const T* val = values ? values->const_data_ptr<T>() : nullptr;
    const T *w = weight_t.const_data_ptr<T>(), *b = bias ? bias->const_data_ptr<T>() : nullptr;
    const T *rw = recurrent_t.const_data_ptr<T>(), *al = alpha.const_data_ptr<T>(), *rh = rho.const_data_ptr<T>();
    const T *u = readout_t.const_data_ptr<T>(), *c = readout_bias.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    int32_t* n = counts.mutable_data_ptr<int32_t>();
    const Neurons<T> cell{{static_cast<T>(threshold), static_cast<T>(adaptation), static_cast<T>(t_ref),
                           static_cast<T>(dt), static_cast<T>(dt / 2)}, static_cast<T>(decay)};
    with_register_bytes([&](auto bytes) {
      // items (sample, model), the models of one sample together: they read the same input rows
      at::parallel_for(0, batch * models, 8, [&](int64_t begin, int64_t end) {
        std::vector<T> work(9 * hidden);
        for (int64_t item = begin; item < end; ++item) {
          const int64_t s = item / models, m = item % models;
          const int64_t first_row = (input_models == 1 ? 0 : m) * steps * batch + s;
          const auto run = [&](auto weighted, auto bias_order, auto block) {
            return run_model<T, decltype(weighted)::value, decltype(bias_order)::value, decltype(block)::value,
                             decltype(bytes)::value>(
                steps, hidden / block, outputs, off + first_row, col, val, batch, w + m * inputs * hidden,
                b ? b + m * hidden : nullptr, rw + m * hidden * hidden, al, rh, cell,
                u + m * hidden * kReadoutLanes, c + m * kReadoutLanes, o + (s * models + m) * outputs,
                batch * models * outputs, n + item * steps,
                each == nullptr ? nullptr : each + item * 2 * hidden, work.data());
          };
          const auto in_blocks = [&](auto weighted, auto bias_order) {
            return hidden == 32 ? run(weighted, bias_order, std::integral_constant<int64_t, 32>{})
                                : run(weighted, bias_order, std::integral_constant<int64_t, 64>{});
          };
          const bool finite = val ? (bias_first ? in_blocks(std::true_type{}, std::true_type{})
                                                : in_blocks(std::true_type{}, std::false_type{}))
                                  : (bias_first ? in_blocks(std::false_type{}, std::true_type{})
                                                : in_blocks(std::false_type{}, std::false_type{}));
          if (!finite) ++diverged;
        }
      });
    });
  });
  return diverged.load();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("population_alif_forward(Tensor offsets, Tensor columns, Tensor? values, int input_models, int steps, "
        "int batch, Tensor weight_t, Tensor? bias, bool bias_first, Tensor recurrent_t, Tensor alpha, Tensor rho, "
        "float threshold, float adaptation, float t_ref, float dt, Tensor readout_t, Tensor readout_bias, "
        "float decay, Tensor(a!) out, Tensor(b!) counts, Tensor(c!)? per_neuron) -> int");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("population_alif_forward", population_alif_forward);
}
