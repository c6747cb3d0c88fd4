"""Exchange networks with other simulators and chips through NIR, the Neuromorphic Intermediate
Representation (Pedersen et al. 2024, Nat. Commun. 15:8122):

    graph = neuroplastic.nir.to_nir(network)        # a nir.NIRGraph; nir.write("model.nir", graph)
    network = neuroplastic.nir.from_nir("model.nir")  # the library's own SpikingNetwork, (T, B, n_in) → …

The conversions and each peer's time-step conventions: :mod:`neuroplastic.interop.nir_nodes`. NIR is an
optional dependency (``pip install 'neuroplastic[interop]'``): importing this module does not need it,
calling these functions does.
"""
from __future__ import annotations

__all__ = ["INSTALL", "from_nir", "require_nir", "to_nir"]

INSTALL = "pip install 'neuroplastic[interop]'"


def require_nir() -> None:
    """Raises one line naming the extra to install where the ``nir`` package is missing."""
    try:
        import nir  # noqa: F401  (the top-level package, not this module)
    except ImportError:
        raise ImportError(f"NIR exchange needs the nir package: {INSTALL}") from None


def to_nir(network):
    """The ``nir.NIRGraph`` of a :class:`~neuroplastic.networks.SpikingNetwork`."""
    require_nir()
    from neuroplastic.interop.nir_export import to_nir as export

    return export(network)


def from_nir(graph, *, dt: float | None = None):
    """The :class:`~neuroplastic.networks.SpikingNetwork` of a ``nir.NIRGraph`` or a NIR file's path,
    stepping by ``dt`` ms (default: the step it was exported with here, else 1 ms)."""
    require_nir()
    from neuroplastic.interop.nir_import import from_nir as load

    return load(graph, dt=dt)
