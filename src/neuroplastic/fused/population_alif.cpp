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

// Samples of one model stepped in lockstep (run_model) where the layer has at most 64 neurons: 64 networks
// of 64 recurrent LIF neurons ran 10% faster than one sample at a time on an EPYC with 48 KB of L1d (2 or
// 3 samples gained as much), 1.5× on one with 32 KB (family 25 model 17: 2 samples 1.25×, 8 as 4);
// wider layers run one at a time, which in lockstep ran 4–5% slower on both (mnist1d's 256 neurons: four
// samples' state no longer in L1 beside the weights' rows; cue's 100: no change).
constexpr int64_t kLockstep = 4, kLockstepWidth = 64;

template <typename T>
struct Neurons {  // the constants as the layer's kernels cast them
  Cell<T> cell;
  T decay;
};

// One model and kSamples samples over every step, in lockstep: each phase of a step runs for every sample
// before the next phase, so that the out-of-order core overlaps their independent chains of additions.
// H = blocks · kBlock hidden neurons, padded with zeros (weights, bias: they never reach θ > 0): weight_t
// (n_in, H), bias (H) or none, added first (bias_first: grouped_linear) or last (spike_sum), recurrent_t
// (H, H) (row j: W[:, j]), alpha and rho (H), readout_t (H, kReadoutLanes), readout_bias (kReadoutLanes);
// plain LIF neurons where not kAdaptive. Sample s's input events of step t are col[off[t·row_stride + s]
// … off[t·row_stride + s + 1]). out: the first sample's row of step 0, rows out_stride apart, the next
// sample's sample_stride further; counts: the first sample's spikes per step; per_neuron (or null): its
// neurons' spikes over the sequence, then their spike of the last step (2·H); the next sample's counts
// and per_neuron items_apart items further. work holds 9·H values per sample. Returns how many samples
// ended with a non-finite state.
template <typename T, bool kWeighted, int64_t kBlock, int64_t kBytes, int64_t kSamples, bool kAdaptive>
NP_CLONES int64_t run_model(int64_t steps, int64_t blocks, int64_t outputs, const int64_t* off, const int32_t* col,
                            const T* val, int64_t row_stride, const T* __restrict__ weight_t,
                            const T* __restrict__ bias, bool bias_first, const T* __restrict__ recurrent_t,
                            const T* __restrict__ alpha, const T* __restrict__ rho, const Neurons<T>& c,
                            const T* __restrict__ readout_t, const T* __restrict__ readout_bias,
                            T* __restrict__ out, int64_t out_stride, int64_t sample_stride, int64_t items_apart,
                            int32_t* __restrict__ counts, int32_t* __restrict__ per_neuron, T* __restrict__ work) {
  const int64_t hidden = blocks * kBlock;
  const std::integral_constant<int64_t, kBytes> width;
  struct State {
    T *v, *a, *r, *z_prev, *z, *input, *rec;
    int32_t *fired, *fired_now;  // z_prev's spikes, then z's (H ints each)
    int64_t fired_count;
  } state[kSamples];
  for (int64_t s = 0; s < kSamples; ++s) {
    T* w = work + s * 9 * hidden;
    std::fill(w, w + 5 * hidden, T(0));
    state[s] = {w, w + hidden, w + 2 * hidden, w + 3 * hidden, w + 4 * hidden, w + 5 * hidden, w + 6 * hidden,
                reinterpret_cast<int32_t*>(w + 7 * hidden), reinterpret_cast<int32_t*>(w + 7 * hidden) + hidden, 0};
  }
  ReadoutRow<T, kBytes> y[kSamples] = {};
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t at = 0; at < hidden; at += kBlock) {
      for (int64_t s = 0; s < kSamples; ++s) {
        const int64_t first = off[t * row_stride + s], events = off[t * row_stride + s + 1] - first;
        const T* values = kWeighted ? val + first : nullptr;  // binary input: no values
        T* input = state[s].input;
        if (bias_first) {  // grouped_linear: out = bias, then each term added
          block_sums<T, kWeighted, kBlock, kBytes>(weight_t, hidden, at, col + first, values, events, bias,
                                                   input + at);
        } else {  // spike_sum: the sum, then the bias added to it
          block_sums<T, kWeighted, kBlock, kBytes>(weight_t, hidden, at, col + first, values, events, nullptr,
                                                   input + at);
          for (int64_t i = at; i < at + kBlock; ++i) input[i] = bias != nullptr ? bias[i] + input[i] : T(0) + input[i];
        }
      }
      for (int64_t s = 0; s < kSamples; ++s) {
        block_sums<T, false, kBlock, kBytes>(recurrent_t, hidden, at, state[s].fired, nullptr, state[s].fired_count,
                                             nullptr, state[s].rec + at);
      }
    }
    for (int64_t s = 0; s < kSamples; ++s) {
      State& q = state[s];
      alif_step<kFastSigmoid, true, false, T, kAdaptive>(hidden, q.input, q.rec, alpha, rho, c.cell, Surrogate<T>{},
                                                         q.z_prev, q.v, q.a, q.r, q.z,
                                                         static_cast<T*>(nullptr));  // no h: any surrogate
    }
    for (int64_t s = 0; s < kSamples; ++s) {
      State& q = state[s];
      int32_t* each = per_neuron != nullptr ? per_neuron + s * items_apart * 2 * hidden : nullptr;
      int64_t spiked = 0;
      // grouped_linear's readout: the bias, then a row per spike (z = 1: 1 · u is u); a block's spikes
      // found by the instruction set's comparisons (compare_bits; for_each_nonzero's scalar loop took 6%
      // more of mnist1d's evaluation and 8% of 64 networks of 64 neurons)
      auto sums = ReadoutRow<T, kBytes>::from(readout_bias);
      for (int64_t base = 0; base < hidden; base += kBlock) {
        for_each_bit(compare_bits<kNotEqual, kBlock>(q.z + base, T(0), width), base, [&](int64_t j) {
          q.fired_now[spiked++] = int32_t(j);
          if (each != nullptr) ++each[j];
          sums.add(readout_t + j * kReadoutLanes);
        });
      }
      y[s].leak(c.decay, sums);
      y[s].store(out + s * sample_stride + t * out_stride, outputs);
      counts[s * items_apart * steps + t] = int32_t(spiked);
      std::swap(q.z_prev, q.z);
      std::swap(q.fired, q.fired_now);
      q.fired_count = spiked;
    }
  }
  int64_t diverged = 0;
  for (int64_t s = 0; s < kSamples; ++s) {
    const State& q = state[s];
    if (per_neuron != nullptr) {
      int32_t* last = per_neuron + (s * items_apart * 2 + 1) * hidden;
      for (int64_t i = 0; i < hidden; ++i) last[i] = q.z_prev[i] != T(0);  // z_prev: the last step's
    }
    bool finite = true;
    for (int64_t i = 0; i < hidden; ++i) finite &= std::isfinite(q.v[i]) & std::isfinite(q.a[i]);
    diverged += !finite;
  }
  return diverged;
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
    // plain LIF neurons (no adaptation, no refractory time) skip the trace and refractory arrays: the same
    // spikes (θ + 0 · a is θ; r stays 0 ≤ dt/2), 8% faster for 64 networks of 64 neurons, 6% for mnist1d's
    const bool plain = adaptation == 0 && t_ref == 0;
    with_register_bytes([&](auto bytes) {
      // units (a group of `lockstep` samples, a model), the models of one group together: they read the same
      // input rows
      const int64_t lockstep = hidden <= kLockstepWidth ? kLockstep : 1, groups = (batch + lockstep - 1) / lockstep;
      at::parallel_for(0, groups * models, 4, [&](int64_t begin, int64_t end) {
        std::vector<T> work(lockstep * 9 * hidden);
        for (int64_t unit = begin; unit < end; ++unit) {
          const int64_t s = unit / models * lockstep, m = unit % models, item = s * models + m;
          const int64_t first_row = (input_models == 1 ? 0 : m) * steps * batch + s;
          const auto run = [&](auto weighted, auto block, auto samples, auto adaptive, int64_t k) {
            return run_model<T, decltype(weighted)::value, decltype(block)::value, decltype(bytes)::value,
                             decltype(samples)::value, decltype(adaptive)::value>(
                steps, hidden / block, outputs, off + first_row + k, col, val, batch, w + m * inputs * hidden,
                b ? b + m * hidden : nullptr, bias_first, rw + m * hidden * hidden, al, rh, cell,
                u + m * hidden * kReadoutLanes, c + m * kReadoutLanes, o + ((s + k) * models + m) * outputs,
                batch * models * outputs, models * outputs, models, n + (item + k * models) * steps,
                each == nullptr ? nullptr : each + (item + k * models) * 2 * hidden, work.data());
          };
          const auto in_groups = [&](auto weighted, auto block, auto adaptive) {
            if (lockstep == kLockstep && s + kLockstep <= batch)
              return run(weighted, block, std::integral_constant<int64_t, kLockstep>{}, adaptive, 0);
            int64_t count = 0;  // one by one: wide layers, and a batch's last samples short of a group
            for (int64_t k = 0; k < lockstep && s + k < batch; ++k)
              count += run(weighted, block, std::integral_constant<int64_t, 1>{}, adaptive, k);
            return count;
          };
          const auto in_blocks = [&](auto weighted, auto adaptive) {
            return hidden == 32 ? in_groups(weighted, std::integral_constant<int64_t, 32>{}, adaptive)
                                : in_groups(weighted, std::integral_constant<int64_t, 64>{}, adaptive);
          };
          const auto neurons = [&](auto weighted) {
            return plain ? in_blocks(weighted, std::false_type{}) : in_blocks(weighted, std::true_type{});
          };
          diverged += val ? neurons(std::true_type{}) : neurons(std::false_type{});
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
