"""A contract violation names the file, the place in it and the rule broken."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    file: str
    place: str
    rule: str

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: {self.rule}"


class CaptureError(ValueError):
    """Raised when a capture folder breaks the contract; carries every violation found."""

    def __init__(self, folder: str, violations: list[Violation]):
        self.folder = folder
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"capture {folder} breaks the contract ({len(self.violations)}):\n{lines}")
