from collections.abc import Callable, Iterable
from typing import Any

from spyne import Application

class WsgiApplication:
    def __init__(
        self,
        app: Application,
        chunked: bool = True,
        max_content_length: int = 2097152,
        block_length: int = 8192,
    ) -> None: ...
    def __call__(
        self, req_env: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]: ...
