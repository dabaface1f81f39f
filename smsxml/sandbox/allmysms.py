"""The allmysms HTTP API v9 sandbox: ``/allmysms/http/9.0/<call>[/]``, GET or POST form.

Calls: sendSms, simulateCampaign (feed in ``smsData``, answer XML ``<RESPONSE>`` or, with
``returnformat=json``, JSON), getInfo, getAcks, getAckBySmsId, deleteCampaign (JSON).
Every call authenticates with ``login`` + ``apiKey``. A feed is judged check by check
(the order is in the docs) and the first failing check answers; credits are one per SMS
part per recipient, counted after ``#param_n#`` substitution.

The delivery webhook is set in the customer area at allmysms, so here it is a setting
per login: ``AllmysmsApp(sandbox, webhooks={"demo": url})`` or a POST of ``login``,
``apiKey``, ``url`` to the sandbox-only ``/allmysms/sandbox/webhook``. Messages take the
webhook configured when they are sent. Decisions: docs/providers/allmysms.md.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import etree
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as HttpResponse

from smsxml import binding, xmlsafe
from smsxml.errors import BadInput
from smsxml.feedrules import PLACEHOLDER, render
from smsxml.feeds import json_to_element
from smsxml.generated.allmysms import Data, Flag, Response, SmsId, SmsIds
from smsxml.numbers import is_valid_msisdn
from smsxml.providers.allmysms import DATE_FORMAT, PARIS
from smsxml.sandbox.core import Account, Sandbox, SandboxMessage
from smsxml.status import DeliveryState
from smsxml.text import Encoding, count_parts, encoding_for

__all__ = ["ACK_COMMENTS", "STATUS_TEXTS", "AllmysmsApp"]

PROVIDER = "allmysms"
_AFTER = "Flux XML invalide ou incomplet après la balise "
_RECREDIT = "Veuillez re-créditer votre compte sur AllMySMS.com"
#: the vendor's table, word for word; the tags its web page lost are put back (decision)
STATUS_TEXTS = {
    100: "Le message a été envoyé",
    101: "Le message a été programmé pour un envoi différé",
    102: "Problème de connexion – Aucun compte ne correspond aux clientcode et passcode spécifiés",
    103: f"Crédit SMS épuisé. {_RECREDIT}",
    104: "Crédit insuffisant pour traiter cet envoi. A utiliser: {used} Crédits, "
    f"Disponibles: {{available}} Crédits. {_RECREDIT}",
    105: "Flux XML Vide",
    106: _AFTER + "<DATA>",
    107: _AFTER + "<TPOA>",
    108: "Le code CLIENT donné dans le flux XML est incorrect, il doit correspondre au "
    "clientcode en majuscule",
    109: _AFTER + "<SMS>",
    110: "Message non défini (vide) dans le flux XML",
    111: "Le message dépasse 640 caractères",
    112: _AFTER + "<DYNAMIC>",
    113: "Certains numéros de téléphone sont invalides ou non pris en charge",
    114: "Aucun numéro de téléphone valide dans le flux. Veuillez-vous référer à la "
    "documentation en ligne pour connaitre les formats valides.",
    115: "Flux XML invalide ou date mal formatée entre les balises <DATE> et </DATE>",
    117: "Balise <TRACKING> – Lien trop long, dépasse les 80 caractères",
    118: "Le compte maître spécifié n’existe pas",
}
#: acknowledgement statut → comment (the words of public clients' samples)
ACK_COMMENTS = {
    1: "Delivered",
    2: "Not delivered",
    3: "Transmitted to operator",
    4: "Message rejected",
    5: "SMS rejected",
}
_STATUT = {DeliveryState.PENDING: 3, DeliveryState.DELIVERED: 1, DeliveryState.FAILED: 2}
#: a name of 3-11 letters and digits starting with a letter, or 3-16 digits (the Tpoa
#: type of schemas/allmysms/feed.xsd, where the vendor facts behind it are written)
_TPOA = re.compile(r"[A-Za-z][A-Za-z0-9]{2,10}|[0-9]{3,16}")
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_MAX_LENGTH, _MAX_LINK = 640, 80


class _Refused(Exception):
    def __init__(self, status: int, invalid: str | None = None, **text_args: str) -> None:
        super().__init__(status)
        self.status = status
        self.invalid = invalid
        self.text = STATUS_TEXTS[status].format(**text_args)


@dataclass
class _Plan:
    """A feed that passed every check: what it would send, cost and when."""

    data: Data
    sends: list[tuple[str, str, int]]  # (number, text after substitution, parts)
    invalid: list[str]
    send_at: float
    scheduled: bool

    @property
    def cost(self) -> Decimal:
        return Decimal(sum(parts for _, _, parts in self.sends))


@dataclass
class _Campaign:
    id: str
    username: str
    send_at: float
    cli_msg_id: str
    sms_ids: list[str] = field(default_factory=list)
    deleted: bool = False


class AllmysmsApp:
    """WSGI application of the allmysms sandbox (mounted under ``/allmysms``)."""

    def __init__(self, sandbox: Sandbox, webhooks: Mapping[str, str] | None = None) -> None:
        self.sandbox = sandbox
        #: login → webhook URL ("the webhook set in the customer area")
        self.webhooks: dict[str, str] = dict(webhooks or {})
        self.campaigns: dict[str, _Campaign] = {}
        sandbox.callbacks[PROVIDER] = self._callback
        self._reads: dict[str, Callable[[Account, MultiDict[str, str]], dict[str, Any]]] = {
            "getInfo": self._get_info,
            "getAcks": self._get_acks,
            "getAckBySmsId": self._get_ack_by_sms_id,
            "deleteCampaign": self._delete_campaign,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.rstrip("/")
        params = request.values
        call = path.removeprefix("/http/9.0/") if path.startswith("/http/9.0/") else None
        account = self._account(params)
        if call in ("sendSms", "simulateCampaign"):
            as_json = params.get("returnformat", "").lower() == "json"
            answer = self._feed_call(account, params, simulate=call == "simulateCampaign")
            response = _xml(answer) if not as_json else _json(_answer_json(answer, call))
        elif call in self._reads or path == "/sandbox/webhook":
            if account is None:
                response = _json({"status": 102, "statusText": STATUS_TEXTS[102]})
            elif call is None:
                self.webhooks[account.username] = params.get("url", "")
                response = _json({"status": "OK"})
            else:
                response = _json(self._reads[call](account, params))
        else:
            response = HttpResponse("Not Found", 404)
        return response(environ, start_response)

    def _account(self, params: MultiDict[str, str]) -> Account | None:
        account = self.sandbox.accounts[PROVIDER].get(params.get("login", ""))
        key = params.get("apiKey", "")
        if account is None or not key or not hmac.compare_digest(account.api_key, key):
            return None
        return account

    # sendSms, simulateCampaign --------------------------------------------------------

    def _feed_call(
        self, account: Account | None, params: MultiDict[str, str], *, simulate: bool
    ) -> Response:
        try:
            if account is None:
                raise _Refused(102)
            if account.credits <= 0:
                raise _Refused(103)
            plan = self._plan(account, params.get("smsData", ""))
            if plan.cost > account.credits or not (
                simulate or self.sandbox.charge(account, plan.cost)
            ):
                raise _Refused(104, used=_num(plan.cost), available=_num(account.credits))
        except _Refused as refused:
            return Response(
                status=refused.status, status_text=refused.text, invalid_numbers=refused.invalid
            )
        status = 113 if plan.invalid else 101 if plan.scheduled else 100
        answer = Response(
            status=status, status_text=STATUS_TEXTS[status], invalid_numbers="|".join(plan.invalid)
        )
        answer.nb_contacts, answer.nb_sms = str(len(plan.sends)), _num(plan.cost)
        if simulate:
            answer.nb_credits = _num(plan.cost)
            return answer
        campaign = self._store(account, plan)
        answer.campaign_id, answer.credits = campaign.id, _num(account.credits)
        answer.credits_used = _num(plan.cost)
        answer.sms_ids = SmsIds(
            sms=[
                SmsId(phone_number=n, sms_id=i)
                for (n, _, _), i in zip(plan.sends, campaign.sms_ids, strict=True)
            ]
        )
        return answer

    def _plan(self, account: Account, sms_data: str) -> _Plan:
        """Judge a feed; the first failing check answers."""
        if not sms_data.strip():
            raise _Refused(105)
        root = _feed_tree(sms_data)
        client = root.find("CLIENT")  # the v8 feeds' account code, still tolerated
        if client is not None:
            root.remove(client)
            if (client.text or "").strip() != account.username.upper():
                raise _Refused(108)
        message = root.find("MESSAGE")
        if message is None or not (message.text or "").strip():
            raise _Refused(110)
        try:
            data = binding.bind(root, Data)
        except BadInput:
            raise _Refused(106) from None
        if len(data.message) > _MAX_LENGTH:
            raise _Refused(111)
        if data.tpoa and not _TPOA.fullmatch(data.tpoa):
            raise _Refused(107)
        now = send_at = time.time()
        if data.date:
            try:
                send_at = (
                    datetime.strptime(data.date, DATE_FORMAT).replace(tzinfo=PARIS).timestamp()
                )
            except ValueError:
                raise _Refused(115) from None
        if data.masteraccount and data.masteraccount not in self.sandbox.accounts[PROVIDER]:
            raise _Refused(118)
        used = {int(n) for n in PLACEHOLDER.findall(data.message)}
        if used and (data.dynamic is None or max(used) > data.dynamic):
            raise _Refused(112)
        sends, invalid = [], []
        for recipient in data.sms:
            params = [getattr(recipient, f"param_{n}") for n in range(1, 21)]
            if any(value is None for value in params[: data.dynamic or 0]):
                raise _Refused(109)
            text = render(data.message, params)
            if len(text) > _MAX_LENGTH:
                raise _Refused(111)
            if data.tracking is Flag.VALUE_1 and any(
                len(link) > _MAX_LINK for link in _LINK.findall(text)
            ):
                raise _Refused(117)
            if is_valid_msisdn(recipient.mobilephone):
                sends.append((recipient.mobilephone, text, count_parts(text)))
            else:
                invalid.append(recipient.mobilephone)
        if not sends:
            raise _Refused(114, invalid="|".join(invalid))
        return _Plan(data, sends, invalid, max(now, send_at), send_at > now)

    def _store(self, account: Account, plan: _Plan) -> _Campaign:
        data = plan.data
        campaign = _Campaign(
            self.sandbox.new_id("digits"), account.username, plan.send_at, data.climsgid or ""
        )
        for number, text, parts in plan.sends:
            message = SandboxMessage(
                provider=PROVIDER,
                id=self.sandbox.new_id("uuid"),
                username=account.username,
                sender=data.tpoa or "36180",  # allmysms' short code when no TPOA
                recipient=number,
                text=text,
                parts=parts,
                cost=Decimal(parts),
                unicode=encoding_for(text) is Encoding.UCS2,
                flash=data.flash is Flag.VALUE_1,
                send_at=plan.send_at,
                dlr_url=self.webhooks.get(account.username) or None,
                extra={"campaign_id": campaign.id},
            )
            self.sandbox.add(message)
            campaign.sms_ids.append(message.id)
        with self.sandbox.lock:
            self.campaigns[campaign.id] = campaign
        return campaign

    # read calls (JSON) ----------------------------------------------------------------

    def _get_info(self, account: Account, params: MultiDict[str, str]) -> dict[str, Any]:
        name = params.get("subAccount") or account.username
        target = self.sandbox.accounts[PROVIDER].get(name)
        if target is None:
            return _ko("Sous-compte introuvable")
        return {
            "status": "Active Account",
            "credits": _num(target.credits),
            "apiKey": target.api_key,
            "lastName": "",
            "firstName": "",
            "society": "",
            "email": "",
        }

    def _campaign(self, account: Account, campaign_id: str) -> _Campaign | None:
        """The caller's campaign, unless deleted: another login's ids are unknown ids."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign.username != account.username or campaign.deleted:
            return None
        return campaign

    def _get_acks(self, account: Account, params: MultiDict[str, str]) -> dict[str, Any]:
        if not params.get("campId"):
            return _ko("Paramètre campId manquant")
        campaign = self._campaign(account, params["campId"])
        if campaign is None:
            return _ko("Campagne introuvable")
        messages = [m for i in campaign.sms_ids for m in self.sandbox.find(PROVIDER, i)]
        acks = [ack for m in messages if (ack := self._ack(m))["statut"]]
        return {"acks": acks, "cliMsgId": campaign.cli_msg_id}

    def _get_ack_by_sms_id(self, account: Account, params: MultiDict[str, str]) -> dict[str, Any]:
        if not params.get("smsId"):
            return _ko("Paramètre smsId manquant")
        for message in self.sandbox.find(PROVIDER, params["smsId"]):
            if self._campaign(account, message.extra.get("campaign_id", "")) is not None:
                return self._ack(message)
        return _ko("SMS introuvable")

    def _delete_campaign(self, account: Account, params: MultiDict[str, str]) -> dict[str, Any]:
        if not params.get("campId"):
            return _ko("Paramètre campId manquant")
        with self.sandbox.lock:
            campaign = self._campaign(account, params["campId"])
            if campaign is None:
                return _ko("Campagne introuvable")
            if campaign.send_at <= time.time():
                return _ko("Campagne déjà envoyée")
            campaign.deleted = True
            for message in (m for i in campaign.sms_ids for m in self.sandbox.find(PROVIDER, i)):
                message.dlr_url = None
                self.sandbox.cancel(message)
                account.credits += message.cost
        return {"status": "OK"}

    # acknowledgements -----------------------------------------------------------------

    def _ack(self, message: SandboxMessage) -> dict[str, str]:
        """getAck* shape; statut "" while the message is still Queued."""
        state = self.sandbox.state(message)
        statut = _STATUT.get(state)
        return {
            "phoneNumber": message.recipient,
            "statut": str(statut or ""),
            "comment": ACK_COMMENTS[statut] if statut else "",
            "receptionDate": _reception_date(self.sandbox, message, state) if statut else "",
        }

    def _callback(
        self, message: SandboxMessage, state: DeliveryState
    ) -> tuple[str, dict[str, Any]] | None:
        """The webhook POSTs final acknowledgements only (a production client, esup-smsu,
        reads any status but 1 as a failure)."""
        if not state.final:
            return None
        statut = _STATUT[state]
        return "form", {
            "smsId": message.id,
            "status": str(statut),
            "statusText": ACK_COMMENTS[statut],
            "phoneNumber": message.recipient,
            "receptionDate": _reception_date(self.sandbox, message, state),
            "campaignId": message.extra.get("campaign_id", ""),
        }


# helpers ------------------------------------------------------------------------------


def _feed_tree(sms_data: str) -> etree._Element:
    """The feed as a ``<DATA>`` tree, XML or JSON; JSON keys in any case (the vendor's
    WINDEV sample writes ``DATA.date``), null values left out. 106 if unreadable."""
    text = sms_data.strip()
    try:
        if text.startswith("{"):
            root, _ = json_to_element(json.dumps(_upper_keys(json.loads(text))))
        else:
            root = xmlsafe.parse(text.encode("utf-8"), limits=xmlsafe.FEED_LIMITS)
    except (BadInput, ValueError):
        raise _Refused(106) from None
    if root.tag != "DATA":
        raise _Refused(106)
    return root


def _upper_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.upper(): _upper_keys(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_upper_keys(v) for v in value]
    return value


def _reception_date(sandbox: Sandbox, message: SandboxMessage, state: DeliveryState) -> str:
    schedule = sandbox.config.schedule
    delay = schedule.final_after if state.final else schedule.pending_after
    return datetime.fromtimestamp(message.send_at + delay, PARIS).strftime(DATE_FORMAT)


def _num(value: Decimal) -> str:
    """Credits as allmysms writes them: "340", not "340.00"."""
    return str(value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize())


def _ko(text: str) -> dict[str, Any]:
    return {"status": "KO", "statusText": text}


def _answer_json(answer: Response, call: str) -> dict[str, Any]:
    """The JSON answer: the XML answer's fields under their XML names, in schema order;
    status an integer, the rest strings, but simulateCampaign's counts are integers."""
    out: dict[str, Any] = {}
    for name, value in _fields(answer):
        if name == "smsIds":
            out[name] = [{"phoneNumber": e.phone_number, "smsId": e.sms_id} for e in value.sms]
        elif call == "simulateCampaign" and name in ("nbCredits", "nbContacts", "nbSms"):
            out[name] = int(value)
        else:
            out[name] = value
    return out


def _fields(answer: Response) -> Iterable[tuple[str, Any]]:
    for f in fields(answer):
        value = getattr(answer, f.name)
        if value is not None:
            yield f.metadata.get("name", f.name), value


def _json(payload: dict[str, Any]) -> HttpResponse:
    """Compact JSON with \\uXXXX escapes and escaped slashes: what PHP's json_encode
    writes."""
    body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/")
    return HttpResponse(body, 200, content_type="application/json; charset=utf-8")


def _xml(answer: Response) -> HttpResponse:
    return HttpResponse(binding.to_xml(answer), 200, content_type="text/xml; charset=utf-8")
