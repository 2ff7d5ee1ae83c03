import sys

from bea.cli import main

sys.exit(main())
