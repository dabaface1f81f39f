"""The smsxml SOAP bridge from Python with zeep: send, poll the status, handle a fault.

    pip install zeep
    python python_zeep.py 'http://127.0.0.1:8080/soap?wsdl' 306912345678

zeep reads the WSDL at run time: no code generation. Prints one line per fact:
id=..., status <mobile>=<status>, fault=..., code=...
"""

import os
import sys
import time

import zeep

wsdl = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.environ.get("SMSXML_WSDL", "http://127.0.0.1:8080/soap?wsdl")
)
mobiles = sys.argv[2:] or ["306912345678"]
username = os.environ.get("SMSXML_USERNAME", "demo")
password = os.environ.get("SMSXML_PASSWORD", "demo")

client = zeep.Client(wsdl)
sms = client.service


def send(password: str, text: str) -> str:
    # "from" is a Python keyword: pass the parameters as a dict.
    return sms.send(
        **{
            "username": username,
            "password": password,
            "from": "smsxml",
            "to": {"recipients": mobiles},
            "message": text,
            "coding": "GSM",
            "flash": False,
        }
    )


message_id = send(password, "Hello from zeep")
print(f"id={message_id}")

# Queued, then Pending, then Delivered or Failed: poll, but not forever.
statuses: dict[str, str] = {}
deadline = time.monotonic() + 60
waiting = list(mobiles)
while waiting and time.monotonic() < deadline:
    for mobile in list(waiting):
        statuses[mobile] = sms.query(username, password, message_id, mobile)
        if statuses[mobile] in ("Delivered", "Failed"):
            waiting.remove(mobile)
    if waiting:
        time.sleep(0.25)
for mobile in mobiles:
    print(f"status {mobile}={statuses[mobile]}")

# Every refusal is a SOAP fault: the faultstring, and a stable code in its detail.
try:
    send(password + "-wrong", "Hello")
    print("fault=none")
except zeep.exceptions.Fault as fault:
    print(f"fault={fault.message}")
    # the WSDL's local elements are qualified: code is in the service's namespace too
    tns = "{http://smsxml.org/isms/1}"
    print(f"code={fault.detail.findtext(f'{tns}smsFault/{tns}code')}")
