"""``neuroplastic tour``: every neuron model's voltage trace and f-I curve in one figure."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from neuroplastic.analysis import fi_curve, spike_times
from neuroplastic.cli.common import device, emit
from neuroplastic.cli.neuron import simulate
from neuroplastic.neurons import MODELS
from neuroplastic.progress import progress_bar
from neuroplastic.report.plots import draw_fi, draw_trace, save

TRACE_MS, FI_MS, FI_POINTS = 200.0, 500.0, 9


def main(args):
    out = Path(args.out)
    where = device(args)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out!r} exists and is not a folder")
    fig, axes = plt.subplots(len(MODELS), 2, figsize=(11, 2.4 * len(MODELS)), squeeze=False)
    curves = {}
    bar = progress_bar(len(MODELS), desc="tour", unit="model", enabled=not args.quiet, every=1)
    for row, (name, cls) in enumerate(sorted(MODELS.items())):
        model = cls()
        dt = model.default_dt
        times, voltage, raster = simulate(model, model.default_current, TRACE_MS, dt, seed=0, device=where)
        draw_trace(axes[row, 0], times.numpy(), voltage.numpy(), spike_times(raster, dt)[0],
                   title=f"{name}: I = {model.default_current:g} {model.current_unit}")
        currents = np.linspace(0.0, 2.0 * model.default_current, FI_POINTS).tolist()
        rates = fi_curve(model, currents, FI_MS, dt, device=where).tolist()
        draw_fi(axes[row, 1], currents, rates, title=f"{name}: f-I curve", unit=model.current_unit)
        curves[name] = {"currents": currents, "rates_hz": rates}
        bar.set_postfix_str(name)
        bar.update(1)
    bar.close()
    figure = save(fig, out / "tour.png")
    emit({"figure": str(figure), "models": curves}, args.json,
         [f"{name:>12}: max rate {max(c['rates_hz']):7.1f} Hz" for name, c in curves.items()]
         + [f"figure: {figure}"])
