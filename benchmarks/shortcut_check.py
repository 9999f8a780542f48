"""Does a pretrained global critic read structure or only composition?

For each pretrained model, the global critic scores every site of a crystal
against that crystal's embedding (the positive) and against negatives of two
kinds (Site-Net inputs of the formation-energy development evaluation set,
1,000 structures; never a test set):

* composition-changing: the partner crystal's embedding; the partner's
  species on one's own geometry (the paper's "wrong composition" copy);
* composition-matched: one's species permuted among one's sites, geometry
  kept; one's distances strained by 10-25 %; the partner's geometry with
  one's own species.

The table gives the accuracy (percent of sites whose positive scores above
the negative); 50 % is chance. Copies identical to the crystal (for example
rock salt with its two species swapped) are left out. A critic that reads
composition only is near 100 % on the first kind and near 50 % on the second.
It also gives the effective rank (exp of the entropy of the normalized
singular values) of the ``pooled`` and ``site_stats`` embeddings.

Usage::

    python benchmarks/shortcut_check.py                  # dim_paper and untrained
    python benchmarks/shortcut_check.py --variants dim_fixed dim_paper untrained
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NEGATIVES = (
    "partner crystal",
    "partner species",
    "permuted species",
    "strained",
    "partner geometry",
)


def critic_accuracy(model, inputs: list) -> dict[str, float]:
    """Percent of sites whose positive global score beats each negative's."""
    from torch.utils.data import DataLoader

    from skdim.data import PairBudgetBatchSampler, SiteNetDataset, collate_sitenet, item_sizes
    from skdim.nn import derangement, engineered_negatives
    from skdim.nn.negatives import composition_matched_negatives, identical_copies

    module = model.module_.eval()
    encoder, critic = module.encoder, module.global_critic
    dataset = SiteNetDataset(inputs)
    sampler = PairBudgetBatchSampler(*item_sizes(dataset), 32768, min_crystals=2)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_sitenet)
    wins = {name: [0.0, 0.0] for name in NEGATIVES}
    torch.manual_seed(0)
    with torch.no_grad():
        for batch, _ in loader:
            mask = batch["site_mask"]
            sigma = derangement(len(mask), random=True)
            local, _ = encoder.encode_sites(**batch)
            embedding, _ = encoder.readout(local, mask)
            scores, _ = critic(embedding, local, None)
            rows = torch.arange(len(mask))
            positive = scores[rows, :, rows]  # (B, P)
            candidates = {"partner crystal": (scores[rows, :, sigma], None)}
            wrong = engineered_negatives(batch, sigma, random=True)
            first = {k: v[: len(mask)] for k, v in wrong.items()}
            candidates["partner species"] = (_copy_scores(module, embedding, first), None)
            matched = composition_matched_negatives(batch, sigma, random=True)
            identical = identical_copies(batch, matched)
            copies = encoder.encode_sites(**matched)[0].unflatten(0, (3, len(mask)))
            matched_scores = torch.einsum(
                "kbpd,bd->kbp", critic.site(copies), critic.crystal(embedding)
            )
            for k, name in enumerate(("permuted species", "strained", "partner geometry")):
                candidates[name] = (matched_scores[k], identical[k])
            for name, (negative, same) in candidates.items():
                keep = mask.clone()
                if same is not None:
                    keep &= ~same[:, None]
                wins[name][0] += float(((positive > negative) & keep).sum())
                wins[name][1] += float(keep.sum())
    return {name: 100 * won / max(total, 1) for name, (won, total) in wins.items()}


def _copy_scores(module, embedding, copy) -> torch.Tensor:
    local = module.encoder.encode_sites(**copy)[0]
    critic = module.global_critic
    return torch.einsum("bpd,bd->bp", critic.site(local), critic.crystal(embedding))


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the normalized singular values of the centred matrix."""
    singular = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = singular / singular.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def main() -> None:
    import pretext_study as study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--cache-dir", default=str(HERE / "cache" / "pretext"))
    parser.add_argument("--variants", nargs="*", default=["dim_paper", "untrained"])
    parser.add_argument("--out", default=str(HERE / "results" / "shortcut_check.md"))
    args = parser.parse_args()
    data, cache = Path(args.data), Path(args.cache_dir)
    inputs_by_id, _, evaluation, _ = study._task_data("eform", data, cache, 1)
    inputs = [inputs_by_id[i] for i in evaluation]
    lines = [
        "# Shortcut check: what the global critic reads",
        "",
        f"Command: `python benchmarks/shortcut_check.py --variants {' '.join(args.variants)}`  ",
        f"Data: the formation-energy development evaluation set ({len(inputs)} structures).  ",
        "Accuracy: percent of sites whose positive global score beats the negative's "
        "(50 % is chance; identical copies left out). Effective rank: of the embedding "
        "matrix over these structures.",
        "",
        "| variant | " + " | ".join(NEGATIVES) + " | eff. rank pooled | eff. rank site_stats |",
        "|---|" + "---:|" * (len(NEGATIVES) + 2),
    ]
    for variant in args.variants:
        model = study._embedder(variant, data, cache, inputs)
        if not hasattr(model.module_, "global_critic") or not model.module_.infomax:
            accuracy = {name: float("nan") for name in NEGATIVES}
        else:
            accuracy = critic_accuracy(model, inputs)
        ranks = []
        for embedding in ("pooled", "site_stats"):
            model.set_params(embedding=embedding, verbose=0)
            ranks.append(effective_rank(model.transform(inputs).astype(np.float64)))
        cells = [f"{accuracy[name]:.1f}" for name in NEGATIVES] + [f"{r:.1f}" for r in ranks]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
