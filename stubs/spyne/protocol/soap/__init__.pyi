from typing import Any

from spyne.protocol import ProtocolBase

class Soap11(ProtocolBase):
    def __init__(self, app: Any = None, validator: Any = None) -> None: ...
