"""Start the desktop app: ``python main.py [options]`` (see ``--help``), with the Python of its runtime
(``make run ARGS="..."`` installs it and starts the app with it)."""
import sys

if __name__ == "__main__":
    try:
        from ssl_desktop.app import main
    except ModuleNotFoundError as exc:  # a Python without the app's packages: one line, not a traceback
        print(f"main.py: {sys.executable} has no {exc.name}, which the app needs: run `make run` (it installs the "
              f"app's runtime and starts the app; options: make run ARGS=\"--help\")", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
