"""`python -m checker`: the same command line as the `checker` script."""
from .entry import run

run()
