"""The shared probe: registered label sets, heads and baselines per kind of item, and the `probe`
evaluator that runs a head on any model's frozen representation beside them."""

from kgctl.models.probing import dmpnn, evaluate, molecules  # noqa: F401  (registers the evaluator, sets and baselines)
