"""The asud command: twisted.python.usage sub-commands run under task.react."""
