"""How long steps report progress; the CLI draws it with Rich, tests ignore it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol


class Task(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def __enter__(self) -> Task: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> Task: ...

    def note(self, message: str) -> None: ...


class _SilentTask:
    def advance(self, amount: int = 1) -> None:
        pass

    def __enter__(self) -> _SilentTask:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


class Silent:
    """Progress that shows nothing."""

    def task(self, description: str, total: int | None) -> Task:
        return _SilentTask()

    def note(self, message: str) -> None:
        pass
