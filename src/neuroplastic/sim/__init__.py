from neuroplastic.sim.loop import RunResult, run
from neuroplastic.sim.probes import Probe, Record, SpikeCount, SpikeRaster, Trajectory

__all__ = ["run", "RunResult", "Probe", "Record", "Trajectory", "SpikeRaster", "SpikeCount"]
