"""``python -m unmasked.cli``."""

from unmasked.cli import main

main()
