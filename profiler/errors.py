"""The one exception type the CLI turns into a clean one-line message."""


class ProfilerError(Exception):
    """A problem the user can fix; the message says what to do next. Never shown with a traceback."""
