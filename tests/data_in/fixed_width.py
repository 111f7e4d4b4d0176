"""Writes records of the annual statement (JSONL) as a mainframe would
export them: fixed-length records in an EBCDIC code page, amounts packed
(COMP-3) or zoned, a header, a record, an address record and transaction
details per customer, and a trailer with the record count and the sum of
the transaction amounts.

Python's own codecs encode the text and this file packs the numbers, so
the test reads with letterpress what another implementation wrote.

usage: fixed_width.py IN.jsonl OUT CODEPAGE [--count N] [--sum X]
(--count and --sum write a wrong trailer on purpose)
"""
import json
import sys
from decimal import Decimal

LENGTH = 200


def text(value, width, codepage):
    data = (value or "").encode(codepage)
    if len(data) > width:
        raise SystemExit(f"{value!r} is longer than {width}")
    return data + " ".encode(codepage) * (width - len(data))


def packed(value, width, decimals):
    units = int(Decimal(str(value)).scaleb(decimals))
    digits = str(abs(units)).rjust(width * 2 - 1, "0")
    nibbles = [int(d) for d in digits] + [0xD if units < 0 else 0xC]
    return bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def zoned(value, width, decimals, codepage):
    units = int(Decimal(str(value)).scaleb(decimals))
    digits = str(abs(units)).rjust(width, "0")
    data = bytearray(digits.encode(codepage))
    data[-1] = (0xD0 if units < 0 else 0xC0) | (data[-1] & 0x0F)
    return bytes(data)


def record(*parts):
    data = b"".join(parts)
    assert len(data) <= LENGTH, len(data)
    return data + b"\x40" * (LENGTH - len(data))


def main():
    src, out, cp = sys.argv[1], sys.argv[2], sys.argv[3]
    count = sum_override = None
    if "--count" in sys.argv:
        count = int(sys.argv[sys.argv.index("--count") + 1])
    if "--sum" in sys.argv:
        sum_override = Decimal(sys.argv[sys.argv.index("--sum") + 1])
    rows = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    t = lambda v, w: text(v, w, cp)
    with open(out, "wb") as f:
        first = rows[0]
        f.write(record(t("HD", 2), t(first["period_start"], 10), t(first["period_end"], 10)))
        total = Decimal(0)
        for r in rows:
            f.write(record(
                t("CU", 2), t(r["customer_id"], 10), t(r.get("title"), 6),
                t(r["first_name"], 30), t(r["last_name"], 50), t(r["account_name"], 30),
                t(r["account_number"], 8), t(r["currency"], 3), packed(r["opening_balance"], 7, 2),
                t(r.get("accessibility"), 15),
            ))
            a = r["address"]
            f.write(record(
                t("AD", 2), t(a["line1"], 60), t(a.get("line2"), 30), t(a["postcode"], 10),
                t(a["city"], 30), t(a.get("country"), 30),
            ))
            for x in r["transactions"]:
                total += Decimal(str(x["amount"]))
                f.write(record(t("TX", 2), t(x["date"], 10), t(x["description"], 40), zoned(x["amount"], 9, 2, cp)))
        n = len(rows) if count is None else count
        s = total if sum_override is None else sum_override
        f.write(record(t("TR", 2), zoned(n, 9, 0, cp), packed(s, 10, 2)))


main()
