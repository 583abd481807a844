"""Settings chosen on validation data, for any model: one model per combination of the config's
`search` grid, each trained by the shared trainer (best epoch kept, early stopping), and the
combination with the best validation figure kept; every candidate is recorded. No test data
is read here."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.core.options import check_value, field_types
from kgctl.core.progress import OnProgress, silent
from kgctl.models.base import Task
from kgctl.models.config import ModelConfig
from kgctl.models.trainer import CHECKPOINT, HISTORY, MODEL, fit

SELECTION = "selection.json"
SEARCH = "search"


def grid(config: ModelConfig) -> list[dict[str, Any]]:
    """The combinations of `config.search` ('setting=v1,v2;setting=v3'), each value checked
    against the setting's type and choices; [{}] when there is no search."""
    axes: list[list[tuple[str, Any]]] = []
    cls: type = type(config)
    for part in filter(str.strip, config.search.split(";")):
        key, eq, values = (s.strip() for s in part.partition("="))
        if not eq or key in ("search", "seed", "epochs") or key not in field_types(cls):
            raise KgctlError(
                f"search: {part.strip()!r} is not 'setting=value,value' over "
                f"{type(config).__name__}'s settings (seed and epochs excluded)"
            )
        axes.append([(key, _parse(config, key, v.strip())) for v in values.split(",") if v.strip()])
    return [dict(combo) for combo in itertools.product(*axes)]


def _parse(config: ModelConfig, key: str, text: str) -> Any:
    cls: type = type(config)
    plain, _ = field_types(cls)[key]
    try:
        value: Any = {"true": True, "false": False}[text.lower()] if plain is bool else plain(text)
    except (ValueError, KeyError):
        raise KgctlError(f"search: {key}={text!r} is not a {plain.__name__}") from None
    return check_value(type(config), key, value, "search")


def label(combo: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in combo.items()) or "default"


@dataclass
class Selected:
    """The chosen config, the figures of its training, and every candidate's validation figure
    and best epoch (None without a search)."""

    config: ModelConfig
    result: dict[str, Any]
    candidates: list[dict[str, Any]] | None

    def record(self) -> dict[str, Any]:
        selection = self.result.get("selection") or {}
        return {
            "epoch": selection.get("epoch"),
            "value": selection.get("value"),
            "metric": selection.get("metric"),
            "settings": _chosen(self.config, self.candidates),
            "candidates": self.candidates,
        }


def _chosen(config: ModelConfig, candidates: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not candidates:
        return {}
    return {k: getattr(config, k) for k in candidates[0]["settings"]}


def fit_selected(
    config: ModelConfig,
    make_task: Callable[[ModelConfig], Task],
    out: Path,
    *,
    device: str = "auto",
    nproc: int = 1,
    resume: bool = False,
    stop_after: int | None = None,
    on_progress: OnProgress = silent,
) -> Selected:
    """Train `make_task(config)` into `out`, or with a search, every combination under
    `out/search/` and the best one's files copied into `out`. Finished candidates are not
    trained again, so an interrupted search resumes where it stopped."""
    combos = grid(config)
    if combos == [{}]:
        fitted = fit(
            make_task(config),
            out,
            device=device,
            nproc=nproc,
            resume=resume,
            stop_after=stop_after,
            on_progress=on_progress,
        )
        return Selected(config, fitted.result, None)
    candidates: list[dict[str, Any]] = []
    results: dict[str, tuple[ModelConfig, dict[str, Any]]] = {}
    for combo in combos:
        folder = out / SEARCH / label(combo)
        candidate = config.replace(**combo)
        if (folder / SELECTION).exists():
            result = json.loads((folder / SELECTION).read_text())
        else:
            task = make_task(candidate)
            if not task.has_validation():
                raise KgctlError(
                    f"search {config.search!r} needs validation data, and split = {getattr(config, 'split', '?')} has none: pass --search '', or --from-run RUN to train with what a split run chose"
                )
            result = fit(
                task,
                folder,
                device=device,
                nproc=nproc,
                resume=resume and (folder / CHECKPOINT).exists(),
                stop_after=stop_after,
                on_progress=on_progress,
            ).result
            result.pop("history", None)
            if not result["complete"]:
                return Selected(candidate, result, candidates)
            (folder / SELECTION).write_text(json.dumps(result, indent=1))
        selection = result["selection"] or {}
        candidates.append({"settings": combo, "validation": selection.get("value"), "epoch": selection.get("epoch")})
        results[label(combo)] = (candidate, result)
    best = max(candidates, key=lambda c: c["validation"] if c["validation"] is not None else float("-inf"))
    chosen, result = results[label(best["settings"])]
    for name in (MODEL, HISTORY, CHECKPOINT):
        shutil.copyfile(out / SEARCH / label(best["settings"]) / name, out / name)
    return Selected(chosen, result, candidates)


def final_settings(config: ModelConfig, selection: dict[str, Any] | None) -> dict[str, Any]:
    """A config's settings for the final model on all pairs: the chosen combination and the
    selected number of epochs, no search, no early stopping. The schedule keeps the selected
    run's length, so the final model sees that run's learning rate at every epoch (the rule for
    more data: the same epochs and per-epoch rates; steps per epoch grow with the pairs)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    values.update(search="", patience=0)
    if selection and selection.get("epoch"):
        values["schedule_epochs"] = config.schedule_epochs or config.epochs
        values["epochs"] = int(selection["epoch"])
    return values


CHOSEN = "chosen.json"


def fit_or_load(
    config: ModelConfig,
    make_task: Callable[[ModelConfig], Task],
    out: Path,
    *,
    device: str = "auto",
    on_progress: OnProgress = silent,
) -> tuple[ModelConfig, dict[str, Any]]:
    """`fit_selected` into `out` once: later calls read the chosen config and its selection
    record from `out/chosen.json` (evaluation re-runs train nothing again)."""
    if (out / CHOSEN).exists() and (out / MODEL).exists():
        saved = json.loads((out / CHOSEN).read_text())
        return type(config)(**saved["config"]), saved["selection"]
    selected = fit_selected(config, make_task, out, device=device, on_progress=on_progress)
    record = {
        **selected.record(),
        "final": {k: v for k, v in selected.result.items() if k in ("final_loss", "final", "epochs_done", "warnings")},
    }
    (out / CHOSEN).write_text(json.dumps({"config": selected.config.to_dict(), "selection": record}, indent=1))
    return selected.config, record
