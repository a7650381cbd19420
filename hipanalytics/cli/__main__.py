"""``python -m hipanalytics.cli``: the same as the ``hipanalytics`` command."""

from . import main

main()
