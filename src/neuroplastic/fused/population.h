// What the one-kernel readouts of a population share (population_lif.cpp, population_alif.cpp): the
// readout held in one padded row, and the checks of their common arguments.
#pragma once

#include <ATen/ATen.h>

#include "shared.h"
#include "tile_sums.h"

#include <cstring>
#include <optional>

namespace {

constexpr int64_t kReadoutLanes = 16;  // readout outputs held in one padded row

// A readout's padded row, kReadoutLanes values in vectors of kBytes bytes (the register width of the clone
// that runs, shared.h): one 64-byte vector of 16 floats, compiled for AVX2, was split in two and kept on
// the stack (digits' evaluation kernel 2.8 → 4.8 ms in an AVX2-only build).
template <typename T, int64_t kBytes>
struct ReadoutRow {
  using vec = typename Tile<T, 1, kBytes>::vec;
  static constexpr int64_t per_vec = Tile<T, 1, kBytes>::per_vec, vectors = kReadoutLanes / per_vec;
  vec lanes[vectors];

  static ReadoutRow from(const T* row) {
    ReadoutRow r;
    std::memcpy(r.lanes, row, sizeof(r.lanes));
    return r;
  }
  void add(const T* row) {  // += row (kReadoutLanes values)
    vec loaded;
    for (int64_t l = 0; l < vectors; ++l) {
      std::memcpy(&loaded, row + l * per_vec, sizeof(vec));
      lanes[l] += loaded;
    }
  }
  void leak(T decay, const ReadoutRow& r) {  // = decay · this + r
    for (int64_t l = 0; l < vectors; ++l) lanes[l] = decay * lanes[l] + r.lanes[l];
  }
  void store(T* out, int64_t outputs) const {  // the first `outputs` values
    T values[kReadoutLanes];
    std::memcpy(values, lanes, sizeof(values));
    for (int64_t o = 0; o < outputs; ++o) out[o] = values[o];
  }
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

struct PopulationShape {
  int64_t models, inputs, hidden, outputs;
};

// offsets/columns/values: the input spikes' index over (X, T, B) rows, X = input_models (1: every model
// reads them, or M); weight_t (M, n_in, H), H = 32 or a multiple of 64; bias (M, H) or none; readout_t
// (M, H, kReadoutLanes), readout_bias (M, kReadoutLanes); out (T, B, M, O), O ≤ kReadoutLanes.
inline PopulationShape check_population(const at::Tensor& offsets, const at::Tensor& columns,
                                        const std::optional<at::Tensor>& values, int64_t input_models,
                                        int64_t steps, int64_t batch, const at::Tensor& weight_t,
                                        const std::optional<at::Tensor>& bias, double threshold,
                                        const at::Tensor& readout_t, const at::Tensor& readout_bias,
                                        const at::Tensor& out) {
  TORCH_CHECK(weight_t.dim() == 3 && (weight_t.size(2) == 32 || weight_t.size(2) % 64 == 0),
              "weight_t must be (M, n_in, H), H padded to 32 or a multiple of 64");
  const int64_t models = weight_t.size(0), inputs = weight_t.size(1), hidden = weight_t.size(2);
  TORCH_CHECK(out.dim() == 4 && out.size(0) == steps && out.size(1) == batch && out.size(2) == models &&
                  out.size(3) <= kReadoutLanes, "out must be (T, B, M, O), O <= ", kReadoutLanes);
  TORCH_CHECK(threshold > 0, "the padded neurons need a positive threshold");
  TORCH_CHECK(input_models == 1 || input_models == models, "the input is read by every model or one per model");
  TORCH_CHECK(offsets.dtype() == at::kLong && columns.dtype() == at::kInt && offsets.is_contiguous() &&
                  columns.is_contiguous() && offsets.numel() == input_models * steps * batch + 1,
              "offsets must index the input's (X, T, B) rows");
  check(weight_t, weight_t, models * inputs * hidden, "weight_t");
  if (bias) check(*bias, weight_t, models * hidden, "bias");
  check(readout_t, weight_t, models * hidden * kReadoutLanes, "readout_t");
  check(readout_bias, weight_t, models * kReadoutLanes, "readout_bias");
  check(out, weight_t, steps * batch * models * out.size(3), "out");
  if (values) check(*values, weight_t, columns.numel(), "values");
  return {models, inputs, hidden, out.size(3)};
}

// per_neuron, (B, M, 2, H) int32 or none, for the kernels to count each neuron's spikes, then its spike of
// the last step; zeroed here where `zeroed` (else each item zeroes its own counts as it starts); its data,
// or null.
inline int32_t* neuron_counts(const std::optional<at::Tensor>& per_neuron, int64_t numel, bool zeroed = true) {
  if (!per_neuron) return nullptr;
  TORCH_CHECK(per_neuron->dtype() == at::kInt && per_neuron->is_contiguous() && per_neuron->numel() == numel,
              "per_neuron must be int32 (B, M, 2, H)");
  if (zeroed) per_neuron->zero_();
  return per_neuron->mutable_data_ptr<int32_t>();
}

}  // namespace
