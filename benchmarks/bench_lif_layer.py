"""The standard LIF-layer benchmark against snnTorch, Norse and SpikingJelly, printed as JSON.

The same run as ``neuroplastic bench --json`` (options pass through; see ``neuroplastic bench --help``
and :mod:`neuroplastic.bench` for what is measured and how):

    python benchmarks/bench_lif_layer.py                      # N = 512, 4096; T = 500; B = 16
    python benchmarks/bench_lif_layer.py --sizes 512 --peers snntorch --repeats 9
"""
import sys

from neuroplastic.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--json", *sys.argv[1:]]))
