// The recurrent backward's product ĝ^v_{t+1} W computed only where h_t ≠ 0 (alif_recurrent.cpp; the
// reasoning in recurrent.py's docstring), and the test that keeps it to steps where no sum overflows.
#pragma once

#include <ATen/Parallel.h>

#include "shared.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace {

// back = ĝ W for one model's rows (rows × width) where h ≠ 0, zero elsewhere: c_t reaches ĝ^v_t and
// ĝ^a_t only through h_t, which a surrogate of bounded support leaves mostly zero. wt = Wᵀ (W's columns
// as rows); a column's rows that need it go four at a time, sharing each load of its row, every dot
// product summed in kLanes lanes, then across them; rows in blocks of 16, columns split among the threads.
template <typename T>
NP_CLONES void pseudo_rows(int64_t width, int64_t count, const int64_t* need, const T* __restrict__ w,
                           const T* __restrict__ g, T* __restrict__ back, int64_t column) {
  constexpr int64_t kLanes = 16;
  for (int64_t first = 0; first < count; first += 4) {
    const auto row = [&](int64_t r) { return g + need[std::min(first + r, count - 1)] * width; };
    const T *__restrict__ g0 = row(0), *__restrict__ g1 = row(1), *__restrict__ g2 = row(2),
            *__restrict__ g3 = row(3);
    T a0[kLanes] = {}, a1[kLanes] = {}, a2[kLanes] = {}, a3[kLanes] = {};
    int64_t k = 0;
    for (; k + kLanes <= width; k += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) {
        const T wk = w[k + l];
        a0[l] += wk * g0[k + l];
        a1[l] += wk * g1[k + l];
        a2[l] += wk * g2[k + l];
        a3[l] += wk * g3[k + l];
      }
    }
    for (; k < width; ++k) {  // the last width % kLanes terms into the first lane
      a0[0] += w[k] * g0[k];
      a1[0] += w[k] * g1[k];
      a2[0] += w[k] * g2[k];
      a3[0] += w[k] * g3[k];
    }
    const T* lanes[4] = {a0, a1, a2, a3};
    for (int64_t r = 0; r < std::min<int64_t>(4, count - first); ++r) {
      T sum = T(0);
      for (int64_t l = 0; l < kLanes; ++l) sum += lanes[r][l];
      back[need[first + r] * width + column] = sum;
    }
  }
}

template <typename T>
void pseudo_product(int64_t rows, int64_t width, const T* h, const T* g, const T* wt, T* back) {
  constexpr int64_t kBlock = 16;  // rows at a time: their part of ĝ stays in cache while Wᵀ streams by
  for (int64_t first = 0; first < rows; first += kBlock) {
    const int64_t block = std::min(kBlock, rows - first);
    const T* hb = h + first * width;
    T* out = back + first * width;
    at::parallel_for(0, width, 16, [&](int64_t begin, int64_t end) {
      int64_t need[kBlock];
      for (int64_t j = begin; j < end; ++j) {
        int64_t count = 0;
        for (int64_t b = 0; b < block; ++b) {  // no branch: h's zeros fall at random
          out[b * width + j] = T(0);
          need[count] = b;
          count += hb[b * width + j] != T(0);
        }
        pseudo_rows(width, count, need, wt + j * width, g + first * width, out, j);
      }
    });
  }
}

// Whether max|g| · norm stays below the dtype's largest number (false for a NaN or infinity in either);
// in lanes, which the compiler keeps in vector registers.
template <typename T>
NP_CLONES bool bounded(const T* __restrict__ g, int64_t n, double norm) {
  constexpr int64_t kLanes = 16;
  T largest[kLanes] = {};
  int32_t unordered[kLanes] = {};  // NaNs seen, which a comparison would drop
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const T magnitude = std::abs(g[i + l]);
      largest[l] = magnitude > largest[l] ? magnitude : largest[l];
      unordered[l] |= magnitude != magnitude;
    }
  }
  for (; i < n; ++i) {
    const T magnitude = std::abs(g[i]);
    largest[0] = magnitude > largest[0] ? magnitude : largest[0];
    unordered[0] |= magnitude != magnitude;
  }
  T most = T(0);
  for (int64_t l = 0; l < kLanes; ++l) {
    if (unordered[l]) return false;
    most = std::max(most, largest[l]);
  }
  return static_cast<double>(most) * norm < static_cast<double>(std::numeric_limits<T>::max());
}

}  // namespace
