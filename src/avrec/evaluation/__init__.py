"""avrec.evaluation: how we know whether a model is good.

- metrics are small pure functions in :mod:`avrec.metrics` (a bottom layer: models use them
  for validation too);
- :mod:`~avrec.evaluation.protocols`: the splits (random, msr, last, temporal, cold-items,
  cold-users, kfold) and the ``predict(user_ids, item_ids)`` contract for rating models;
- :func:`avrec.fusion.features.item_features`: the catalog's feature matrices, built the same
  way for training and evaluation;
- :mod:`~avrec.evaluation.leakage`: guards that keep test interactions out of training;
- :mod:`~avrec.evaluation.runner`: models through a protocol via their public API;
- :mod:`~avrec.evaluation.summary`: seed spread, intervals, paired tests (Holm);
- :mod:`~avrec.evaluation.report` / :mod:`~avrec.evaluation.plots`: results.json, console
  table, HTML report with matplotlib figures; :mod:`~avrec.evaluation.api`: all of it in one call;
- :mod:`~avrec.evaluation.ope`: off-policy evaluation of a policy from logged bandit feedback
  (IPS, SNIPS, DM, DR with bootstrap intervals) and the promotion gate;
  :mod:`~avrec.evaluation.open_bandit` reads the Open Bandit Dataset.
"""
