"""One module per ``rov-router`` command: ``add_parser(subparsers)`` adds its options,
``run(args)`` runs it and returns the exit status.  ``cli.py`` dispatches; what several
commands share (exit-status exceptions, argparse types, interruptible asyncio work) lives in
``_common.py``."""
