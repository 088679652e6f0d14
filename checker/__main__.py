"""`python -m checker`: the same command line as the `checker` script."""
from .cli import main

main(prog_name="checker")
