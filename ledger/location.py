"""Where a ledger URL points, said so an operator can find it and nothing secret shows.

An SQLite URL names a file, relative to the current directory unless it has
four slashes; the absolute path is what a person needs to see, and whether
the file exists yet tells a command about to create an empty ledger that it
may be in the wrong directory. A server URL is shown with its password hidden.
"""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    shown: str
    """The absolute SQLite path, or the server URL without its password."""
    file: Path | None
    """The SQLite file; None for a ledger on a server."""

    @property
    def exists(self) -> bool:
        """False only for an SQLite file not created yet (a server is asked by opening it)."""
        return self.file is None or self.file.exists()

    def __str__(self) -> str:
        return f"SQLite file {self.shown}" if self.file is not None else self.shown


def locate(url: str) -> LedgerLocation:
    if url.startswith(SQLITE_PREFIX):
        file = Path(url.removeprefix(SQLITE_PREFIX)).absolute()
        return LedgerLocation(shown=str(file), file=file)
    return LedgerLocation(shown=without_password(url), file=None)


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
