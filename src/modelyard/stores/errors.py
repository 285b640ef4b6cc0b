"""What a store's failures mean to a user, whatever the store: S3 or PostgreSQL.

A driver's text can carry hosts, request ids, user names and, from some servers, credentials: it is
read to tell the kind of failure, never passed on. Each message names the connection and what to check.
"""

from modelyard.errors import InputNotFound, ModelyardError


class StoreUnavailable(ModelyardError):
    """The store did not answer (network, DNS, a server down), after retries."""

    status_code = 503
    code = "store_unavailable"


class StoreAccessDenied(ModelyardError):
    """The store refused the connection's credentials, or their rights."""

    status_code = 503
    code = "store_access_denied"


class StoreObjectNotFound(InputNotFound):
    """No such bucket, object, schema or table."""

    code = "store_object_not_found"
