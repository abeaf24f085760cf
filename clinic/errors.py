class RecordLocked(Exception):
    """The record is finalized: it can be read, not changed (HTTP 409)."""

    def __init__(self, message="This encounter is finalized and can no longer be changed."):
        super().__init__(message)
        self.message = message
