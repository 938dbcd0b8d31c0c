"""Business rules over recommendation lists: one declarative file (YAML or JSON) of filters,
availability windows, boosts, freshness, caps and pins, compiled against a catalog and applied
the same way by ``avrec recommend``, the service and the evaluation (see docs/rules.md)."""

from avrec.rerank.rules.apply import Ruled, apply_rules, cap_violations, with_reason
from avrec.rerank.rules.compiled import CompiledRules, compile_rules
from avrec.rerank.rules.schema import Document, RulesError, RuleSet, parse_rules, read_rules

__all__ = [
    "CompiledRules",
    "Document",
    "RuleSet",
    "Ruled",
    "RulesError",
    "apply_rules",
    "cap_violations",
    "compile_rules",
    "parse_rules",
    "read_rules",
    "with_reason",
]
