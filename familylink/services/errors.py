"""Domain errors: the view turns them into a message beside a field, a flash, or a 404.

`NotFound` is not a `DomainError`: code that handles a refusal (`except DomainError`) must
never turn a 404 into a message that says the object exists.
"""


class DomainError(Exception):
    """A rule refused the request. `field` names the form field the message belongs to."""

    status_code = 400

    def __init__(self, message: str, field: str | None = None):
        # A lazy message (a module-level constant) is said in the language of the request
        # that raises it, and stays a plain string (a flash is kept in the session).
        message = str(message)
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    status_code = 400


class InvalidToken(DomainError):
    status_code = 400


class NotFound(Exception):
    """The object does not exist or the actor may not know it exists: always answered as 404."""

    status_code = 404

    def __init__(self, message: str = "Not found."):
        super().__init__(message)
        self.message = message
        self.field = None


class Conflict(DomainError):
    """The request lost a race or repeats one that already happened."""

    status_code = 409
