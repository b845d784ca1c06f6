"""The exception type the CLI turns into a clean one-line message, and its one refinement."""


class ProfilerError(Exception):
    """A problem the user can fix; the message says what to do next. Never shown with a traceback."""


class SpecError(ProfilerError):
    """A model spec that does not fit the tables (a misspelt column): the project must change,
    so a build fails on it instead of leaving the scores NULL until someone looks."""
