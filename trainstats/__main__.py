import sys

from trainstats.cli import main

sys.exit(main())
