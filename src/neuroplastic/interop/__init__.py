"""How models leave and enter: NIR export and import (:mod:`.nir_nodes`, :mod:`.nir_export`,
:mod:`.nir_import`; they need the optional ``nir`` package, so nothing here imports them: use
:mod:`neuroplastic.nir`)."""
