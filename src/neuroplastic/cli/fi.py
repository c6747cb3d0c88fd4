"""``neuroplastic fi MODEL --currents a,b,c``: the steady-state f-I curve of a model."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.analysis import fi_curve
from neuroplastic.cli.common import (
    UsageError,
    build_model,
    capped_duration,
    device,
    emit,
    noise_generator,
    noise_seed,
    plot_path,
    time_step,
)
from neuroplastic.report.plots import draw_fi, save
from neuroplastic.validation import require_finite


def parse_currents(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--currents must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError("--currents is empty")
    return [require_finite("--currents", v) for v in values]


def main(args):
    model = build_model(args)
    dt = time_step(args, model)
    duration = capped_duration(args, dt)
    seed = noise_seed(args)
    currents = parse_currents(args.currents)
    path = plot_path(args.plot)
    where = device(args)
    rates = fi_curve(model, currents, duration, dt, generator=noise_generator(model, seed, where),
                     device=where).tolist()
    if path is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw_fi(ax, currents, rates, title=f"{args.model} f-I curve", unit=model.current_unit)
        save(fig, path)
    summary = {"model": args.model, "preset": args.preset, "duration_ms": duration, "dt_ms": dt,
               "currents": currents, "rates_hz": rates, "plot": str(path) if path else None}
    emit(summary, args.json, [f"{'current':>12}  {'rate (Hz)':>10}"]
         + [f"{c:12g}  {r:10.2f}" for c, r in zip(currents, rates)] + ([f"plot: {path}"] if path else []))
