"""A configuration mistake, said so a person can fix it."""

from collections.abc import Sequence
from dataclasses import dataclass

README_SETTINGS = "every setting is in the README's Configuration table"


@dataclass(frozen=True, slots=True)
class Problem:
    what: str
    """What is wrong, naming the setting, file, model or port."""
    fix: str = ""
    """How to fix it, when ``what`` does not already say."""

    def lines(self) -> list[str]:
        return [f"error: {self.what}", *([f"  fix: {self.fix}"] if self.fix else [])]

    def line(self) -> str:
        return f"{self.what}: {self.fix}" if self.fix else self.what


class ConfigurationError(Exception):
    """The gateway cannot start (or a command run) as configured; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(problem.line() for problem in problems))
        self.problems = tuple(problems)
