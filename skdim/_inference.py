"""Inference of the fitted estimators: size-sorted batches, rows back in input order."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.utils import to_device
from torch.utils.data import DataLoader

from skdim._threads import thread_policy
from skdim.data import PairBudgetBatchSampler, collate_sitenet, item_sizes


def forward_sorted(net: Any, X: Any, forward) -> np.ndarray:
    """Apply ``forward(batch_dict) -> tensor`` to X in size-sorted batches of ``net``.

    Sorting by size keeps padding small; rows are returned in input order.
    The batches go to ``net.device_`` under the net's autocast.
    """
    net.check_is_fitted(list(net._fitted_attributes))
    dataset = net.get_dataset(X)
    n_sites, n_neighbors = item_sizes(dataset)
    order = np.lexsort((n_sites, n_neighbors))
    sampler = PairBudgetBatchSampler(n_sites[order], n_neighbors[order], net.batch_pairs)
    batches = [order[b].tolist() for b in sampler]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate_sitenet)
    net.module_.eval()
    outputs = []
    with torch.no_grad(), net._autocast(), thread_policy():
        for batch, _ in loader:
            outputs.append(forward(to_device(batch, net.device_)).float().cpu())
    result = torch.empty((len(dataset), *outputs[0].shape[1:]))
    result[torch.as_tensor(np.concatenate(batches))] = torch.cat(outputs)
    return result.numpy()
