"""Start the desktop app: ``python main.py [options]`` (see ``--help``)."""
import sys

from ssl_desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
