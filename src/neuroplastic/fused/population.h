// What the one-kernel readouts of a population share (population_lif.cpp, population_alif.cpp): the
// readout held in one padded row, and the checks of their common arguments.
#pragma once

#include <ATen/ATen.h>

#include "shared.h"
#include "tile_sums.h"

#include <optional>

namespace {

constexpr int64_t kReadoutLanes = 16;  // readout outputs held in one padded row

template <typename T>
using Lanes = typename Tile<T, 1, kReadoutLanes * sizeof(T)>::vec;  // a readout's padded row (tile_sums.h)

struct PopulationShape {
  int64_t models, inputs, hidden, outputs;
};

// weight_t (M, n_in, H), H = 32 or a multiple of 64; bias (M, H) or none; readout_t (M, H, kReadoutLanes),
// readout_bias (M, kReadoutLanes); out (T, B, M, O), O ≤ kReadoutLanes; the input read by every model
// or one per model (input_models 1 or M).
inline PopulationShape check_models(int64_t input_models, int64_t steps, int64_t batch, const at::Tensor& weight_t,
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
  check(weight_t, weight_t, models * inputs * hidden, "weight_t");
  if (bias) check(*bias, weight_t, models * hidden, "bias");
  check(readout_t, weight_t, models * hidden * kReadoutLanes, "readout_t");
  check(readout_bias, weight_t, models * kReadoutLanes, "readout_bias");
  check(out, weight_t, steps * batch * models * out.size(3), "out");
  return {models, inputs, hidden, out.size(3)};
}

// check_models, the input given as its spikes' index over (X, T, B) rows (offsets/columns/values,
// spike_index), X = input_models.
inline PopulationShape check_population(const at::Tensor& offsets, const at::Tensor& columns,
                                        const std::optional<at::Tensor>& values, int64_t input_models,
                                        int64_t steps, int64_t batch, const at::Tensor& weight_t,
                                        const std::optional<at::Tensor>& bias, double threshold,
                                        const at::Tensor& readout_t, const at::Tensor& readout_bias,
                                        const at::Tensor& out) {
  const PopulationShape shape =
      check_models(input_models, steps, batch, weight_t, bias, threshold, readout_t, readout_bias, out);
  TORCH_CHECK(offsets.dtype() == at::kLong && columns.dtype() == at::kInt && offsets.is_contiguous() &&
                  columns.is_contiguous() && offsets.numel() == input_models * steps * batch + 1,
              "offsets must index the input's (X, T, B) rows");
  if (values) check(*values, weight_t, columns.numel(), "values");
  return shape;
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
