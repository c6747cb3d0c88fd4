// Many small linear maps at once, summing only the nonzero inputs (population.py's models, each its
// own weight): for x (A, G or 1, C, K), weight_t (G, K, O) and bias (G, O) or none,
//
//   out[a, g, c, o] = bias[g, o] + Σ_k x[a, g, c, k] · weight_t[g, k, o]     (x's group 0 if it has one),
//
// the terms added in the order of k, the zeros of x skipped (spikes: a few % of the inputs). Forward
// only, without a graph: event_linear.grouped_linear runs it where no gradient is asked for.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "shared.h"

#include <algorithm>
#include <optional>

namespace {

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
  check(out, x, outer * groups * inner * outputs, "out");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "grouped_linear", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    const scalar_t* w = weight_t.const_data_ptr<scalar_t>();
    const scalar_t* b = bias ? bias->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const int64_t rows = outer * groups * inner;
    at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(inputs, 1)),
                     [&](int64_t begin, int64_t end) {
      int64_t a = begin / (groups * inner), g = begin / inner % groups, c = begin % inner;
      for (int64_t row = begin; row < end; ++row, ++c) {
        if (c == inner) {
          c = 0;
          if (++g == groups) g = 0, ++a;
        }
        const scalar_t* x_row = in + ((a * x_groups + (x_groups == 1 ? 0 : g)) * inner + c) * inputs;
        grouped_row(inputs, outputs, x_row, w + g * inputs * outputs, b ? b + g * outputs : nullptr,
                    o + row * outputs);
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
