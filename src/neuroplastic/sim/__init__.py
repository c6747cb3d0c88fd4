from neuroplastic.sim.loop import RunResult, run
from neuroplastic.sim.probes import Probe, Record, SpikeCount, SpikeRaster

__all__ = ["run", "RunResult", "Probe", "Record", "SpikeRaster", "SpikeCount"]
