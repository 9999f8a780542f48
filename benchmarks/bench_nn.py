"""Training-step throughput and peak memory of Site-Net and DIM, against a naive DIM.

For max_atoms 50 and 100, over one shuffled pass of 800 real structures of
the demo set (the best of three timed passes), measures the supervised
Site-Net step and the DIM step of skdim, the same steps as they were before
the speed-up (``*_ref``: torch's Mish, Mish and LayerNorm apart, batches
sorted by neighbour count first), and the DIM step of a *naive*
implementation written the way the original research code works:
the (B, P, J, 2 D + E) bond tensor is concatenated and fed to full Linear
layers, every neighbour's critic key is projected explicitly for all J
neighbours, and the encoder is run once per engineered negative type.

Each (variant, size) runs in its own subprocess so that peak RSS
(``ru_maxrss``) is its own; the script prints crystals/s, pairs/s, peak RSS
above the loaded-data baseline, achieved FLOP/s (counted by
``torch.utils.flop_counter``) as a fraction of a large float32 matmul timed in
the same run, and the naive/skdim ratios. It also records the step's own
matrix products and times them alone: the share of the matmul rate the step
could reach if everything else were free.

    python benchmarks/bench_nn.py                 # CPU
    python benchmarks/bench_nn.py --device cuda   # GPU, when there is one
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
#: "*_ref": the same steps with torch's own Mish and an unfused LayerNorm, i.e.
#: skdim's steps before the fused activation (skdim.nn.activation), measured
#: side by side.
#: "dim" is the DIM step without the engineered negatives (what the speed goal
#: is about); "dim_negatives" adds them, to compare with the naive step, which
#: has them too.
VARIANTS = ("supervised_ref", "supervised", "dim_ref", "dim", "dim_negatives", "naive_dim")
#: The pretraining objectives of ``DIMPretrainer(objective=...)`` other than the
#: paper's, whose step is ``dim_negatives`` (the default, engineered negatives on).
OBJECTIVE_VARIANTS = ("dim_fixed", "strain", "masked", "dim_fixed+strain", "dim_fixed+masked")


# --------------------------------------------------------------- naive model
class NaiveAttention(nn.Module):
    """Site-Net block as in the original: concatenated bonds, shared first layers."""

    def __init__(self, site_dim, pair_dim, hidden, value_hidden):
        super().__init__()
        bond = 2 * site_dim + pair_dim

        def layer(i, o):
            return nn.Sequential(nn.Linear(i, o), nn.Mish(), nn.LayerNorm(o))

        self.logits = nn.Sequential(layer(bond, hidden), nn.Linear(hidden, 1))
        self.values = nn.Sequential(layer(bond, value_hidden), layer(value_hidden, site_dim))
        self.pairs = layer(bond, pair_dim)
        self.site_update = layer(site_dim, site_dim)

    def forward(self, x, e, neighbor_site, pair_mask):
        b, p, j = pair_mask.shape
        x_j = torch.gather(x, 1, neighbor_site[..., None].expand(-1, -1, x.shape[-1]))
        bond = torch.cat(
            [x[:, :, None].expand(-1, -1, j, -1), x_j[:, None].expand(-1, p, -1, -1), e], -1
        )
        logits = self.logits(bond).float().masked_fill(~pair_mask[..., None], -1e9)
        weights = torch.softmax(logits, dim=2) * pair_mask[..., None]
        out = (weights * self.values(bond)).sum(2)
        return self.site_update(out), self.pairs(bond)


class NaiveDIM(nn.Module):
    """DIM step as in the original code: 4 encoder passes, explicit critic keys."""

    def __init__(self, n_site=8, width=64, local_dim=32, embedding=64, projection=128):
        super().__init__()
        self.site_in = nn.Sequential(nn.Linear(n_site, width), nn.Mish(), nn.LayerNorm(width))
        self.pair_in = nn.Sequential(nn.Linear(1, width), nn.Mish(), nn.LayerNorm(width))
        self.block = NaiveAttention(width, width, width, width)
        self.bottleneck = nn.Linear(width, local_dim)
        self.local_logvar = nn.Linear(width, local_dim)
        self.pre_pool = nn.Sequential(
            nn.Linear(local_dim, 64),
            nn.Mish(),
            nn.LayerNorm(64),
            nn.Linear(64, 128),
            nn.Mish(),
            nn.LayerNorm(128),
        )
        self.post_pool = nn.Sequential(nn.Linear(128, 64), nn.Mish(), nn.LayerNorm(64))
        self.project = nn.Linear(64, embedding)
        self.global_logvar = nn.Linear(64, embedding)

        def proj(i):
            return nn.Sequential(nn.Linear(i, 64), nn.Mish(), nn.Linear(64, projection))

        self.query, self.key = proj(local_dim), proj(n_site + 1)
        self.crystal, self.site = proj(embedding), proj(local_dim)

    def encode(self, s, d, nbr, mask):
        x, _ = self.block(self.site_in(s), self.pair_in(d[..., None]), nbr, mask)
        return self.bottleneck(x), x

    def forward(self, site_features, pair_features, neighbor_site, site_mask, pair_mask, **_):
        from skdim.nn import DIMScores
        from skdim.nn.critics import distance_weights
        from skdim.nn.negatives import (
            derangement,
            engineered_negatives,
            partner_rows,
            take_rows,
        )

        d = pair_features[..., 0]
        local, hidden = self.encode(site_features, d, neighbor_site, pair_mask)
        logvar = self.local_logvar(hidden)
        noisy = local + torch.exp(0.5 * logvar) * torch.randn_like(local)
        pooled = (self.pre_pool(local.detach()) * site_mask[..., None]).sum(1) / site_mask.sum(
            1, keepdim=True
        )
        hid = self.post_pool(pooled)
        g, g_logvar = self.project(hid), self.global_logvar(hid)
        sigma = derangement(len(site_mask), random=True)
        rows = partner_rows(site_mask, sigma)
        fake_d = take_rows(d, sigma, rows)
        fake_mask = site_mask[..., None] & take_rows(pair_mask, sigma, rows)
        q = self.query(noisy)

        def critic(sites, ids, dist):  # explicit (B, P, J, projection) keys
            s_j = torch.gather(sites, 1, ids[..., None].expand(-1, -1, sites.shape[-1]))
            s_j = s_j[:, None].expand(-1, dist.shape[1], -1, -1)
            keys = self.key(torch.cat([s_j, dist[..., None]], -1))
            return (keys * q[:, :, None]).sum(-1)

        own, partner = (site_features, neighbor_site), (site_features[sigma], neighbor_site[sigma])
        local_scores = {
            "local_pos": critic(*own, d),
            "local_pos_weight": distance_weights(d, pair_mask),
            "local_neg": torch.stack(
                [critic(*partner, fake_d), critic(*own, fake_d), critic(*partner, d)]
            ),
            "local_neg_weight": torch.stack(
                [distance_weights(fake_d, fake_mask)] * 2 + [distance_weights(d, pair_mask)]
            ),
        }
        batch = {
            "site_features": site_features,
            "pair_features": pair_features,
            "neighbor_site": neighbor_site,
            "site_mask": site_mask,
            "pair_mask": pair_mask,
            "atomic_numbers": torch.zeros(site_mask.shape, dtype=torch.long),
        }
        corrupted = engineered_negatives(batch, sigma, random=True)
        negatives = []
        with torch.no_grad():
            for k in range(3):  # one encoder run per negative type
                part = {
                    key: v[k * len(sigma) : (k + 1) * len(sigma)] for key, v in corrupted.items()
                }
                negatives.append(
                    self.encode(
                        part["site_features"],
                        part["pair_features"][..., 0],
                        part["neighbor_site"],
                        part["pair_mask"],
                    )[0]
                )
        crystals = self.crystal(g + torch.exp(0.5 * g_logvar) * torch.randn_like(g))
        scores = DIMScores(
            site_mask=site_mask,
            derangement=sigma,
            local_mean=local,
            local_logvar=logvar,
            global_mean=g,
            global_logvar=g_logvar,
            **local_scores,
            global_scores=torch.einsum("bpd,cd->bpc", self.site(local.detach()), crystals),
            global_engineered=torch.stack(
                [(self.site(n) * crystals[:, None]).sum(-1) for n in negatives]
            ),
        )
        return g, scores


# ------------------------------------------------------------------ measure
def former_order(sampler, rng):
    """The batch order of skdim before the step's speed-up: sorted by J first, then P."""
    order = rng.permutation(len(sampler.n_sites))
    size = sampler.bucket_size
    buckets = [order[i : i + size] for i in range(0, len(order), size)]
    return np.concatenate(
        [b[np.lexsort((sampler.n_sites[b], sampler.n_neighbors[b]))] for b in buckets]
    )


def load_batches(max_atoms, budget, n_batches, use_former_order=False):
    """One shuffled pass over 800 demo structures (at most ``n_batches`` batches)."""
    import pandas as pd

    from skdim.data import PairBudgetBatchSampler, SiteNetDataset, collate_sitenet, feature_scaling
    from skdim.datasets import get_data_home, load_structures_csv
    from skdim.featurize import featurize

    home = get_data_home(os.environ.get("SKDIM_DATA", str(ROOT.parent / "shared" / "data")))
    ids = pd.read_csv(home / "mp36k_demo3k.csv.gz", usecols=["mp_id"])["mp_id"][:800]
    structures, _ = load_structures_csv(home / "mp36k_demo3k.csv.gz", ids=ids)
    inputs = featurize(structures, max_atoms=max_atoms)
    dataset = SiteNetDataset(inputs, np.zeros(len(inputs), np.float32))
    sampler = PairBudgetBatchSampler(
        dataset.n_sites, dataset.n_neighbors, budget, shuffle=True, min_crystals=2, random_state=0
    )
    if use_former_order:
        sampler._order = lambda rng: former_order(sampler, rng)
    batches = [collate_sitenet([dataset[i] for i in b]) for b in list(sampler)[:n_batches]]
    return batches, feature_scaling(inputs)


def build(variant, scaling):
    import skdim.nn.activation
    from skdim.nn import DIMLoss, SiteNet, SiteNetDIM

    if variant.endswith("_ref"):  # the former step: torch's Mish, not the fused one
        import skdim.nn.attention
        import skdim.nn.critics
        import skdim.nn.layers

        for module in (skdim.nn.activation, skdim.nn.critics):
            module.mish = torch.nn.functional.mish
        for module in (skdim.nn.layers, skdim.nn.attention):  # Mish and LayerNorm apart
            module.mish_layer_norm = lambda x, norm: norm(torch.nn.functional.mish(x))
        variant = variant[: -len("_ref")]
    if variant == "supervised":
        model = SiteNet(preset="dim", head_hidden=(64,))
        model.encoder.set_feature_scaling(**scaling)
        return model, lambda out, y: (out[:, 0] - y).abs().mean()
    loss = DIMLoss()
    if variant in OBJECTIVE_VARIANTS:
        from skdim.nn.objectives import objective_settings

        model = SiteNetDIM(**objective_settings(variant))
        model.encoder.set_feature_scaling(**scaling)
    elif variant in ("dim", "dim_negatives"):
        model = SiteNetDIM(engineered_negatives=variant == "dim_negatives")
        model.encoder.set_feature_scaling(**scaling)
    else:
        model = NaiveDIM()
    return model, lambda out, y: loss(out[1])["loss"]


class RecordProducts(TorchDispatchMode):
    """Records the matrix products a step runs: operator, operand shapes and strides."""

    PRODUCTS = ("mm", "bmm", "addmm", "baddbmm")

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.PRODUCTS:
            operands = [(a.shape, a.stride(), a.dtype) for a in args if torch.is_tensor(a)]
            self.calls.append((func, operands))
        return func(*args, **(kwargs or {}))


def time_products(calls, device, repeats=3):
    """Seconds to run the recorded products alone, on fresh operands of the same layout.

    Each product is timed on its own (best of ``repeats``), its operands made
    just before, so that memory holds one product's operands at a time.
    """

    def operand(shape, stride, dtype):
        storage = 1 + sum((n - 1) * step for n, step in zip(shape, stride))
        return torch.randn(storage, device=device, dtype=dtype).as_strided(shape, stride)

    total = 0.0
    for func, layouts in calls:
        tensors = [operand(*layout) for layout in layouts]
        best = float("inf")
        for _ in range(repeats):
            if device != "cpu":
                torch.cuda.synchronize()
            start = time.perf_counter()
            func(*tensors)
            if device != "cpu":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        total += best
    return total


def run_one(variant, max_atoms, budget, n_batches, device, threads, precision, passes=3):
    from torch.utils.flop_counter import FlopCounterMode

    import skdim.nn.activation

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batches, scaling = load_batches(
        max_atoms, budget, n_batches or None, use_former_order=variant.endswith("_ref")
    )
    batches = [({k: v.to(device) for k, v in x.items()}, y.to(device)) for x, y in batches]
    model, loss_fn = build(variant, scaling)
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    dtype = {"float32": None, "bfloat16": torch.bfloat16}[precision]

    def step(x, y):
        optimizer.zero_grad()
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(**x), y[:, 0] if y.dim() > 1 else y)
        loss.backward()
        optimizer.step()

    # Compile on a two-crystal batch before the memory baseline, so that peak
    # memory is the step's own, not torch.compile's
    x, y = batches[0]
    step({k: v[:2] for k, v in x.items()}, y[:2])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Untimed pass counting FLOPs, with the eager activation: a compiled function
    # run under the counting mode recompiles until torch gives up compiling it.
    activation = skdim.nn.activation
    kernels = dict(activation._compiled)
    activation._compiled.update(activation._EAGER)
    with FlopCounterMode(display=False) as counter:
        for x, y in batches:
            step(x, y)
    flops = counter.get_total_flops()
    activation._compiled.clear()
    activation._compiled.update(kernels)
    for x, y in batches:  # untimed warm-up pass: torch.compile compiles here
        step(x, y)
    if device != "cpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = float("inf")
    for _ in range(passes):  # the best pass: another process may share the machine
        start = time.perf_counter()
        for x, y in batches:
            step(x, y)
        if device != "cpu":
            torch.cuda.synchronize()
        seconds = min(seconds, time.perf_counter() - start)
    crystals = sum(len(x["site_mask"]) for x, _ in batches)
    pairs = sum(int(x["pair_mask"].sum()) for x, _ in batches)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device != "cpu"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    )
    # The step's own matrix products, timed alone: what the step would take
    # if everything else (activations, norms, gathers, the optimizer) were free
    with RecordProducts() as recorder:
        for x, y in batches:
            step(x, y)
    products_s = time_products(recorder.calls, device)
    return {
        "variant": variant,
        "threads": threads,
        "precision": precision,
        "max_atoms": max_atoms,
        "crystals_per_s": crystals / seconds,
        "pairs_per_s": pairs / seconds,
        "step_s": seconds / len(batches),
        "peak_mib": peak,
        "flop_per_s": flops / seconds,
        "products_s": products_s,
        "n_batches": len(batches),
    }


def matmul_flops(device, n=2048, repeats=10, blocks=5):
    """FLOP/s of a large float32 matmul: the best of ``blocks`` timed blocks."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(blocks):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * repeats / best


def configurations(sizes, extra, variants=VARIANTS + OBJECTIVE_VARIANTS):
    """(variant, max_atoms, threads, precision) to measure, each in its own process."""
    runs = [(v, size, 1, "float32") for size in sizes for v in variants]
    if extra:  # thread count and bfloat16, for the new steps at the first size
        for variant in ("supervised", "dim"):
            runs += [(variant, sizes[0], 2, "float32"), (variant, sizes[0], 1, "bfloat16")]
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--batch-pairs", type=int, default=32768)
    parser.add_argument(
        "--batches", type=int, default=0, help="at most this many batches (0: a whole pass)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-extra", action="store_true", help="skip the 2-thread and bfloat16 rows"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS + OBJECTIVE_VARIANTS),
        choices=list(VARIANTS + OBJECTIVE_VARIANTS),
        help="steps to measure (default: all); the report's ratio tables need theirs",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nn.md"))
    parser.add_argument("--_one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        variant, size, threads, precision = args._one
        result = run_one(
            variant,
            int(size),
            args.batch_pairs,
            args.batches,
            args.device,
            int(threads),
            precision,
        )
        print("RESULT " + json.dumps(result))
        return
    torch.set_num_threads(1)
    peak_matmul = matmul_flops(args.device)
    results = []
    runs = configurations(args.sizes, not args.no_extra, tuple(args.variants))
    for variant, size, threads, precision in runs:
        command = [
            sys.executable, __file__, "--_one", variant, str(size), str(threads), precision,
            "--batch-pairs", str(args.batch_pairs), "--batches", str(args.batches),
            "--device", args.device,
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next(x for x in output.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line[7:]))
        print(results[-1], flush=True)
    write_report(results, peak_matmul, args)


def write_report(results, peak_matmul, args):
    lines = [
        "# Site-Net / DIM training-step benchmark",
        "",
        f"Command: `python benchmarks/bench_nn.py --device {args.device} --batch-pairs "
        f"{args.batch_pairs} --batches {args.batches}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, device {args.device}, {time.strftime('%Y-%m-%d')}  ",
        f"Large float32 matmul (2048^3, 1 thread): {peak_matmul / 1e9:.1f} GFLOP/s.  ",
        "One shuffled pass over 800 demo structures, best of 3 timed passes. "
        "`*_ref`: the same step as before the speed-up (torch's own Mish, Mish and "
        "LayerNorm apart, batches sorted by neighbour count first). "
        "`dim`: the DIM step without the engineered negatives; `dim_negatives` with them, "
        "as the naive step (written like the original code) has them.",
        "",
        "`products alone`: the step's own matrix products (same shapes and layouts, "
        "recorded during the step) timed on their own: the share of the matmul rate "
        "the step would reach if everything else were free, and their share of the "
        "step's time.",
        "",
        "| max_atoms | step | threads | precision | crystals/s | pairs/s | s/step "
        "| peak memory (MiB) | GFLOP/s | of matmul | products alone: of matmul "
        "| products' share of the step |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        seconds = r["step_s"] * r["n_batches"]
        lines.append(
            f"| {r['max_atoms']} | {r['variant']} | {r['threads']} | {r['precision']} "
            f"| {r['crystals_per_s']:.1f} | {r['pairs_per_s']:.0f} "
            f"| {r['step_s']:.3f} | {r['peak_mib']:.0f} | {r['flop_per_s'] / 1e9:.2f} "
            f"| {r['flop_per_s'] / peak_matmul:.1%} "
            f"| {r['flop_per_s'] * seconds / r['products_s'] / peak_matmul:.1%} "
            f"| {r['products_s'] / seconds:.0%} |"
        )

    def find(variant, size, threads=1, precision="float32"):
        return next(
            (
                r
                for r in results
                if (r["variant"], r["max_atoms"], r["threads"], r["precision"])
                == (variant, size, threads, precision)
            ),
            None,
        )

    objective_rows = [
        (size, v, find(v, size), find("dim_negatives", size))
        for size in args.sizes
        for v in OBJECTIVE_VARIANTS
        if find(v, size) and find("dim_negatives", size)
    ]
    if objective_rows:
        lines += [
            "",
            "Pretraining objectives (`DIMPretrainer(objective=...)`) against today's DIM step "
            "(`dim_negatives`: the paper's objective with its engineered negatives, the "
            "default), 1 thread, float32:",
            "",
            "| max_atoms | objective | crystals/s | peak memory (MiB) "
            "| time per crystal vs today's DIM step |",
            "|---:|---|---:|---:|---:|",
        ]
        for size, v, r, today in objective_rows:
            lines.append(
                f"| {size} | {v} | {r['crystals_per_s']:.1f} | {r['peak_mib']:.0f} "
                f"| {today['crystals_per_s'] / r['crystals_per_s']:.2f}x |"
            )
    if not all(find(v, size) for size in args.sizes for v in VARIANTS):
        text = "\n".join(lines) + "\n"
        Path(args.out).write_text(text)
        print(text)
        return
    lines += [
        "",
        "Speed-ups in crystals/s over the same 800 crystals (1 thread, float32 unless named):",
        "",
        "| max_atoms | supervised vs ref | DIM vs ref | DIM with negatives vs naive "
        "| its memory saving vs naive |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in args.sizes:
        sup, sup_ref = find("supervised", size), find("supervised_ref", size)
        dim, dim_ref, naive = find("dim", size), find("dim_ref", size), find("naive_dim", size)
        negatives = find("dim_negatives", size)
        lines.append(  # crystals/s: the former batch order makes other batches of them
            f"| {size} | {sup['crystals_per_s'] / sup_ref['crystals_per_s']:.2f}x "
            f"| {dim['crystals_per_s'] / dim_ref['crystals_per_s']:.2f}x "
            f"| {negatives['crystals_per_s'] / naive['crystals_per_s']:.2f}x "
            f"| {naive['peak_mib'] / negatives['peak_mib']:.1f}x |"
        )
    size = args.sizes[0]
    extra = [
        (name, find(v, size), find(v, size, 2), find(v, size, 1, "bfloat16"))
        for name, v in (("supervised", "supervised"), ("DIM", "dim"))
    ]
    if all(two and bf16 for _, _, two, bf16 in extra):
        lines += [
            "",
            f"Threads and precision (max_atoms {size}; ratios against 1 thread, float32):",
            "",
            "| step | 2 threads | bfloat16 autocast |",
            "|---|---:|---:|",
        ]
        for name, one, two, bf16 in extra:
            lines.append(
                f"| {name} | {two['crystals_per_s'] / one['crystals_per_s']:.2f}x "
                f"| {bf16['crystals_per_s'] / one['crystals_per_s']:.2f}x |"
            )
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
