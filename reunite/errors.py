"""Errors a user can meet. The CLI turns each into one clear line and a non-zero exit."""


class ReuniteError(Exception):
    """Base class: the message is shown to the user as is, so it must say what to do."""

    exit_code = 2


class InvalidOptionError(ReuniteError):
    """An option value that cannot work (0 cameras, a 100000x100000 frame, ...)."""


class OutputExistsError(ReuniteError):
    """The output folder exists and is not empty, and --overwrite was not given."""


class RendererUnavailableError(ReuniteError):
    """No EGL/OpenGL context could be created; the message names the missing package."""


class DiskFullError(ReuniteError):
    """Writing failed for lack of space; nothing half-written is left behind."""


class DatasetLayoutError(ReuniteError):
    """A folder does not have the expected data set layout (e.g. Market-1501)."""
