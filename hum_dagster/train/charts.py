"""The loss curve of a training run as a PNG (matplotlib, through hum_dagster.plotting).

Not imported by ``train/entry.py``, which runs on GPU nodes with dagster-pipes only.
"""

from __future__ import annotations

from typing import Any

from matplotlib.ticker import MaxNLocator

from hum_dagster.plotting import new_figure, png_bytes


def loss_curve_png(curve: list[dict[str, Any]], title: str) -> bytes:
    """Training loss per logged step, and eval loss where it was measured."""
    train = [(c["step"], c["loss"]) for c in curve if "loss" in c]
    evals = [(c["step"], c["eval_loss"]) for c in curve if "eval_loss" in c]
    with new_figure((5, 3)) as fig:
        ax = fig.subplots()
        if train:
            ax.plot(*zip(*train, strict=True), label="train loss")
        if evals:
            ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # optimizer steps are whole
        ax.set_ylabel("loss")
        ax.set_title(title, fontsize=9)
        if train or evals:
            ax.legend(fontsize=8)
        fig.tight_layout()
        return png_bytes(fig)
