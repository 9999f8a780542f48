"""Demo: featurize the 3,000-structure demo set and summarize it.

Run with ``make demo``. Reads ``mp36k_demo3k.csv.gz`` from ``$SKDIM_DATA``
(``../shared/data`` by default in the Makefile).
"""

import time

import numpy as np

from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

start = time.perf_counter()
structures, labels = load_structures_csv(
    get_data_home() / "mp36k_demo3k.csv.gz", n_jobs=2, progress=True
)
parsed = time.perf_counter()
inputs = featurize(structures, max_atoms=50, n_jobs=1, progress=True)
done = time.perf_counter()

sites = np.array([x.n_sites for x in inputs])
neighbors = np.array([x.n_neighbors for x in inputs])
print(f"parsed {len(structures)} CIFs in {parsed - start:.1f} s")
print(f"featurized in {done - parsed:.1f} s ({len(inputs) / (done - parsed):.0f} structures/s)")
print(f"primitive sites P: median {np.median(sites):.0f}, max {sites.max()}")
print(f"supercell atoms J: median {np.median(neighbors):.0f}, max {neighbors.max()}")
print(f"pairs P x J: total {int((sites * neighbors).sum()):,}")
