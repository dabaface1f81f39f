"""The iSMS-compatible SOAP bridge (imported as ``smsxml.server``)."""
