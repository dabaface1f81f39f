"""One short example per provider client, run against the local sandboxes (no network,
no credit). Run it: `.venv/bin/python examples/providers.py`; tests/test_examples.py does."""

from datetime import datetime, timedelta
from pathlib import Path

from smsxml.feeds import feed_from_xml
from smsxml.providers import Allmysms, Easysms, Isms, Net2sms, OutgoingMessage, SmsPartner
from smsxml.providers.allmysms import DATE_FORMAT, PARIS
from smsxml.sandbox import SandboxServer

with SandboxServer() as sandbox:  # or `smsxml sandbox` in another terminal
    # net2sms: an API key replaces username/password
    with Net2sms(sandbox.client_url("net2sms"), key="demo-key") as net2sms:
        sent = net2sms.send_sms("306912345678", "Hello", sender="Shop")
        print("net2sms", sent, net2sms.balance())

    # easysms: HTTP Basic auth
    with Easysms(sandbox.client_url("easysms"), "demo", "demo") as easysms:
        print("easysms", easysms.send_sms("306912345678", "Hello", originator="Shop"))

    # SMS Partner: apiKey in the JSON body
    with SmsPartner(sandbox.client_url("smspartner"), "demo-key") as partner:
        print("smspartner", partner.send_sms(["33612345678"], "Bonjour", sender="Boutique"))

    # iSMS: several recipients in one call, one message id
    with Isms(sandbox.client_url("isms"), "demo", "demo") as isms:
        message_id = isms.submit(
            "Shop", ["306912345678", "306912345679"], "Γειά σου", coding="UTF-8"
        )
        print("isms", message_id, isms.query(message_id, "306912345678"))

    # allmysms: feeds built from the generated classes
    with Allmysms(sandbox.client_url("allmysms"), login="demo", api_key="demo-key") as allmysms:
        feed = feed_from_xml(Path(__file__).with_name("campaign.xml").read_bytes())
        # scheduled for tomorrow 09:30 in Paris: allmysms answers 101 (scheduled)
        tomorrow = datetime.now(PARIS) + timedelta(days=1)
        feed.date = tomorrow.replace(hour=9, minute=30, second=0).strftime(DATE_FORMAT)
        print("allmysms", allmysms.send_feed(feed))

    # one interface for all five: what the SOAP bridge uses
    with Isms(sandbox.client_url("isms"), "demo", "demo") as provider:
        submitted = provider.send(
            OutgoingMessage(sender="Shop", recipients=["306912345678"], text="Hi")
        )
        print(provider.statuses(submitted))
