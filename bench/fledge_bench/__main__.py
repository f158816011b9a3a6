"""``python -m fledge_bench``: what ``bench/run`` starts."""

import sys

from fledge_bench.cli import main

sys.exit(main())
