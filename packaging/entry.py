"""Entry point of the frozen ``docsidecar`` executable (PyInstaller's script).

``multiprocessing.freeze_support()`` must run first: the ingest extraction worker uses the
*spawn* start method, and in a frozen app a spawned child is this same executable started
with multiprocessing's private arguments; ``freeze_support`` turns it into the worker child
instead of a second sidecar. The ``__main__`` guard keeps the re-import in the child inert.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from backend.cli import main

    sys.exit(main())
