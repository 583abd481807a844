"""A run's report: one self-contained HTML page (PNGs embedded, and written beside it) from what
the run recorded, for any registered model: the loss and validation curves of its history, the
plots its evaluation left (ROC per split with every baseline, score distributions), and its
metrics as tables, with mean ± SD where the model reports seeds."""

from __future__ import annotations

import base64
import html
import json
import shutil
from pathlib import Path
from typing import Any

from kgctl.models.runs import Run

SKIP = {"history"}  # long per-epoch lists are the curves, not table rows


def write_report(run: Run, out: Path) -> dict[str, Any]:
    """`out/report.html` and its PNGs; returns the paths and what the page shows."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = [*_curves(run, out)]
    for plot in sorted((run.dir / "plots").glob("*.png")):
        pngs.append(Path(shutil.copy(plot, out / plot.name)))
    metrics = run.record.get("metrics", {})
    sections = "".join(f"<h2>{html.escape(kind)}</h2>{_table(_rows(value))}" for kind, value in metrics.items())
    images = "".join(
        f'<figure><img alt="{html.escape(p.name)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.name)}'
        "</figcaption></figure>"
        for p in pngs
    )
    facts = {
        k: run.record.get(k)
        for k in ("id", "model", "status", "created_at", "code_version", "view", "device", "epochs")
    }
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kgctl run {html.escape(run.id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 520px; }}
</style></head><body>
<h1>{html.escape(run.model)} run {html.escape(run.id)}</h1>
{_table(list(facts.items()))}
<h2>config</h2>{_table(list(run.config.items()))}
{images}
{sections}
<script type="application/json" id="metrics">{html.escape(json.dumps(metrics, default=str))}</script>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return {"report": str(path), "pngs": [str(p) for p in pngs], "sections": list(metrics)}


def _curves(run: Run, out: Path) -> list[Path]:
    """Loss (and each recorded figure, e.g. the validation AUC) per epoch."""
    history_file = run.dir / "history.json"
    if not history_file.exists():
        return []
    epochs = json.loads(history_file.read_text())["epochs"]
    names = [
        k
        for k in epochs[0]
        if k not in ("epoch", "lr", "steps", "seconds", "resumed")
        and all(isinstance(e.get(k), int | float) for e in epochs)
    ]
    if not names:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot([e["epoch"] for e in epochs], [e[name] for e in epochs], marker=".")
        ax.set(xlabel="epoch", title=name)
    chosen = (run.record.get("selection") or {}).get("epoch")  # the epoch whose weights were kept
    if isinstance(chosen, int):
        for ax in axes[0]:
            ax.axvline(chosen, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    path = out / "training.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def _rows(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested metrics flattened to (path, value) rows; {mean, sd, …} becomes 'mean ± sd'."""
    if isinstance(value, dict):
        if "mean" in value and "sd" in value:
            return [(prefix, f"{value['mean']} ± {value['sd']}")]
        rows: list[tuple[str, Any]] = []
        for key, inner in value.items():
            if key not in SKIP:
                rows += _rows(inner, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, value)]


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
