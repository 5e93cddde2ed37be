"""python -m qtrain_host <subcommand> (see qtrain_host.cli)."""
import sys

from .cli import main

sys.exit(main())
