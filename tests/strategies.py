"""Hypothesis strategies in one place (as attrs keeps its own): feeds, JSON and XML text.

test_text, test_numbers, test_schedule and tests/server keep theirs beside their tests
for now; a strategy a second module draws belongs here.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from smsxml.generated.allmysms import Data, Recipient

__all__ = ["allmysms_feeds", "feed_texts", "json_feed_documents", "xml_texts"]

#: a header or PARAM value: printable, no "#" (no stray placeholder), nothing to strip
feed_texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="#"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s.strip())


@st.composite
def allmysms_feeds(draw: st.DrawFn) -> Data:
    """Valid allmysms feeds: 0-3 placeholders with their PARAMs, 1-4 recipients, an
    optional campaign name and sender."""
    dynamic = draw(st.integers(0, 3))
    message = draw(feed_texts) + "".join(f" #param_{n}#" for n in range(1, dynamic + 1))
    count = draw(st.integers(1, 4))
    recipients = [
        Recipient(
            mobilephone=str(33612000000 + i),
            **{f"param_{n}": draw(feed_texts) for n in range(1, dynamic + 1)},
        )
        for i in range(count)
    ]
    return Data(
        message=message,
        dynamic=dynamic or None,
        campaign_name=draw(st.none() | feed_texts.filter(lambda s: len(s) <= 255)),
        tpoa=draw(st.none() | st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,10}", fullmatch=True)),
        flash=None,
        sms=recipients,
    )


_value = st.text(alphabet=st.sampled_from('ab{}[]:,"\\\né ζ'), max_size=8)
_spacing = st.sampled_from(["", " ", "\n", "\n  ", "\t"])


@st.composite
def json_feed_documents(draw: st.DrawFn) -> str:
    """JSON feeds with strings full of braces, quotes and escapes, nested values and
    irregular spacing: everything that could lead a tokenizer astray."""
    entries = [json.dumps(draw(_value)), "-1.5e3", "true"][: draw(st.integers(0, 3))]
    for _ in range(draw(st.integers(0, 6))):
        fields: dict[str, object] = {"MOBILEPHONE": draw(_value)}
        if draw(st.booleans()):
            fields["PARAM_1"] = draw(st.one_of(_value, st.lists(_value, max_size=2)))
        if draw(st.booleans()):
            fields["X"] = {"y": [draw(_value), {"z": draw(_value)}]}
        entries.append(json.dumps(fields, ensure_ascii=draw(st.booleans())))
    gap = draw(_spacing)
    data = {"MESSAGE": draw(_value), "NOTE": {"SMS": [draw(_value)]}}
    head = json.dumps(data, ensure_ascii=False)[1:-1]
    return f'{{{gap}"X": {{"DATA": {{}}}},{gap}"DATA":{gap}{{{head}, "SMS": [{gap}' + (
        f",{gap}".join(entries) + f"{gap}]}}}}"
    )


#: any text an XML 1.0 document can hold (its Char production): tab, line feed, carriage
#: return and everything from U+0020 on but surrogates, U+FFFE and U+FFFF
xml_texts = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff", min_codepoint=0x20
    )
    | st.sampled_from("\t\n\r"),
    max_size=60,
)
