import sys

from lpmatte.cli import main

sys.exit(main())
