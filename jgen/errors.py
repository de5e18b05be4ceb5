"""The one exception type that the CLI turns into a one-line message and exit code 2, and one-line notices."""

import sys


class UserError(Exception):
  """Bad input from the user: the message says what is wrong and what to do."""


def notice(message: str) -> None:
  """A one-line note on stderr about something the run handled (a checkpoint fallback, a changed setting)."""
  print(f"jgen: {message}", file=sys.stderr, flush=True)
