import sys

from jgen.cli import main

sys.exit(main())
