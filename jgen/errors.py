"""The one exception type that the CLI turns into a one-line message and exit code 2, and one-line notices."""

import sys


class UserError(Exception):
  """Bad input from the user: the message says what is wrong and what to do."""


def first_line(e: BaseException, width: int = 120) -> str:
  """The first line of an exception's message, cut to `width` characters: a library's message can run to
  kilobytes (JSON, tracebacks of a storage layer), and a one-line report needs its start only."""
  return (str(e).splitlines() or [""])[0][:width]


def notice(message: str) -> None:
  """A one-line note on stderr about something the run handled (a checkpoint fallback, a changed setting)."""
  print(f"jgen: {message}", file=sys.stderr, flush=True)
