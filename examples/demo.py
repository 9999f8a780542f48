"""Demo: pretrain DIM without labels, then predict from 250 labels.

Run with ``make demo``: about 5 minutes on 2 idle CPU cores, 7 beside other
jobs (387 s, measured on one thread of a busy 2-core machine). On the 3,000
Materials Project structures of ``mp36k_demo3k.csv.gz`` (from ``$SKDIM_DATA``):

1. split 2,500 / 500 (train / test, seed 0);
2. pretrain a DIMPretrainer on the 2,500 training structures, without labels;
3. draw 250 labelled training structures and fit on them
   a. a SiteNetRegressor fine-tuned from the pretrained encoder (the default
      training recipe: 1,500 optimizer steps with a cosine learning-rate decay),
   b. the same SiteNetRegressor from scratch,
   c. a RandomForest on the frozen DIM embeddings,
   d. a mean predictor;
4. print the test MAE of each, side by side (formation energy, eV/atom).

The pretraining here is short (5 epochs, without the engineered negatives,
which cost 2.2x per epoch on CPU); the label-masking benchmark
(``skdim benchmark``) is the measured comparison, across N and seeds.

Each step says what it does and about how long it takes (the shorter time
on 2 idle cores, the longer beside other jobs). Every fit prints what the
library prints by default: a line about every tenth of the run, with the
optimizer steps done / total, the losses and the time left; the pretraining
also prints a row per epoch (``verbose=2``; the columns are explained in the
user guide, "Training recipe").
"""

import time

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

SEED = 0
N_LABELS = 250


def step(text: str) -> None:
    print(f"\n{text}", flush=True)


start = time.perf_counter()
step("1/4 Reading and featurizing 3,000 structures (20-40 s)")
structures, labels = load_structures_csv(
    get_data_home() / "mp36k_demo3k.csv.gz", n_jobs=2, progress=True
)
inputs = featurize(structures, max_atoms=50, n_jobs=2, progress=True)  # featurize once
y = labels["e_form_per_atom"].to_numpy()
order = np.random.default_rng(SEED).permutation(len(inputs))
train, test = order[:2500], order[2500:]
labelled = np.random.default_rng(SEED).choice(train, N_LABELS, replace=False)
X_train = [inputs[i] for i in train]
X_lab, y_lab = [inputs[i] for i in labelled], y[labelled]
X_test, y_test = [inputs[i] for i in test], y[test]
print(f"data ready in {time.perf_counter() - start:.0f} s")

step(
    f"2/4 Pretraining DIM on {len(X_train)} structures without labels: 5 epochs "
    "(1-2 min; a row per epoch: the DIM loss on the training structures and on 10 % "
    "held out, the mutual-information estimates, the KL term; docs: user guide, "
    "Training recipe; and a line every tenth of the run with the time left)"
)
tick = time.perf_counter()
pretrainer = DIMPretrainer(
    max_epochs=5, lr_schedule="constant", engineered_negatives=False, random_state=SEED, verbose=2
).fit(X_train)
print(
    f"DIM pretraining on {len(X_train)} unlabeled structures: {time.perf_counter() - tick:.0f} s"
)

# the default recipe: no epochs to pick; the default verbose=1: a line every tenth of the run
finetune = {"random_state": SEED}
models = {
    "SiteNet fine-tuned from DIM": SiteNetRegressor(pretrained=pretrainer, **finetune),
    "SiteNet from scratch": SiteNetRegressor(**finetune),
    "RandomForest on DIM embeddings": make_pipeline(
        FrozenEstimator(pretrainer), RandomForestRegressor(500, random_state=SEED, n_jobs=2)
    ),
    "mean predictor": DummyRegressor(),
}
about = {  # on 2 idle cores - beside other jobs
    "SiteNet fine-tuned from DIM": "1.5-4.5 min",
    "SiteNet from scratch": "1.5-4.5 min",
    "RandomForest on DIM embeddings": "5-10 s",
    "mean predictor": "under a second",
}
step(
    f"3/4 Fitting four models on {N_LABELS} formation energies (Site-Nets: the default "
    "recipe, 1,500 optimizer steps with a cosine learning-rate decay)"
)
results = {}
for name, model in models.items():
    print(f"  {name} ({about[name]})", flush=True)
    tick = time.perf_counter()
    features = X_lab if name != "mean predictor" else np.zeros((N_LABELS, 1))
    test_features = X_test if name != "mean predictor" else np.zeros((len(X_test), 1))
    model.fit(features, y_lab)
    results[name] = (
        np.abs(model.predict(test_features) - y_test).mean(),
        time.perf_counter() - tick,
    )

step(f"4/4 Formation energy, {N_LABELS} labels, {len(X_test)} test structures")
print(f"{'model':34s} {'test MAE (eV/atom)':>20s} {'fit time (s)':>14s}")
for name, (mae, seconds) in results.items():
    print(f"{name:34s} {mae:20.3f} {seconds:14.0f}")
print(f"\ntotal time {time.perf_counter() - start:.0f} s")
