"""The spikes' index (``spike_index``, read 64 entries at a time into bit masks) lists every nonzero
entry of every row, in order, as ``torch.nonzero`` finds them; their values where some are not 1; only
a count beyond its limit."""
import pytest
import torch

from neuroplastic.fused import backend, event_linear

pytestmark = pytest.mark.skipif(backend() != "cpp", reason="the index is a C++ kernel")


def expected_index(x):
    rows, columns = torch.nonzero(x, as_tuple=True)
    offsets = torch.zeros(x.shape[0] + 1, dtype=torch.int64)
    offsets[1:] = torch.bincount(rows, minlength=x.shape[0]).cumsum(0)
    return offsets, columns.to(torch.int32), x[rows, columns]


# columns: fewer than a word, a word less one, one word, a word and a bit, words and a tail
@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("graded", [False, True])
def test_the_index_lists_every_nonzero_entry_in_order(n, dtype, graded):
    generator = torch.Generator().manual_seed(n)
    x = (torch.rand(70, n, generator=generator) < 0.3).to(dtype)
    x[3] = 1  # a full row
    x[5] = 0  # an empty one
    if graded:
        x = x * torch.randint(-3, 4, x.shape, generator=generator).to(dtype) / 2  # payloads, some 1, some 0
    count, offsets, columns, values = event_linear._indexed(x, x.numel())
    want_offsets, want_columns, want_values = expected_index(x)
    assert count == int(want_offsets[-1])
    assert torch.equal(offsets, want_offsets) and torch.equal(columns, want_columns)
    binary = bool(((x == 0) | (x == 1)).all())
    assert torch.equal(values, x.new_empty(0) if binary else want_values)


def test_nan_and_infinity_are_events_with_their_values_and_a_count_beyond_the_limit_lists_nothing():
    x = torch.zeros(4, 130)
    x[0, 0], x[1, 64], x[2, 129], x[3, 70] = float("nan"), float("inf"), 1.0, 1.0
    count, offsets, columns, values = event_linear._indexed(x, x.numel())
    assert count == 4 and offsets.tolist() == [0, 1, 2, 3, 4] and columns.tolist() == [0, 64, 129, 70]
    assert values[0].isnan() and values[1] == float("inf") and values[2:].tolist() == [1.0, 1.0]
    count, offsets, columns, values = event_linear._indexed(x, 3)
    assert count == 4 and columns.numel() == 0
