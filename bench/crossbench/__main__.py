"""`python -m crossbench` (what bench/run calls): run the benchmark suite."""

import sys

from crossbench.suite import main

sys.exit(main())
