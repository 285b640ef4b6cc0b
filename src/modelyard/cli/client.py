"""The REST API as the CLI uses it, from any machine that can reach it (MODELYARD_API_URL)."""

from typing import Any

import httpx

from modelyard.config import Settings
from modelyard.errors import ModelyardError


class ApiError(ModelyardError):
    """An error answer of the API, or no answer at all."""

    def __init__(self, message: str, code: str = "api_unreachable", status: int = 0, details: Any = None):
        super().__init__(message, details if isinstance(details, list) else [])
        self.code = code
        self.status_code = status or 503


class ApiClient:
    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self.url = settings.api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def request(self, method: str, path: str, expect_error: bool = False, **kwargs: Any) -> Any:
        """The JSON answer; an error answer raises ApiError, unless expect_error (e.g. /readyz's 503)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the modelyard API at {self.url} ({exc}); is it running? "
                "Point MODELYARD_API_URL at it"
            ) from exc
        if response.is_success or (
            expect_error and response.headers.get("content-type") == "application/json"
        ):
            return response.json()
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(
                f"HTTP {response.status_code} from {self.url}{path}: {response.text[:200]}",
                f"http_{response.status_code}",
                response.status_code,
            ) from None
        raise ApiError(error["message"], error["code"], response.status_code, error.get("details"))

    def close(self) -> None:
        self.http.close()
