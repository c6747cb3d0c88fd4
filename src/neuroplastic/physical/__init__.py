"""What a real substrate does: simulated devices (mismatch, noise, quantized weights, current-mode DPI
circuits) behind an outputs-only interface, and the differentiable twins that train them."""
from neuroplastic.physical.chip import Chip, ChipSpec, quantize
from neuroplastic.physical.network import PhysicalNetwork, calibrate, physics_aware

__all__ = ["Chip", "ChipSpec", "quantize", "PhysicalNetwork", "physics_aware", "calibrate"]
