"""``python -m asud …`` is the ``asud`` command."""

from asud.scripts.main import run

if __name__ == "__main__":
    run()
