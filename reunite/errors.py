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


class CheckpointError(ReuniteError):
    """A weights file (PyTorch checkpoint, ONNX model) cannot be used for a network."""


class UnreadableCheckpointError(CheckpointError):
    """The file is missing, truncated, or not a weights file at all; the message names it."""


class CheckpointMismatchError(CheckpointError):
    """The weights do not fit the network: missing, unexpected or differently shaped tensors
    (usually another architecture or width); the message names the keys."""


class ModelNotFoundError(ReuniteError):
    """A model name or path that names no model; the message lists what would work."""


class ModelIntegrityError(ReuniteError):
    """A model file whose sha256 differs from its card (corrupt, truncated or replaced)."""


class ModelCardError(ReuniteError):
    """A ``card.json`` that cannot be read, or that contradicts the model it describes."""


class DownloadError(ReuniteError):
    """A model file could not be fetched; the message says where to put it by hand."""


class SourceError(ReuniteError):
    """Footage that cannot be opened or read (missing file, not a video, an unreachable stream)."""


class UnknownCameraError(ReuniteError):
    """A camera id that is not registered; the message says how to register it."""


class StoreError(ReuniteError):
    """The database cannot be opened, is of an unknown schema version, or refused a write."""


class VectorIndexError(ReuniteError):
    """A vector index that cannot be used (wrong dimension or model version, corrupt file)."""


class JobConflictError(ReuniteError):
    """Another job already works on the same camera or index; the message names it."""


class NotFoundError(ReuniteError):
    """A sighting, case, camera or job id that does not exist."""


class AuthenticationError(ReuniteError):
    """Wrong user name or password, a disabled account, or a missing or expired token."""


class PermissionDeniedError(ReuniteError):
    """The user is known but their role may not do this; the message names the roles that may."""


class ConflictError(ReuniteError):
    """The request contradicts the current state (a closed case, an existing user name)."""


class UploadError(ReuniteError):
    """An uploaded file that is refused; nothing of it is stored."""


class UploadTooLargeError(UploadError):
    """Larger than the upload limit (bytes) or the pixel limit (a decompression bomb)."""


class UnsupportedMediaError(UploadError):
    """Not a JPEG, PNG or WebP by its content, whatever its name or declared type says."""


class BadImageError(UploadError):
    """Claims to be an image but cannot be decoded completely (truncated, corrupt, empty)."""


class NoPersonFoundError(UploadError):
    """A readable photo in which no person could be found; the message says how to help."""
