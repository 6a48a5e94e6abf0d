"""RuleError: the one exception of the rule package, naming the file, the rule and the fix."""
from __future__ import annotations

import typing
from pathlib import Path

from kgfusion.core.errors import KgfusionError


class RuleError(KgfusionError):
    """A rule or rule file is invalid. The message names the file, the rule (index and id) and the fix."""

    def __init__(
        self, problem: str, *, fix: str, path: str | Path | None = None, index: int | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.problem, self.fix, self.path, self.index, self.rule_id = problem, fix, path, index, rule_id
        where = []
        if path is not None:
            where.append(str(path))
        if index is not None or rule_id:
            rule = f"rules[{index}]" if index is not None else "rule"
            where.append(f"{rule} (id '{rule_id}')" if rule_id else rule)
        prefix = ": ".join(where)
        super().__init__(f"{prefix + ': ' if prefix else ''}{problem}. Fix: {fix}")

    def located(self, path: str | Path, index: int | None, rule_id: str | None) -> RuleError:
        """The same error with the file and rule position filled in."""
        return RuleError(
            self.problem, fix=self.fix, path=path, index=index if self.index is None else self.index,
            rule_id=self.rule_id or rule_id,
        )


def fail(rule_id: str | None, problem: str, fix: str) -> typing.NoReturn:
    """Raise a RuleError for one rule (the loader adds the file and index); for ``__post_init__`` checks."""
    raise RuleError(problem, fix=fix, rule_id=rule_id)
