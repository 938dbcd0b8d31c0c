"""``python -m avrec``: the command line (as the ``avrec`` script)."""

from avrec.cli import main

main()
