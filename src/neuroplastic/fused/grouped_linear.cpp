// Many small linear maps at once, summing only the nonzero inputs (population.py's models, each its
// own weight): for x (A, G or 1, C, K), weight_t (G, K, O) and bias (G, O) or none,
//
//   out[a, g, c, o] = bias[g, o] + Σ_k x[a, g, c, k] · weight_t[g, k, o]     (x's group 0 if it has one),
//
// the terms added in the order of k, the zeros of x skipped (spikes: a few % of the inputs). Forward
// only, without a graph: event_linear.grouped_linear runs it where no gradient is asked for. out may be
// the slice of a larger (A, G', C, O) buffer along its groups (the chunks of a population's readout
// written where they are joined): its rows of groups are then G'·C·O apart.
//
// Up to kLanes outputs (a readout: 10 classes) the weights are first copied into rows of kLanes, zero
// padded, so that each row's sums are held in one or two vector registers of a fixed width: with O as
// the loop's bound, a row of a few spikes spent most of its time in the loop's scalar remainder.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "shared.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace {

constexpr int64_t kLanes = 16;

template <typename T>
NP_CLONES void grouped_row(int64_t inputs, int64_t outputs, const T* __restrict__ x,
                           const T* __restrict__ weight_t, const T* __restrict__ bias, T* __restrict__ out) {
  if (bias != nullptr) std::copy(bias, bias + outputs, out);
  else std::fill(out, out + outputs, T(0));
  for_each_nonzero(inputs, x, [&](int64_t k) {
    const T value = x[k];
    const T* w = weight_t + k * outputs;
    for (int64_t o = 0; o < outputs; ++o) out[o] += value * w[o];
  });
}

// The same for outputs ≤ kLanes: weight rows and bias of kLanes (padded), sums in a fixed-width array.
template <typename T>
NP_CLONES void grouped_row_narrow(int64_t inputs, int64_t outputs, const T* __restrict__ x,
                                  const T* __restrict__ padded_weight, const T* __restrict__ padded_bias,
                                  T* __restrict__ out) {
  T sums[kLanes];
  for (int64_t o = 0; o < kLanes; ++o) sums[o] = padded_bias[o];
  for_each_nonzero(inputs, x, [&](int64_t k) {
    const T value = x[k];
    const T* w = padded_weight + k * kLanes;
    for (int64_t o = 0; o < kLanes; ++o) sums[o] += value * w[o];
  });
  std::copy(sums, sums + outputs, out);
}

void grouped_linear(const at::Tensor& x, const at::Tensor& weight_t, const std::optional<at::Tensor>& bias,
                    at::Tensor out) {
  TORCH_CHECK(x.dim() == 4 && weight_t.dim() == 3, "x must be (A, G, C, K) and weight_t (G, K, O)");
  const int64_t outer = x.size(0), groups = weight_t.size(0), inner = x.size(2), inputs = x.size(3),
                outputs = weight_t.size(2);
  TORCH_CHECK(x.size(1) == groups || x.size(1) == 1, "x must have one group or as many as weight_t");
  TORCH_CHECK(weight_t.size(1) == inputs, "weight_t must be (G, K, O) with x's K");
  const int64_t x_groups = x.size(1);
  check(x, x, outer * x_groups * inner * inputs, "x");
  check(weight_t, x, groups * inputs * outputs, "weight_t");
  if (bias) check(*bias, x, groups * outputs, "bias");
  TORCH_CHECK(out.device().is_cpu() && out.scalar_type() == x.scalar_type() && out.dim() == 4 &&
              out.size(0) == outer && out.size(1) == groups && out.size(2) == inner && out.size(3) == outputs,
              "out must be a CPU tensor (A, G, C, O) of x's dtype");
  const auto laid_out = [&](int64_t dim, int64_t stride) { return out.size(dim) <= 1 || out.stride(dim) == stride; };
  TORCH_CHECK(out.numel() == 0 || (laid_out(3, 1) && laid_out(2, outputs) && laid_out(1, inner * outputs) &&
                                   (outer <= 1 || out.stride(0) >= groups * inner * outputs)),
              "out must be contiguous or a slice of contiguous memory along its groups");
  const int64_t out_stride = outer <= 1 ? 0 : out.stride(0);
  const bool narrow = outputs <= kLanes &&  // the padded copy within 64 MB
                      groups * inputs * kLanes * int64_t(x.element_size()) <= (int64_t(1) << 26);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "grouped_linear", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    const scalar_t* w = weight_t.const_data_ptr<scalar_t>();
    const scalar_t* b = bias ? bias->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const int64_t rows = outer * groups * inner;
    std::vector<scalar_t> padded_weight, padded_bias;
    if (narrow) {  // (G, K, kLanes) and (G, kLanes), zeros beyond O
      padded_weight.assign(groups * inputs * kLanes, scalar_t(0));
      padded_bias.assign(groups * kLanes, scalar_t(0));
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t k = 0; k < inputs; ++k)
          std::copy_n(w + (g * inputs + k) * outputs, outputs, padded_weight.data() + (g * inputs + k) * kLanes);
        if (b) std::copy_n(b + g * outputs, outputs, padded_bias.data() + g * kLanes);
      }
    }
    at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(inputs, 1)),
                     [&](int64_t begin, int64_t end) {
      int64_t a = begin / (groups * inner), g = begin / inner % groups, c = begin % inner;
      for (int64_t row = begin; row < end; ++row, ++c) {
        if (c == inner) {
          c = 0;
          if (++g == groups) g = 0, ++a;
        }
        const scalar_t* x_row = in + ((a * x_groups + (x_groups == 1 ? 0 : g)) * inner + c) * inputs;
        scalar_t* out_row = o + a * out_stride + (g * inner + c) * outputs;
        if (narrow)
          grouped_row_narrow(inputs, outputs, x_row, padded_weight.data() + g * inputs * kLanes,
                             padded_bias.data() + g * kLanes, out_row);
        else
          grouped_row(inputs, outputs, x_row, w + g * inputs * outputs, b ? b + g * outputs : nullptr, out_row);
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("grouped_linear(Tensor x, Tensor weight_t, Tensor? bias, Tensor(a!) out) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("grouped_linear", grouped_linear);
}
