"""The REST API as the CLI uses it, from any machine that can reach it (MODELYARD_API_URL)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.config import Settings
from modelyard.errors import ModelyardError
from modelyard.fsutil import atomic_path

if TYPE_CHECKING:
    import httpx


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
        self.has_key = settings.api_key is not None
        import httpx  # here: `modelyard serve` never needs it, and it costs its process 5 MB

        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def request(self, method: str, path: str, expect_error: bool = False, **kwargs: Any) -> Any:
        """The JSON answer; an error answer raises ApiError, unless expect_error (e.g. /readyz's 503)."""
        with self._answer(method, path, **kwargs) as response:
            response.read()
            if response.is_success or (
                expect_error and response.headers.get("content-type") == "application/json"
            ):
                return response.json()
            raise self._error(response, path)

    def download(self, path: str, target: Path) -> int:
        """Stream a file the API answers with into `target` (written atomically); its size."""
        with self._answer("GET", path) as response:
            if not response.is_success:
                response.read()
                raise self._error(response, path)
            with atomic_path(target) as tmp, tmp.open("wb") as sink:
                for block in response.iter_bytes(1 << 20):
                    sink.write(block)
        return target.stat().st_size

    @contextmanager
    def _answer(self, method: str, path: str, **kwargs: Any) -> Iterator["httpx.Response"]:
        import httpx

        try:
            with self.http.stream(method, path, **kwargs) as response:
                yield response
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the modelyard API at {self.url} ({exc}); is it running? "
                "Point MODELYARD_API_URL at it"
            ) from exc

    def _error(self, response: "httpx.Response", path: str) -> ApiError:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return ApiError(
                f"HTTP {response.status_code} from {self.url}{path}: {response.text[:200]}",
                f"http_{response.status_code}",
                response.status_code,
            )
        message = error["message"]
        if response.status_code == 401:
            message = (
                f"the API at {self.url} wants its key, and this command "
                + ("sent another one" if self.has_key else "has none")
                + ": export MODELYARD_API_KEY=KEY (the stack's key is in its .env), or point "
                "MODELYARD_ENV_FILE at a file that sets it (e.g. MODELYARD_ENV_FILE=.env)"
            )
        return ApiError(message, error["code"], response.status_code, error.get("details"))

    def close(self) -> None:
        self.http.close()
