"""``python -m wildlife_gpu detect|classify|materialize ...``."""

import sys

from wildlife_gpu.cli import main

sys.exit(main())
