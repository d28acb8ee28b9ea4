import sys

from avrt.cli import main

sys.exit(main())
