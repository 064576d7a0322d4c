import sys

from wildlife.cli import main

sys.exit(main())
