import sys

from genpref.cli import main

sys.exit(main())
