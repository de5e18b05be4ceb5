"""`python -m jgen` and the `jgen` command: the CLI, under tcmalloc where it is installed."""

import sys

from jgen import host_allocator


def run():
  from jgen.errors import UserError

  try:
    host_allocator.use_tcmalloc()  # first: it starts the process again, and anything imported before is wasted
  except UserError as e:
    print(f"jgen: error: {e}", file=sys.stderr)
    sys.exit(2)
  from jgen.cli import main

  sys.exit(main())


if __name__ == "__main__":
  run()
