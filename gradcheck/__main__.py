"""``python -m gradcheck``: the same program as the ``gradcheck`` console script."""

from .cli import main

if __name__ == "__main__":  # spawned audit workers import __main__ again: nothing must run
    main()
