"""`python -m crossroads` is the `crossroads` command."""

import sys

from crossroads.cli import main

sys.exit(main())
