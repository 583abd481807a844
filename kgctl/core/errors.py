"""The one exception type that reaches users: a clear line, optional detail, an exit code."""

from __future__ import annotations


class KgctlError(Exception):
    """A user-facing failure: `message` is one line; `detail` (e.g. a log tail) is printed below it."""

    def __init__(self, message: str, *, detail: str | None = None, exit_code: int = 1) -> None:
        # One line whatever a library put in the text it quotes (pandas ends its own with "\n").
        message = " ".join(line.strip() for line in message.splitlines() if line.strip())
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.exit_code = exit_code

    def to_dict(self) -> dict[str, object]:
        return {"ok": False, "error": self.message, "detail": self.detail}
