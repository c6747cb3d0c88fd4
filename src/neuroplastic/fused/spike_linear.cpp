// Event-driven products with a spike matrix S (R × n_in), for the synapses I = S Wᵀ (+ b) of a
// layer fed by spikes, and their weight gradient Gᵀ S. Spike-sparse: the work is one row of weights
// per spike instead of a multiply-add per synapse, so at a spike density p it is about p of a dense
// product's additions (and no multiplications for binary spikes; graded spikes, whose entries carry
// a payload, scale each row by it). event_linear.py holds the equations, the dispatch and the tests'
// references; this file is the loops.
//
//   spike_index:            the spikes (nonzero entries) of every row as a list of its columns (CSR:
//                           offsets, columns) and, where an entry is not 1, their values (else none);
//                           only counted, not listed, if there are more than max_count.
//   spike_index_transpose:  the same spikes by column (for every column, its rows; values moved along).
//   spike_sum:              out[r, :] = init + Σ_{j ∈ row r} s_rj m[j, :]   (forward: m = Wᵀ)
//   spike_sum_packed:       gt[j, :] = Σ_{r ∈ column j} s_rj g[r, :]      (weight gradient (dL/dW)ᵀ)
// (s_rj = 1 for binary spikes.)
//
// Internal ops: the last three trust the index spike_index (and spike_index_transpose) made; they
// check shapes and dtypes, not the indices themselves.
// Each output is a fixed number of partial sums in a fixed order (a row's spikes by column, a
// column's by row), whatever the batching of the rows: a step-by-step caller of spike_sum gets the
// bits of a whole sequence. The sums over a tile of output columns stay in registers, in vectors of the
// machine's register width (register_bytes in shared.h; a column's sums are the same whatever it is): the
// functions that run them are compiled once per width, for its instruction set (AVX-512, AVX2, plain
// x86-64: InWidth), and the one of this machine runs, since the build cache may be shared by machines.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "shared.h"
#include "tile_sums.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

namespace {

// Tile sizes, tuned on the standard workload (n_in = n_out = 512, 8000 rows, 2 cores; BENCHMARKS.md), in
// vectors of the machine's register width (register_bytes, shared.h).
constexpr int64_t kOutLanes = 8;     // forward: 8 vectors (128 floats in AVX-512) of an output row, one sum each
constexpr int64_t kGradBytes = 128;  // weight gradient: 128 bytes of columns (32 floats), 4 partial sums each,
constexpr int64_t kGradRows = 256;   // from kGradRows rows of G packed together (32 KB in float32)
constexpr int64_t kRowBlock = 16;  // output rows per pass over a column tile (its rows stay in cache)

template <typename scalar_t, int64_t kBytes>
using GradientTile = Tile<scalar_t, kGradBytes / kBytes, kBytes>;  // the weight gradient's columns

// Rows [begin, end) of s (n columns) as bit masks, ⌈n / 64⌉ words a row (row_bits, in the vectors of the
// machine's registers), their nonzero entries counted into off[r + 1], `graded` set where some entry is
// neither 0 nor 1. Then each row listed from its masks (list_rows) without reading it again. The
// branch-free loop over every entry before, each write's place waiting for the last one's, and its count
// took 0.67 ms over digits' test split (15% spikes, 10,800 rows of 64; family 25 model 17); the rows read
// into masks for the count and again for the list, 0.25; read once, the masks kept, 0.19.
template <typename scalar_t, int64_t kBytes>
NP_CLONES void mask_rows(const scalar_t* s, int64_t n, int64_t begin, int64_t end, uint64_t* __restrict__ masks,
                         int64_t* __restrict__ off, char* graded) {
  const int64_t words = (n + 63) / 64;
  std::vector<uint64_t> other(words);
  for (int64_t r = begin; r < end; ++r) {
    off[r + 1] = row_bits<kBytes>(s + r * n, n, masks + r * words, other.data());
    for (int64_t w = 0; w < words; ++w) *graded |= other[w] != 0;
  }
}

// The columns of rows [begin, end) from their masks, at off[r]; their values where val is not null.
template <typename scalar_t>
void list_rows(const scalar_t* s, int64_t n, int64_t begin, int64_t end, const uint64_t* masks, const int64_t* off,
               int32_t* __restrict__ col, scalar_t* __restrict__ val) {
  const int64_t words = (n + 63) / 64;
  for (int64_t r = begin; r < end; ++r) {
    int32_t* at = col + off[r];
    for (int64_t w = 0; w < words; ++w)
      for_each_bit(masks[r * words + w], 64 * w, [&](int64_t j) { *at++ = int32_t(j); });
    for (int64_t k = off[r]; val != nullptr && k < off[r + 1]; ++k) val[k] = s[r * n + col[k]];
  }
}

template <typename scalar_t>
int64_t index_spikes(const at::Tensor& spikes, int64_t max_count, at::Tensor& offsets, at::Tensor& columns,
                     at::Tensor& values) {
  const int64_t rows = spikes.size(0), n = spikes.size(1);
  const scalar_t* s = spikes.data_ptr<scalar_t>();
  offsets.resize_({rows + 1});
  int64_t* off = offsets.data_ptr<int64_t>();
  // every word written by mask_rows before it is read: not zeroed first (cue's batch: 4.6 MB)
  const std::unique_ptr<uint64_t[]> masks(new uint64_t[rows * ((n + 63) / 64)]);
  std::vector<char> graded_parts(at::get_num_threads() + 1, 0);  // per thread: a row not binary?
  with_register_bytes([&](auto bytes) {
    at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
      mask_rows<scalar_t, decltype(bytes)::value>(s, n, begin, end, masks.get(), off,
                                                  &graded_parts[at::get_thread_num()]);
    });
  });
  const bool graded = std::find(graded_parts.begin(), graded_parts.end(), 1) != graded_parts.end();
  off[0] = 0;
  for (int64_t r = 0; r < rows; ++r) off[r + 1] += off[r];
  if (off[rows] > max_count) return off[rows];
  columns.resize_({off[rows]});
  values.resize_({graded ? off[rows] : 0});
  int32_t* col = columns.data_ptr<int32_t>();
  scalar_t* val = graded ? values.data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    list_rows(s, n, begin, end, masks.get(), off, col, val);
  });
  return off[rows];
}

// The same spikes by column within blocks of kGradRows rows: key (block, column) lists its rows in
// increasing order, counted from the block's first row. Threads own blocks.
template <typename scalar_t>
void transpose_index(const at::Tensor& offsets, const at::Tensor& columns, const scalar_t* val, int64_t n,
                     at::Tensor& t_offsets, at::Tensor& t_rows, scalar_t* t_val) {
  const int64_t rows = offsets.numel() - 1, nnz = columns.numel();
  const int64_t blocks = (rows + kGradRows - 1) / kGradRows;
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int32_t* col = columns.data_ptr<int32_t>();
  t_offsets.resize_({blocks * n + 1});
  t_rows.resize_({nnz});
  int64_t* t_off = t_offsets.data_ptr<int64_t>();
  int32_t* t_row = t_rows.data_ptr<int32_t>();
  std::fill(t_off, t_off + blocks * n + 1, 0);
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t k = off[b * kGradRows]; k < off[std::min(rows, (b + 1) * kGradRows)]; ++k) {
        ++t_off[b * n + col[k] + 1];
      }
    }
  });
  for (int64_t key = 0; key < blocks * n; ++key) t_off[key + 1] += t_off[key];
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      std::vector<int64_t> next(t_off + b * n, t_off + (b + 1) * n);
      for (int64_t r = b * kGradRows; r < std::min(rows, (b + 1) * kGradRows); ++r) {
        for (int64_t k = off[r]; k < off[r + 1]; ++k) {
          if (val) t_val[next[col[k]]] = val[k];
          t_row[next[col[k]]++] = static_cast<int32_t>(r - b * kGradRows);
        }
      }
    }
  });
}


// Rows [r0, r1) of one column tile (m, init and out start at its first column).
template <typename scalar_t, bool kWeighted, int64_t kBytes>
inline void sum_row_block(const scalar_t* m, int64_t ld, const int64_t* off, const int32_t* ix,
                             const scalar_t* w, int64_t r0, int64_t r1, const scalar_t* init, scalar_t* out,
                             int64_t width) {
  for (int64_t r = r0; r < r1; ++r) {
    sum_rows<scalar_t, kOutLanes, 1, kWeighted, kBytes>(m, ld, ix + off[r], kWeighted ? w + off[r] : nullptr,
                                                        off[r + 1] - off[r], init, out + r * ld, width);
  }
}

// out[r, :] = init + Σ_{k ∈ row r} w[k] m[idx[k], :] for every row r of (offsets, idx) (w: 1 if none).
template <typename scalar_t>
void sum_selected(const at::Tensor& offsets, const at::Tensor& idx, const scalar_t* w, const at::Tensor& m,
                  const std::optional<at::Tensor>& init, at::Tensor& out) {
  const int64_t rows = out.size(0), n_out = out.size(1);
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int32_t* ix = idx.data_ptr<int32_t>();
  const scalar_t* mp = m.data_ptr<scalar_t>();
  const scalar_t* b = init ? init->data_ptr<scalar_t>() : nullptr;
  scalar_t* o = out.data_ptr<scalar_t>();
  with_register_bytes([&](auto bytes) {
    constexpr int64_t kBytes = decltype(bytes)::value, tile = Tile<scalar_t, kOutLanes, kBytes>::width;
    at::parallel_for(0, rows, kRowBlock, [&](int64_t begin, int64_t end) {
      for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
        for (int64_t c0 = 0; c0 < n_out; c0 += tile) {
          const int64_t r1 = std::min(end, r0 + kRowBlock), width = std::min(tile, n_out - c0);
          const scalar_t* tile_init = b ? b + c0 : nullptr;
          InWidth<kBytes>::run([&] {
            if (w) {
              sum_row_block<scalar_t, true, kBytes>(mp + c0, n_out, off, ix, w, r0, r1, tile_init, o + c0, width);
            } else {
              sum_row_block<scalar_t, false, kBytes>(mp + c0, n_out, off, ix, w, r0, r1, tile_init, o + c0, width);
            }
          });
        }
      }
    });
  });
}

// gt[j, tile] (+)= Σ_{r ∈ key j of the block} w_r packed[r] for every column j (gt starts at the tile).
template <typename scalar_t, bool kWeighted, int64_t kBytes>
inline void add_column_block(const scalar_t* packed, const int64_t* off, const int32_t* ix, const scalar_t* w,
                                int64_t n_in, bool first, scalar_t* gt, int64_t ld, int64_t width) {
  constexpr int64_t lanes = kGradBytes / kBytes, tile = GradientTile<scalar_t, kBytes>::width;
  for (int64_t j = 0; j < n_in; ++j) {
    scalar_t* out = gt + j * ld;
    sum_rows<scalar_t, lanes, 4, kWeighted, kBytes>(packed, tile, ix + off[j], kWeighted ? w + off[j] : nullptr,
                                                    off[j + 1] - off[j], first ? nullptr : out, out, width);
  }
}

// gt[j, :] = Σ_{r ∈ column j} g[r, :] for every column j, from the blocked index of
// transpose_index: a tile of kGradBytes of g's columns at a time, kGradRows rows of it
// packed into a buffer that stays in the L1 cache while every column sums its spikes' rows from it (in
// registers) and adds that to its running sum in gt. Threads own tiles.
template <typename scalar_t>
void sum_selected_packed(const at::Tensor& t_offsets, const at::Tensor& t_rows, const scalar_t* w,
                         const at::Tensor& g, at::Tensor& gt) {
  const int64_t rows = g.size(0), n_out = g.size(1), n_in = gt.size(0);
  const int64_t blocks = (rows + kGradRows - 1) / kGradRows;
  const int64_t* off = t_offsets.data_ptr<int64_t>();
  const int32_t* ix = t_rows.data_ptr<int32_t>();
  const scalar_t* gp = g.data_ptr<scalar_t>();
  scalar_t* o = gt.data_ptr<scalar_t>();
  with_register_bytes([&](auto bytes) {
    constexpr int64_t kBytes = decltype(bytes)::value, tile = GradientTile<scalar_t, kBytes>::width;
    const int64_t tiles = (n_out + tile - 1) / tile;
    at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> packed(kGradRows * tile);
      for (int64_t t = begin; t < end; ++t) {
        const int64_t c0 = t * tile, width = std::min(tile, n_out - c0);
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t r0 = b * kGradRows, r1 = std::min(rows, r0 + kGradRows);
          for (int64_t r = r0; r < r1; ++r) {
            std::copy(gp + r * n_out + c0, gp + r * n_out + c0 + width, &packed[(r - r0) * tile]);
          }
          const int64_t* block_off = off + b * n_in;
          InWidth<kBytes>::run([&] {
            if (w) {
              add_column_block<scalar_t, true, kBytes>(packed.data(), block_off, ix, w, n_in, b == 0, o + c0, n_out,
                                                       width);
            } else {
              add_column_block<scalar_t, false, kBytes>(packed.data(), block_off, ix, w, n_in, b == 0, o + c0,
                                                        n_out, width);
            }
          });
        }
      }
    });
  });
}

void check_matrix(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2 && t.is_contiguous() && t.device().is_cpu(),
              name, " must be a contiguous 2-d CPU tensor");
}

void check_index(const at::Tensor& offsets, const at::Tensor& idx) {
  TORCH_CHECK(offsets.dim() == 1 && offsets.scalar_type() == at::kLong && offsets.is_contiguous(),
              "offsets must be a contiguous int64 vector");
  TORCH_CHECK(idx.dim() == 1 && idx.scalar_type() == at::kInt && idx.is_contiguous(),
              "indices must be a contiguous int32 vector");
}

// The values of an index: none (binary spikes) or one per spike, of the matrix's dtype.
template <typename scalar_t>
const scalar_t* values_of(const std::optional<at::Tensor>& values, int64_t count) {
  if (!values || values->numel() == 0) return nullptr;
  TORCH_CHECK(values->dim() == 1 && values->is_contiguous() && values->numel() == count,
              "values must be a contiguous vector of one value per spike");
  return values->data_ptr<scalar_t>();
}

int64_t spike_index(const at::Tensor& spikes, int64_t max_count, at::Tensor offsets, at::Tensor columns,
                    at::Tensor values) {
  check_matrix(spikes, "spikes");
  TORCH_CHECK(spikes.size(1) <= INT32_MAX, "spikes: too many columns to index");  // rows: int64
  TORCH_CHECK(values.scalar_type() == spikes.scalar_type(), "spike_index: values must have the spikes' dtype");
  int64_t count = 0;
  AT_DISPATCH_FLOATING_TYPES(spikes.scalar_type(), "spike_index", [&] {
    count = index_spikes<scalar_t>(spikes, max_count, offsets, columns, values);
  });
  return count;
}

void spike_index_transpose(const at::Tensor& offsets, const at::Tensor& columns, const std::optional<at::Tensor>& values,
                           int64_t n, at::Tensor t_offsets, at::Tensor t_rows, at::Tensor t_values) {
  check_index(offsets, columns);
  AT_DISPATCH_FLOATING_TYPES(t_values.scalar_type(), "spike_index_transpose", [&] {
    const scalar_t* val = values_of<scalar_t>(values, columns.numel());
    if (val) TORCH_CHECK(values->scalar_type() == t_values.scalar_type(), "spike_index_transpose: dtypes disagree");
    t_values.resize_({val ? columns.numel() : 0});
    transpose_index<scalar_t>(offsets, columns, val, n, t_offsets, t_rows, val ? t_values.data_ptr<scalar_t>() : nullptr);
  });
}

void spike_sum(const at::Tensor& offsets, const at::Tensor& idx, const std::optional<at::Tensor>& values,
               const at::Tensor& m, const std::optional<at::Tensor>& init, at::Tensor out) {
  check_index(offsets, idx);
  check_matrix(m, "m");
  check_matrix(out, "out");
  TORCH_CHECK(m.size(1) == out.size(1) && offsets.numel() == out.size(0) + 1 &&
                  m.scalar_type() == out.scalar_type(), "spike_sum: shapes or dtypes disagree");
  TORCH_CHECK(!init || (init->is_contiguous() && init->numel() == out.size(1) &&
                        init->scalar_type() == out.scalar_type()), "spike_sum: init must be (n_out,)");
  TORCH_CHECK(!values || values->scalar_type() == out.scalar_type(), "spike_sum: values must have m's dtype");
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "spike_sum", [&] {
    sum_selected<scalar_t>(offsets, idx, values_of<scalar_t>(values, idx.numel()), m, init, out);
  });
}

void spike_sum_packed(const at::Tensor& t_offsets, const at::Tensor& t_rows, const std::optional<at::Tensor>& t_values,
                      const at::Tensor& g, at::Tensor gt) {
  check_index(t_offsets, t_rows);
  check_matrix(g, "g");
  check_matrix(gt, "gt");
  const int64_t blocks = (g.size(0) + kGradRows - 1) / kGradRows;
  TORCH_CHECK(g.size(1) == gt.size(1) && t_offsets.numel() == blocks * gt.size(0) + 1 &&
                  g.scalar_type() == gt.scalar_type(), "spike_sum_packed: shapes or dtypes disagree");
  TORCH_CHECK(!t_values || t_values->scalar_type() == g.scalar_type(), "spike_sum_packed: values must have g's dtype");
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "spike_sum_packed", [&] {
    sum_selected_packed<scalar_t>(t_offsets, t_rows, values_of<scalar_t>(t_values, t_rows.numel()), g, gt);
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(neuroplastic_fused, m) {
  m.def("register_bytes() -> int", &register_bytes);  // the tiles' width here: extension.instruction_set
  m.def("spike_index(Tensor spikes, int max_count, Tensor(a!) offsets, Tensor(b!) columns, Tensor(c!) values) -> int");
  m.def("spike_index_transpose(Tensor offsets, Tensor columns, Tensor? values, int n, Tensor(a!) t_offsets, "
        "Tensor(b!) t_rows, Tensor(c!) t_values) -> ()");
  m.def("spike_sum_packed(Tensor t_offsets, Tensor t_rows, Tensor? t_values, Tensor g, Tensor(a!) gt) -> ()");
  m.def("spike_sum(Tensor offsets, Tensor idx, Tensor? values, Tensor m, Tensor? init, Tensor(a!) out) -> ()");
}

TORCH_LIBRARY_IMPL(neuroplastic_fused, CPU, m) {
  m.impl("spike_index", spike_index);
  m.impl("spike_index_transpose", spike_index_transpose);
  m.impl("spike_sum", spike_sum);
  m.impl("spike_sum_packed", spike_sum_packed);
}
