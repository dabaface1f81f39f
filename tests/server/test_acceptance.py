"""Sends coming in: charged and stored with their recipient list in one transaction,
refused whole when the account cannot pay, expanded into delivery rows exactly once."""

from __future__ import annotations

import string
from typing import Any

import pytest

from smsxml.errors import InsufficientCredit
from smsxml.server.acceptance import NewMessage, new_message_id
from smsxml.server.accounts import AccountInfo
from smsxml.server.store import Store

from .conftest import queue_send


def test_accept_charges_and_queues_atomically(store: Store) -> None:
    """A send is charged and queued in one go; a send it cannot pay leaves no trace."""
    account = store.accounts.add("acme", "pw", 5)
    message_id = queue_send(store, account, ["306912345678", "306912345679"], parts=2)
    assert store.accounts.get("acme").credits == 1
    assert store.status(account.id, message_id, "306912345679") == "Queued"
    with pytest.raises(InsufficientCredit):
        queue_send(store, account, ["306912345678"], parts=2)
    assert store.counts() == {"Queued": 2}
    assert store.accounts.ledger("acme") == [(5, 5, "credit", None), (-4, 1, "send", message_id)]


def test_a_large_send_is_one_row_until_expanded(store: Store) -> None:
    """10,000 recipients are stored at once in the message; the dispatcher's claim turns
    them into rows exactly once, and query answers Queued before and after."""
    account = store.accounts.add("acme", "pw", 20_000)
    recipients = [f"3069{i:08d}" for i in range(10_000)]
    message_id = queue_send(store, account, recipients)
    assert store.status(account.id, message_id, recipients[-1]) == "Queued"
    assert store.status(account.id, message_id, "306999999999") is None
    assert store.counts() == {"Queued": 10_000}
    assert store.acceptance.expand() == 10_000 and store.acceptance.expand() == 0
    assert store.status(account.id, message_id, recipients[-1]) == "Queued"
    assert store.counts() == {"Queued": 10_000}
    claimed = store.queue.claim("w", 20_000, lease=60)
    assert sorted(row.recipient for row in claimed) == recipients


def test_message_ids_look_like_ismss_and_do_not_repeat() -> None:
    """Ids are 12 characters of base32, as iSMS's are, drawn at random (60 bits): a
    thousand draws give a thousand ids."""
    drawn = {new_message_id() for _ in range(1000)}
    assert len(drawn) == 1000
    assert all(len(i) == 12 and set(i) <= set(string.ascii_uppercase + "234567") for i in drawn)


def test_a_group_commit_charges_each_send_in_turn(store: Store) -> None:
    """Sends committed together (one transaction; on PostgreSQL one statement each, sent
    at once) are charged in order: an account pays for what its credit covers, the send
    it cannot pay is refused alone, another account's sends are unaffected, and a send
    stored already (its answer lost) is neither stored nor charged twice."""
    acme = store.accounts.add("acme", "pw", 5)
    other = store.accounts.add("other", "pw", 10)
    common = {"sender": "Acme", "text": "hi", "coding": "GSM", "flash": False}

    def send(account: AccountInfo, recipients: list[str], **changes: Any) -> NewMessage:
        message = {
            "account": account,
            "message_id": new_message_id(),
            "pending": "\n".join(recipients),
            "count": len(recipients),
            "parts": 1,
            "send_at": None,
            "dlr_url": None,
        }
        return NewMessage(**(common | message | changes))

    first = send(acme, ["306912345670", "306912345671", "306912345672"])
    too_dear = send(acme, ["306912345673", "306912345674", "306912345675"])
    last = send(acme, ["306912345676", "306912345677"], dlr_url="http://127.0.0.1:9/dlr")
    theirs = send(other, ["306912345678"], parts=3, text="ώρα", coding="UTF-8")
    outcomes = store.acceptance.commit_many([first, too_dear, theirs, last])
    assert outcomes[0] == first.message_id and outcomes[2] == theirs.message_id
    assert isinstance(outcomes[1], InsufficientCredit) and outcomes[3] == last.message_id
    assert store.accounts.get("acme").credits == 0 and store.accounts.get("other").credits == 7
    assert store.accounts.ledger("acme") == [
        (5, 5, "credit", None),
        (-3, 2, "send", first.message_id),
        (-2, 0, "send", last.message_id),
    ]
    assert store.status(acme.id, too_dear.message_id, "306912345673") is None
    assert store.status(other.id, theirs.message_id, "306912345678") == "Queued"
    again = store.acceptance.commit_many([theirs, send(other, ["306912345679"])])
    assert again[0] == theirs.message_id and isinstance(again[1], str)
    assert store.accounts.get("other").credits == 6
    assert store.counts() == {"Queued": 7}
    store.acceptance.expand()
    stored = {row.recipient: row for row in store.queue.claim("w", 10, lease=60)}
    assert (stored["306912345678"].text, stored["306912345678"].coding) == ("ώρα", "UTF-8")
    assert (stored["306912345676"].sender, stored["306912345676"].flash) == ("Acme", False)
