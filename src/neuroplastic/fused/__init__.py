"""Fused fast paths: equivalent forms of the step path, tested equal to it (``docs/design.md``).

:func:`lif_sequence` runs a feed-forward leaky integrate-and-fire layer over a whole sequence in one
pass forward and one backward, after its input currents for all steps came from one matrix product.
:func:`spike_linear` computes a layer's synaptic currents event by event where its input is spikes;
:func:`linear_lif_sequence` is the two as one operation, which reuses the currents' memory.
:func:`backend` says whether the C++ kernel (built on first use) or the PyTorch fallback runs it;
the environment variable ``NEUROPLASTIC_FUSED`` (``auto``, ``torch``, ``cpp``) overrides the choice.
The kernels are compiled for AVX-512, AVX2 and plain x86-64, and the loader picks one per machine;
``NEUROPLASTIC_ISA`` (``avx512f``, ``avx2``, ``x86-64``) builds only that one, to time on this machine
the code another one runs (:mod:`~neuroplastic.fused.extension`).
"""
from neuroplastic.fused.extension import backend
from neuroplastic.fused.lif import LeakyState, lif_sequence
from neuroplastic.fused.event_linear import spike_linear
from neuroplastic.fused.linear_lif import linear_lif_sequence
from neuroplastic.fused.workspace import empty_cache

__all__ = ["LeakyState", "backend", "empty_cache", "lif_sequence", "linear_lif_sequence", "spike_linear"]
