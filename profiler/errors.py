"""The exception type the CLI turns into a clean one-line message, and its two refinements."""


class ProfilerError(Exception):
    """A problem the user can fix; the message says what to do next. Never shown with a traceback."""


class NothingToLearn(ProfilerError):
    """Training sets were built but hold nothing to learn from (one label, too few rows): a build
    remembers it as it remembers a trained model, instead of paying for the sets again."""


class SpecError(ProfilerError):
    """A model spec that does not fit the tables (a misspelt column): the project must change,
    so a build fails on it instead of leaving the scores NULL until someone looks."""
