// The readouts of many small networks of one shape at once — spike input, one feed-forward LIF layer
// and a leaky readout, each model m its own weights (a population in evolution) — without writing
// anything but the readouts: per model and sample, the whole sequence with the state in cache,
//
//   I_t = b^m + Σ_{k ∈ x_t} x_tk W^m[:, k]             (the spikes' index, k increasing)
//   v_t = β v_{t−1} + I_t − θ z_{t−1},  z_t = H(v_t − θ)
//   r_t = c^m + Σ_{j: z_tj ≠ 0} z_tj U^m[:, j],   y_t = decay · y_{t−1} + r_t
//
// in the operations and the order of the kernels a model's own pass runs — spike_sum's currents
// (the sum, then the bias added), lif_forward's update, grouped_linear's readout (the bias, then the
// terms) and leaky_filter — so the hidden spikes are the same bits and the readouts agree to
// rounding with the population's layer-by-layer pass. The pass of these networks otherwise writes
// each model's currents and spikes, (T, B, N) each, to memory and reads them back (population.py).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

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

// Steps whose spikes a model reads out together (run_model): its neurons' update runs kChunk steps ahead
// of its readout, which then reads their spikes from bit masks. Read out at each step, the loop over a
// step's spikes waited for the update that made them, and every misprediction of its end discarded the
// next block's work: the kernel over digits' test split 2.6 → 1.7 ms, 64 networks of 64 neurons 14.3 →
// 11.4 ms (family 25 model 17; one process, the builds taking turns). Within a chunk each block of
// neurons takes every step before the next block does (its state stays in registers, its rows of
// weight_t in the L1 cache): 64 networks of 64 neurons 10.5 → 8.8 ms, digits' split 1.60 → 1.55 ms; a
// chunk of 128 steps rather than 32 another 3% on the former.
constexpr int64_t kChunk = 128;

// One model and one sample over every step, kBlock hidden neurons at a time. The hidden layer is padded
// to blocks of kBlock neurons (zero weights and bias: they never reach θ > 0): weight_t (n_in, H), bias
// (H) where kBias (else the sum is added to 0, as spike_sum does without one), readout_t (H,
// kReadoutLanes), readout_bias (kReadoutLanes), H = blocks · kBlock, β one number (a population's neurons
// are). The sample's step t is row t · row_stride of the index off/col/val (values where kWeighted). out
// is this sample's and model's (O) row of step 0, rows `out_stride` apart; v and z hold H values, masks
// kChunk · blocks words; per_neuron (or null): each neuron's spikes over the sequence, then its spike of
// the last step (2·H). Returns whether the final voltage is finite.
template <typename T, bool kWeighted, int64_t kBlock, bool kBias, int64_t kBytes>
NP_CLONES bool run_model(int64_t steps, int64_t blocks, int64_t outputs, const int64_t* off, const int32_t* col,
                         const T* val, int64_t row_stride, const T* __restrict__ weight_t,
                         const T* __restrict__ bias, T beta, T theta, const T* __restrict__ readout_t,
                         const T* __restrict__ readout_bias, T decay, T* __restrict__ out, int64_t out_stride,
                         int32_t* __restrict__ per_neuron, T* __restrict__ v, T* __restrict__ z,
                         uint64_t* __restrict__ masks) {
  static_assert(kBlock <= 64, "a block's spikes fill one mask word");
  const std::integral_constant<int64_t, kBytes> width;
  const int64_t hidden = blocks * kBlock;
  std::fill(v, v + hidden, T(0));
  std::fill(z, z + hidden, T(0));
  if (per_neuron != nullptr) std::fill(per_neuron, per_neuron + hidden, 0);
  ReadoutRow<T, kBytes> y = {};
  for (int64_t first = 0; first < steps; first += kChunk) {
    const int64_t last = std::min(steps, first + kChunk);
    for (int64_t block = 0; block < hidden; block += kBlock) {
      T* vb = v + block;
      T* zb = z + block;
      for (int64_t t = first; t < last; ++t) {
        const int64_t row = t * row_stride, events = off[row + 1] - off[row];
        T current[kBlock];
        block_sums<T, kWeighted, kBlock, kBytes>(weight_t, hidden, block, col + off[row],
                                                 kWeighted ? val + off[row] : nullptr, events, nullptr, current);
        for (int64_t i = 0; i < kBlock; ++i) {
          const T input = kBias ? bias[block + i] + current[i] : T(0) + current[i];  // spike_sum's init + sum
          const T value = beta * vb[i] + input - theta * zb[i];
          vb[i] = value;
          zb[i] = value >= theta ? T(1) : T(0);
        }
        masks[(t - first) * blocks + block / kBlock] = compare_bits<kNotEqual, kBlock>(zb, T(0), width);
      }
    }
    for (int64_t t = first; t < last; ++t) {  // grouped_linear's readout: the bias, then a row per spike (1 · u)
      auto r = ReadoutRow<T, kBytes>::from(readout_bias);
      for (int64_t block = 0; block < blocks; ++block) {
        for (uint64_t spiked = masks[(t - first) * blocks + block]; spiked != 0; spiked &= spiked - 1) {
          const int64_t j = block * kBlock + __builtin_ctzll(spiked);
          if (per_neuron != nullptr) ++per_neuron[j];
          r.add(readout_t + j * kReadoutLanes);
        }
      }
      y.leak(decay, r);
      y.store(out + t * out_stride, outputs);
    }
  }
  if (per_neuron != nullptr) {
    for (int64_t i = 0; i < hidden; ++i) per_neuron[hidden + i] = z[i] != T(0);
  }
  bool finite = true;
  for (int64_t i = 0; i < hidden; ++i) finite &= std::isfinite(v[i]);
  return finite;
}

// offsets/columns/values: the input spikes' index over (X, T, B) rows, X = 1 (every model reads them)
// or M; weight_t (M, n_in, H), bias (M, H) or none, readout_t (M, H, kReadoutLanes), readout_bias
// (M, kReadoutLanes), H = 32 (one block of 32) or a multiple of 64 (blocks of 64), padded with zeros
// (population_lif.py); out (T, B, M, O); per_neuron (B, M, 2, H) or none.
// Returns how many (model, sample) ended with a non-finite voltage.
int64_t population_lif_forward(const at::Tensor& offsets, const at::Tensor& columns,
                               const std::optional<at::Tensor>& values, int64_t input_models, int64_t steps,
                               int64_t batch, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias,
                               double beta, double threshold, const at::Tensor& readout_t,
                               const at::Tensor& readout_bias, double decay, at::Tensor out,
                               const std::optional<at::Tensor>& per_neuron) {
  const auto [models, inputs, hidden, outputs] = check_population(
      offsets, columns, values, input_models, steps, batch, weight_t, bias, threshold, readout_t, readout_bias, out);
  int32_t* each = neuron_counts(per_neuron, batch * models * 2 * hidden, false);  // each item zeroes its own
  std::atomic<int64_t> diverged{0};
  AT_DISPATCH_FLOATING_TYPES(weight_t.scalar_type(), "population_lif_forward", [&] {
    using T = scalar_t;
    const int64_t* off = offsets.const_data_ptr<int64_t>();
    const int32_t* col = columns.const_data_ptr<int32_t>();
    const T* val = values ? values->const_data_ptr<T>() : nullptr;
    const T *w = weight_t.const_data_ptr<T>(), *b = bias ? bias->const_data_ptr<T>() : nullptr;
    const T *u = readout_t.const_data_ptr<T>(), *c = readout_bias.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    const auto theta = static_cast<T>(threshold), d = static_cast<T>(decay), rate = static_cast<T>(beta);
    // items (sample, model), the models of one sample together: they read the same input rows
    with_register_bytes([&](auto bytes) {
      at::parallel_for(0, batch * models, 8, [&](int64_t begin, int64_t end) {
        std::vector<T> state(2 * hidden);
        std::vector<uint64_t> masks(kChunk * (hidden / 32));
        for (int64_t item = begin; item < end; ++item) {
          const int64_t s = item / models, m = item % models;
          const int64_t first_row = (input_models == 1 ? 0 : m) * steps * batch + s;
          const auto run = [&](auto weighted, auto block) {
            const auto go = [&](auto with_bias) {
              return run_model<T, decltype(weighted)::value, decltype(block)::value, decltype(with_bias)::value,
                               decltype(bytes)::value>(
                  steps, hidden / block, outputs, off + first_row, col, val, batch, w + m * inputs * hidden,
                  b ? b + m * hidden : nullptr, rate, theta, u + m * hidden * kReadoutLanes, c + m * kReadoutLanes,
                  d, o + (s * models + m) * outputs, batch * models * outputs,
                  each == nullptr ? nullptr : each + item * 2 * hidden, state.data(), state.data() + hidden,
                  masks.data());
            };
            return b ? go(std::true_type{}) : go(std::false_type{});
          };
          using Narrow = std::integral_constant<int64_t, 32>;
          using Wide = std::integral_constant<int64_t, 64>;
          const bool finite = hidden == 32
                                  ? (val ? run(std::true_type{}, Narrow{}) : run(std::false_type{}, Narrow{}))
                                  : (val ? run(std::true_type{}, Wide{}) : run(std::false_type{}, Wide{}));
          if (!finite) ++diverged;
        }
      });
    });
  });
  return diverged.load();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("population_lif_forward(Tensor offsets, Tensor columns, Tensor? values, int input_models, int steps, "
        "int batch, Tensor weight_t, Tensor? bias, float beta, float threshold, Tensor readout_t, "
        "Tensor readout_bias, float decay, Tensor(a!) out, Tensor(b!)? per_neuron) -> int");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("population_lif_forward", population_lif_forward);
}
