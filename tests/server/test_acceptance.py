"""Sends coming in: charged and stored with their recipient list in one transaction,
refused whole when the account cannot pay, expanded into delivery rows exactly once."""

from __future__ import annotations

import string

import pytest

from smsxml.errors import InsufficientCredit
from smsxml.server.acceptance import new_message_id
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
