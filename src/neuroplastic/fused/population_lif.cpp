// The readouts of many small networks of one shape at once — spike input, one feed-forward LIF layer
// and a leaky readout, each model m its own weights (a population in evolution) — without writing
// anything but the readouts: per model and sample, the whole sequence with the state in cache,
//
//   I_t = b^m + Σ_{k ∈ x_t} x_tk W^m[:, k]             (the input's nonzero entries, k increasing)
//   v_t = β v_{t−1} + I_t − θ z_{t−1},  z_t = H(v_t − θ)
//   r_t = c^m + Σ_{j: z_tj ≠ 0} z_tj U^m[:, j],   y_t = decay · y_{t−1} + r_t
//
// in the operations and the order of the kernels a model's own pass runs — spike_sum's currents
// (the sum, then the bias added), lif_forward's update, grouped_linear's readout (the bias, then the
// terms) and leaky_filter — so the hidden spikes are the same bits and the readouts agree to
// rounding with the population's layer-by-layer pass. The pass of these networks otherwise writes
// each model's currents and spikes, (T, B, N) each, to memory and reads them back (population.py).
// The input comes as its spikes' index (spike_index: built once, where many models read it) or as
// itself (one model reading it: its nonzero entries found step by step, no index built).
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
// 11.4 ms (family 25 model 17; one process, the builds taking turns).
constexpr int64_t kChunk = 32;

// One row of the input's events (a sample's step), in the order of their columns k: each(f) calls
// f(k, x_k); graded: whether some x_k is not 1.
template <typename T>
struct ListedEvents {  // a row of the spikes' index
  const int32_t* col;
  const T* val;  // null: every value 1
  int64_t count;
  bool graded() const { return val != nullptr; }
  template <typename F>
  inline __attribute__((always_inline)) void each(const F& f) const {
    for (int64_t k = 0; k < count; ++k) f(int64_t(col[k]), val != nullptr ? val[k] : T(1));
  }
};

template <typename T>
struct MaskedEvents {  // a row of the input itself, its nonzero entries as bits of words (64 entries each)
  const T* entries;
  const uint64_t* words;
  int64_t n_words;
  bool is_graded;
  bool graded() const { return is_graded; }
  template <typename F>
  inline __attribute__((always_inline)) void each(const F& f) const {
    for (int64_t w = 0; w < n_words; ++w) for_each_bit(words[w], 64 * w, [&](int64_t k) { f(k, entries[k]); });
  }
};

// The input as its spikes' index: row r's events are col[off[r] … off[r + 1]), values where graded.
template <typename T>
struct IndexedInput {
  const int64_t* off;
  const int32_t* col;
  const T* val;
  template <int64_t kBytes>
  inline __attribute__((always_inline)) ListedEvents<T> row(int64_t r) const {
    return {col + off[r], val ? val + off[r] : nullptr, off[r + 1] - off[r]};
  }
};

// The input itself, rows of n_in entries, read into bit masks (row_bits: nonzero and other, ⌈n_in / 64⌉
// words each) as each row is reached; `count` adds up its nonzero entries, `nonfinite` its NaN and
// infinite ones.
template <typename T>
struct DenseInput {
  const T* x;
  int64_t n_in;
  uint64_t *nonzero, *other;
  int64_t *count, *nonfinite;
  template <int64_t kBytes>
  inline __attribute__((always_inline)) MaskedEvents<T> row(int64_t r) const {
    const T* entries = x + r * n_in;
    const int64_t n_words = (n_in + 63) / 64;
    *count += row_bits<kBytes>(entries, n_in, nonzero, other);
    uint64_t graded = 0;
    for (int64_t w = 0; w < n_words; ++w) {  // spikes: none
      for_each_bit(other[w], 64 * w, [&](int64_t k) { *nonfinite += !std::isfinite(entries[k]); });
      graded |= other[w];
    }
    return {entries, nonzero, n_words, graded != 0};
  }
};

// out[0:kBlock] = Σ over the events of x_k m[k, at : at + kBlock] (m's rows ld apart), in vector registers
// (a plain loop here was left scalar), the events in order.
template <typename T, bool kWeighted, int64_t kBlock, int64_t kBytes, typename Row>
inline __attribute__((always_inline)) void event_sums(const T* m, int64_t ld, int64_t at, const Row& events,
                                                      T* out) {
  using vec = typename Tile<T, 1, kBytes>::vec;  // vectors of the register width (shared.h)
  constexpr int64_t per_vec = Tile<T, 1, kBytes>::per_vec, vectors = kBlock / per_vec;
  vec sums[vectors] = {}, loaded;
  events.each([&](int64_t k, T value) {
    const T* row = m + k * ld + at;
    for (int64_t l = 0; l < vectors; ++l) {
      std::memcpy(&loaded, row + l * per_vec, sizeof(vec));
      if constexpr (kWeighted) loaded *= value;
      sums[l] += loaded;
    }
  });
  std::memcpy(out, sums, sizeof(sums));
}

// One model and one sample over every step, kBlock hidden neurons at a time. The hidden layer is padded
// to blocks of kBlock neurons (zero weights and bias: they never reach θ > 0): weight_t (n_in, H), bias
// (H) where kBias (else the sum is added to 0, as spike_sum does without one), readout_t (H,
// kReadoutLanes), readout_bias (kReadoutLanes), H = blocks · kBlock, β one number (a population's neurons
// are). The sample's step t is the input's row first_row + t · row_stride. out is this sample's and
// model's (O) row of step 0, rows `out_stride` apart; v and z hold H values, masks kChunk · blocks words;
// per_neuron (or null): each neuron's spikes over the sequence, then its spike of the last step (2·H).
// Returns whether the final voltage is finite.
template <typename T, int64_t kBlock, bool kBias, int64_t kBytes, typename Input>
NP_CLONES bool run_model(int64_t steps, int64_t blocks, int64_t outputs, const Input& input, int64_t first_row,
                         int64_t row_stride, const T* __restrict__ weight_t, const T* __restrict__ bias, T beta,
                         T theta, const T* __restrict__ readout_t, const T* __restrict__ readout_bias, T decay,
                         T* __restrict__ out, int64_t out_stride, int32_t* __restrict__ per_neuron,
                         T* __restrict__ v, T* __restrict__ z, uint64_t* __restrict__ masks) {
  static_assert(kBlock <= 64, "a block's spikes fill one mask word");
  const std::integral_constant<int64_t, kBytes> width;
  const int64_t hidden = blocks * kBlock;
  std::fill(v, v + hidden, T(0));
  std::fill(z, z + hidden, T(0));
  if (per_neuron != nullptr) std::fill(per_neuron, per_neuron + hidden, 0);
  Lanes<T> y = {};
  for (int64_t first = 0; first < steps; first += kChunk) {
    const int64_t last = std::min(steps, first + kChunk);
    for (int64_t t = first; t < last; ++t) {
      const auto events = input.template row<kBytes>(first_row + t * row_stride);
      for (int64_t block = 0; block < hidden; block += kBlock) {
        T current[kBlock];
        if (events.graded()) event_sums<T, true, kBlock, kBytes>(weight_t, hidden, block, events, current);
        else event_sums<T, false, kBlock, kBytes>(weight_t, hidden, block, events, current);
        T* vb = v + block;
        T* zb = z + block;
        for (int64_t i = 0; i < kBlock; ++i) {
          const T input_current = kBias ? bias[block + i] + current[i] : T(0) + current[i];  // spike_sum's order
          const T value = beta * vb[i] + input_current - theta * zb[i];
          vb[i] = value;
          zb[i] = value >= theta ? T(1) : T(0);
        }
        masks[(t - first) * blocks + block / kBlock] = compare_bits<kNotEqual, kBlock>(zb, T(0), width);
      }
    }
    for (int64_t t = first; t < last; ++t) {  // grouped_linear's readout: the bias, then a row per spike (1 · u)
      Lanes<T> r, row;
      std::memcpy(&r, readout_bias, sizeof(r));
      for (int64_t block = 0; block < blocks; ++block) {
        for (uint64_t spiked = masks[(t - first) * blocks + block]; spiked != 0; spiked &= spiked - 1) {
          const int64_t j = block * kBlock + __builtin_ctzll(spiked);
          if (per_neuron != nullptr) ++per_neuron[j];
          std::memcpy(&row, readout_t + j * kReadoutLanes, sizeof(row));
          r += row;
        }
      }
      y = decay * y + r;
      for (int64_t o = 0; o < outputs; ++o) out[t * out_stride + o] = y[o];
    }
  }
  if (per_neuron != nullptr) {
    for (int64_t i = 0; i < hidden; ++i) per_neuron[hidden + i] = z[i] != T(0);
  }
  bool finite = true;
  for (int64_t i = 0; i < hidden; ++i) finite &= std::isfinite(v[i]);
  return finite;
}

// Every (model, sample) of the population, the input's rows (X, T, B) read through input_of(T{}, a thread's
// 2·⌈n_in / 64⌉ mask words, where it counts the entries read and the non-finite ones) (IndexedInput or DenseInput), X = 1 (every model reads
// them) or M; weight_t (M, n_in, H), bias (M, H) or none, readout_t (M, H, kReadoutLanes), readout_bias
// (M, kReadoutLanes), H = 32 (one block of 32) or a multiple of 64 (blocks of 64), padded with zeros
// (population_lif.py); out (T, B, M, O); per_neuron (B, M, 2, H) or none. Returns how many (model,
// sample) ended with a non-finite voltage; `read`, the entries counted, each row once, and `nonfinite`.
template <typename InputOf>
int64_t forward(const PopulationShape& shape, const InputOf& input_of, int64_t input_models, int64_t steps,
                int64_t batch, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias, double beta,
                double threshold, const at::Tensor& readout_t, const at::Tensor& readout_bias, double decay,
                at::Tensor& out, const std::optional<at::Tensor>& per_neuron, int64_t* read = nullptr,
                int64_t* nonfinite = nullptr) {
  const auto [models, inputs, hidden, outputs] = shape;
  int32_t* each = neuron_counts(per_neuron, batch * models * 2 * hidden, false);
  std::atomic<int64_t> diverged{0}, entries{0}, bad{0};
  AT_DISPATCH_FLOATING_TYPES(weight_t.scalar_type(), "population_lif_forward", [&] {
    using T = scalar_t;
    const T *w = weight_t.const_data_ptr<T>(), *b = bias ? bias->const_data_ptr<T>() : nullptr;
    const T *u = readout_t.const_data_ptr<T>(), *c = readout_bias.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    const auto theta = static_cast<T>(threshold), d = static_cast<T>(decay), rate = static_cast<T>(beta);
    // items (sample, model), the models of one sample together: they read the same input rows
    with_register_bytes([&](auto bytes) {
      at::parallel_for(0, batch * models, 8, [&](int64_t begin, int64_t end) {
        std::vector<T> state(2 * hidden);
        std::vector<uint64_t> masks(kChunk * (hidden / 32));
        std::vector<uint64_t> words(2 * ((inputs + 63) / 64));  // an input row's masks
        int64_t counted = 0, again = 0, odd = 0;  // the rows' entries, those of rows another model has read; NaN
        for (int64_t item = begin; item < end; ++item) {
          const int64_t s = item / models, m = item % models;
          const int64_t first_row = (input_models == 1 ? 0 : m) * steps * batch + s;
          const auto input = input_of(T{}, words.data(), input_models == 1 && m > 0 ? &again : &counted, &odd);
          const auto run = [&](auto block, auto with_bias) {
            return run_model<T, decltype(block)::value, decltype(with_bias)::value, decltype(bytes)::value>(
                steps, hidden / block, outputs, input, first_row, batch, w + m * inputs * hidden,
                b ? b + m * hidden : nullptr, rate, theta, u + m * hidden * kReadoutLanes, c + m * kReadoutLanes, d,
                o + (s * models + m) * outputs, batch * models * outputs,
                each == nullptr ? nullptr : each + item * 2 * hidden, state.data(), state.data() + hidden,
                masks.data());
          };
          const auto in_blocks = [&](auto with_bias) {
            return hidden == 32 ? run(std::integral_constant<int64_t, 32>{}, with_bias)
                                : run(std::integral_constant<int64_t, 64>{}, with_bias);
          };
          if (!(b ? in_blocks(std::true_type{}) : in_blocks(std::false_type{}))) ++diverged;
        }
        entries += counted;
        bad += odd;
      });
    });
  });
  if (read != nullptr) *read = entries.load();
  if (nonfinite != nullptr) *nonfinite = bad.load();
  return diverged.load();
}

// The input as its spikes' index over (X, T, B) rows (offsets/columns/values: spike_index).
int64_t population_lif_forward(const at::Tensor& offsets, const at::Tensor& columns,
                               const std::optional<at::Tensor>& values, int64_t input_models, int64_t steps,
                               int64_t batch, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias,
                               double beta, double threshold, const at::Tensor& readout_t,
                               const at::Tensor& readout_bias, double decay, at::Tensor out,
                               const std::optional<at::Tensor>& per_neuron) {
  const PopulationShape shape = check_population(offsets, columns, values, input_models, steps, batch, weight_t,
                                                 bias, threshold, readout_t, readout_bias, out);
  const auto index = [&](auto zero, uint64_t*, int64_t*, int64_t*) {
    using T = decltype(zero);
    return IndexedInput<T>{offsets.const_data_ptr<int64_t>(), columns.const_data_ptr<int32_t>(),
                           values ? values->const_data_ptr<T>() : nullptr};
  };
  return forward(shape, index, input_models, steps, batch, weight_t, bias, beta, threshold, readout_t, readout_bias,
                 decay, out, per_neuron);
}

// The input itself, x (X, T, B, n_in) contiguous. Returns its nonzero entries' count; -1 where some are
// NaN or infinite, else -2 where a (model, sample) ended with a non-finite voltage.
int64_t population_lif_forward_dense(const at::Tensor& x, int64_t input_models, int64_t steps, int64_t batch,
                                     const at::Tensor& weight_t, const std::optional<at::Tensor>& bias, double beta,
                                     double threshold, const at::Tensor& readout_t, const at::Tensor& readout_bias,
                                     double decay, at::Tensor out, const std::optional<at::Tensor>& per_neuron) {
  const PopulationShape shape =
      check_models(input_models, steps, batch, weight_t, bias, threshold, readout_t, readout_bias, out);
  check(x, weight_t, input_models * steps * batch * shape.inputs, "x");
  const auto dense = [&](auto zero, uint64_t* words, int64_t* count, int64_t* nonfinite) {
    using T = decltype(zero);
    return DenseInput<T>{x.const_data_ptr<T>(), shape.inputs, words, words + (shape.inputs + 63) / 64, count,
                         nonfinite};
  };
  int64_t read = 0, nonfinite = 0;
  const int64_t diverged = forward(shape, dense, input_models, steps, batch, weight_t, bias, beta, threshold,
                                   readout_t, readout_bias, decay, out, per_neuron, &read, &nonfinite);
  return nonfinite > 0 ? -1 : diverged > 0 ? -2 : read;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("population_lif_forward(Tensor offsets, Tensor columns, Tensor? values, int input_models, int steps, "
        "int batch, Tensor weight_t, Tensor? bias, float beta, float threshold, Tensor readout_t, "
        "Tensor readout_bias, float decay, Tensor(a!) out, Tensor(b!)? per_neuron) -> int");
  m.def("population_lif_forward_dense(Tensor x, int input_models, int steps, int batch, Tensor weight_t, "
        "Tensor? bias, float beta, float threshold, Tensor readout_t, Tensor readout_bias, float decay, "
        "Tensor(a!) out, Tensor(b!)? per_neuron) -> int");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("population_lif_forward", population_lif_forward);
  m.impl("population_lif_forward_dense", population_lif_forward_dense);
}
