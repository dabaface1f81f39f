"""The smsxml SOAP bridge from Python with suds (suds-community): send, poll, handle a fault.

    pip install suds-community
    python python_suds.py 'http://127.0.0.1:8080/soap?wsdl' 306912345678

suds reads the WSDL at run time: no code generation. Prints one line per fact:
id=..., status <mobile>=<status>, fault=..., code=...
"""

import os
import sys
import time

from suds import WebFault
from suds.client import Client

wsdl = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.environ.get("SMSXML_WSDL", "http://127.0.0.1:8080/soap?wsdl")
)
mobiles = sys.argv[2:] or ["306912345678"]
username = os.environ.get("SMSXML_USERNAME", "demo")
password = os.environ.get("SMSXML_PASSWORD", "demo")

client = Client(wsdl, cache=None, timeout=30)
sms = client.service

to = client.factory.create("{http://smsxml.org/isms/1}Recipients")
to.recipients = mobiles

# suds unwraps the document/literal wrapper: positional arguments in the schema's order
# (username, password, from, to, message, coding, flash).
message_id = sms.send(username, password, "smsxml", to, "Hello from suds", "GSM", False)
print(f"id={message_id}")

# Queued, then Pending, then Delivered or Failed: poll, but not forever.
statuses: dict[str, str] = {}
deadline = time.monotonic() + 60
waiting = list(mobiles)
while waiting and time.monotonic() < deadline:
    for mobile in list(waiting):
        statuses[mobile] = str(sms.query(username, password, message_id, mobile))
        if statuses[mobile] in ("Delivered", "Failed"):
            waiting.remove(mobile)
    if waiting:
        time.sleep(0.25)
for mobile in mobiles:
    print(f"status {mobile}={statuses[mobile]}")

# Every refusal is a WebFault: the faultstring, and a stable code in its detail.
try:
    sms.send(username, password + "-wrong", "smsxml", to, "Hello", "GSM", False)
    print("fault=none")
except WebFault as error:
    print(f"fault={error.fault.faultstring}")
    print(f"code={error.fault.detail.smsFault.code}")
