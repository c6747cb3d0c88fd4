// The sums of spike_linear.cpp's kernels over a tile of output columns, held in vector registers:
// out = init + Σ_k w[k] m[idx[k]] for a row's (or a column's) listed spikes, in a fixed order of
// additions whatever the tile's width (so that the bits of a column do not depend on where a tile
// ends). Inlined into their callers (InWidth's, shared.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace {

// A tile of kLanes vectors of kBytes bytes (64: kLanes × 16 floats or × 8 doubles), summed in registers;
// kBytes the machine's register width (register_bytes, shared.h).
template <typename scalar_t, int64_t kLanes, int64_t kBytes>
struct Tile {
  typedef scalar_t vec __attribute__((vector_size(kBytes)));
  static constexpr int64_t per_vec = kBytes / sizeof(scalar_t);
  static constexpr int64_t width = kLanes * per_vec;
};

// out[0:width] = init + Σ_k w[k] m[idx[k]·ld : +width] (w[k] = 1 where kWeighted is false), for width =
// kLanes vectors: kSums partial sums (k mod kSums), so that consecutive additions do not wait for each
// other, added pairwise at the end.
template <typename scalar_t, int64_t kLanes, int64_t kSums, bool kWeighted, int64_t kBytes>
inline __attribute__((always_inline)) void sum_vectors(const scalar_t* m, int64_t ld, const int32_t* idx,
                                                       const scalar_t* w, int64_t count, const scalar_t* init,
                                                       scalar_t* out) {
  using T = Tile<scalar_t, kLanes, kBytes>;
  using vec = typename T::vec;
  vec sums[kSums][kLanes] = {}, v;
  int64_t k = 0;
  for (; k + kSums <= count; k += kSums) {
    for (int64_t s = 0; s < kSums; ++s) {
      const scalar_t* row = m + idx[k + s] * ld;
      for (int64_t l = 0; l < kLanes; ++l) {
        std::memcpy(&v, row + l * T::per_vec, sizeof(vec));
        if constexpr (kWeighted) v *= w[k + s];
        sums[s][l] += v;
      }
    }
  }
  for (int64_t s = 0; k < count; ++k, ++s) {
    for (int64_t l = 0; l < kLanes; ++l) {
      std::memcpy(&v, m + idx[k] * ld + l * T::per_vec, sizeof(vec));
      if constexpr (kWeighted) v *= w[k];
      sums[s][l] += v;
    }
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    for (int64_t half = kSums / 2; half > 0; half /= 2) {
      for (int64_t s = 0; s < half; ++s) sums[s][l] += sums[s + half][l];
    }
    v = vec{};
    if (init) std::memcpy(&v, init + l * T::per_vec, sizeof(vec));
    v += sums[0][l];
    std::memcpy(out + l * T::per_vec, &v, sizeof(vec));
  }
}

// The same sums for any width ≤ the tile's (kLanes vectors): the whole vectors it holds by sum_vectors
// (a tile narrowed to them: a layer of 100 outputs is 6 vectors of 16 floats and 4 floats), the
// columns beyond one at a time — each column summed in the same order either way, so that the bits do
// not depend on where a tile's edge falls.
template <typename scalar_t, int64_t kLanes, int64_t kSums, bool kWeighted, int64_t kBytes>
inline __attribute__((always_inline)) void sum_rows(const scalar_t* m, int64_t ld, const int32_t* idx,
                                                    const scalar_t* w, int64_t count, const scalar_t* init,
                                                    scalar_t* out, int64_t width) {
  constexpr int64_t per_vec = Tile<scalar_t, 1, kBytes>::per_vec;
  if constexpr (kLanes > 0) {
    if (width >= kLanes * per_vec) {
      sum_vectors<scalar_t, kLanes, kSums, kWeighted, kBytes>(m, ld, idx, w, count, init, out);
      const int64_t done = kLanes * per_vec;
      if (width > done)
        sum_rows<scalar_t, 0, kSums, kWeighted, kBytes>(m + done, ld, idx, w, count,
                                                        init ? init + done : nullptr, out + done, width - done);
    } else {
      sum_rows<scalar_t, kLanes - 1, kSums, kWeighted, kBytes>(m, ld, idx, w, count, init, out, width);
    }
    return;
  }
  for (int64_t c = 0; c < width; ++c) {  // one column at a time
    scalar_t sums[kSums] = {};
    for (int64_t k = 0; k < count; ++k) sums[k % kSums] += kWeighted ? w[k] * m[idx[k] * ld + c] : m[idx[k] * ld + c];
    for (int64_t half = kSums / 2; half > 0; half /= 2) {
      for (int64_t s = 0; s < half; ++s) sums[s] += sums[s + half];
    }
    out[c] = (init ? init[c] : scalar_t(0)) + sums[0];
  }
}

}  // namespace
