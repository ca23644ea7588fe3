"""The one exception type users see: its message is a single line that says what to do."""


class DeBERTaError(Exception):
    """A user-facing error; ``str(err)`` is one clear line. Command-line apps print it and exit 2."""
