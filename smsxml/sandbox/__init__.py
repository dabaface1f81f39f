"""Local, stateful simulators of the five provider APIs, on one port.

``smsxml sandbox`` serves them from the command line; :class:`SandboxServer` runs them
in-process (tests, notebooks). Each provider's module mirrors its real paths under a
prefix (``/net2sms/api/…``, ``/easysms/srvauth/index``, ``/smspartner/v1/…``,
``/isms/api/http/….php``, ``/allmysms/http/9.0/…``), so pointing a client at the sandbox
is one base-URL setting. Decisions where vendor pages are silent: ``docs/providers/``.
"""

from smsxml.sandbox.app import PREFIXES, SandboxServer, make_app
from smsxml.sandbox.core import DeliverySchedule, Faults, Sandbox, SandboxConfig

__all__ = [
    "PREFIXES",
    "DeliverySchedule",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "make_app",
]
