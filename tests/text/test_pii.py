import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.pii import (
    PII_KINDS,
    PLACEHOLDERS,
    PiiConfig,
    apply_pii,
    card_issuer_ok,
    find_pii,
    luhn_ok,
    mask_pii,
    my_number_ok,
)

TRUE_POSITIVES = {
    "email": ["taro.yamada@example.co.jp", "a+b@mail.example.com", "user_1@sub.domain.org"],
    "phone": [
        "03-1234-5678",
        "06-1234-5678",
        "075-123-4567",
        "0166-12-3456",
        "090-1234-5678",
        "09012345678",
        "0120-123-456",
        "0800-123-4567",
        "050-1234-5678",
        "03(1234)5678",
        "(03)1234-5678",
        "(03) 1234-5678",
        "03 1234 5678",
        "03ー1234ー5678",
        "+81-3-1234-5678",
        "+81 90 1234 5678",
        "+818012345678",
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "(415) 555-2671",
        "415-555-2671",
    ],
    "ip": [
        "8.8.8.8",
        "203.104.209.1",
        "1.2.3.4",
        "2001:4860:4860::8888",
        "2400:4050:1234:5678:9abc:def0:1234:5678",
        "::ffff:8.8.8.8",
    ],
    "credit_card": [
        "4111 1111 1111 1111",
        "4111111111111111",
        "5500-0000-0000-0004",
        "3530111333300000",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
    ],
    "my_number": [
        "マイナンバー: 123456789018",
        "個人番号 1234-5678-9018",
        "My Number 1234 5678 9018",
    ],
}
MUST_SURVIVE = [
    "2024-01-15",
    "2024/01/15",
    "令和6年1月15日",
    "12:30:45",
    "12:30",
    "〒100-0001",
    "100-0001",
    "¥1,234,567",
    "1,234円",
    "$19.99",
    "ISBN 978-4-7741-8411-1",
    "ISBN4-7741-8411-5",
    "ISBN 0-306-40615-2",
    "12345678901234567890",
    "4111111111111112",
    "1234567890123456",
    "123456789018",
    "注文番号 123456789018",
    "Python 3.11.4",
    "v1.2.3.4",
    "バージョン 1.2.3.4",
    "セクション 6.4.4.2",
    "127.0.0.1",
    "192.168.0.1",
    "10.0.0.1",
    "192.0.2.1",
    "239.252.197.2",
    "::1",
    "2001:db8::1",
    "fe80::1",
    "std::vector",
    "a::b",
    "+000000120",
    "+5",
    "0x7fff",
    "ver. 2.0",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "@property",
    "user@localhost",
    "5.5511151231257827e-017",
    "0.1000000000000000055511151231257827021181583404541015625",
    "0.09012345678",
    "4111111111111111e5",
    "1-2-3",
    "第3章 5-1",
    "03-12-2024",
    "電話番号は後日",
]


@pytest.mark.parametrize("kind,samples", TRUE_POSITIVES.items())
def test_true_positives(kind, samples):
    for sample in samples:
        text = f"連絡先は {sample} です。"
        spans = find_pii(text)
        assert [s.kind for s in spans] == [kind], sample
        masked, counts = mask_pii(text)
        assert PLACEHOLDERS[kind] in masked and counts == {kind: 1}, sample


@pytest.mark.parametrize("text", MUST_SURVIVE)
def test_false_positives_survive(text):
    for form in (f"これは {text} です。", text):
        assert mask_pii(form) == (form, {}), form


def test_numbered_headings_are_not_addresses():
    text = "前の節。\n\n6.6.2.5. 一人称を使わない\n\n本文は 6.6.2.5. で終わる"
    assert [text[s.start : s.end] for s in find_pii(text)] == ["6.6.2.5"]  # the second one


def test_full_width_and_nfkc_give_the_same_matches():
    raw = (
        "電話：０３－１２３４－５６７８、"
        "メール：ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ、ＩＰ：８．８．８．８"
    )
    nfkc = unicodedata.normalize("NFKC", raw)
    assert raw != nfkc
    for text in (raw, nfkc):
        masked, counts = mask_pii(text)
        assert counts == {"phone": 1, "email": 1, "ip": 1}
        assert "<PHONE>" in masked and "<EMAIL>" in masked and "<IP>" in masked
    # Spans index the input itself, so the raw text keeps its other full-width characters.
    assert mask_pii(raw)[0] == "電話：<PHONE>、メール：<EMAIL>、ＩＰ：<IP>"


def test_modes_and_kinds():
    text = "mail a@example.com or 090-1234-5678"
    assert apply_pii(text, PiiConfig()) == (text, {})
    assert apply_pii(text, PiiConfig(mode="mask")) == (
        "mail <EMAIL> or <PHONE>",
        {"email": 1, "phone": 1},
    )
    assert apply_pii(text, PiiConfig(mode="drop")) == (None, {"email": 1, "phone": 1})
    assert apply_pii("何もない", PiiConfig(mode="drop")) == ("何もない", {})
    only_email = PiiConfig(mode="mask", kinds=("email",))
    assert apply_pii(text, only_email) == ("mail <EMAIL> or 090-1234-5678", {"email": 1})
    with pytest.raises(ValueError, match="unknown PII mode"):
        PiiConfig(mode="hash")
    with pytest.raises(ValueError, match="unknown PII kinds"):
        PiiConfig(kinds=("ssn",))


def test_private_ips_and_cue_free_my_numbers_on_request():
    config = PiiConfig(mode="mask", public_ips_only=False, my_number_needs_cue=False)
    assert mask_pii("192.168.0.1 ::1 123456789018", config)[1] == {"ip": 2, "my_number": 1}


def test_overlaps_take_the_first_kind():
    # An e-mail's digits are not a phone; an embedded IPv4 belongs to its IPv6 address.
    assert [s.kind for s in find_pii("09012345678@example.com")] == ["email"]
    assert [s.kind for s in find_pii("::ffff:8.8.8.8")] == ["ip"]


def test_checks():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_issuer_ok("4111111111111111") and not card_issuer_ok("1234567890123452")
    assert my_number_ok("123456789018") and not my_number_ok("123456789012")


def test_several_in_one_text_keep_order():
    text = "A: a@example.com, B: 8.8.8.8, C: 03-1234-5678"
    assert [s.kind for s in find_pii(text)] == ["email", "ip", "phone"]
    assert mask_pii(text)[0] == "A: <EMAIL>, B: <IP>, C: <PHONE>"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-.:@ab()+ 　０１－＠。", max_size=60))
def test_masking_is_total_and_idempotent(text):
    masked, counts = mask_pii(text)
    assert sum(counts.values()) == len(find_pii(text))
    assert set(counts) <= set(PII_KINDS)
    assert mask_pii(masked) == (masked, {})
