import sys

from valuetrack.cli import main

sys.exit(main())
