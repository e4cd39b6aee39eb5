"""Bank statement files for tests: a camt.053 document built the way banks write them (booked entries with their
transaction details), and CSV text. Shared by the parser's unit tests and the reconciliation's integration test."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


@dataclass
class Entry:
    amount: Decimal  # signed: positive a credit (money in), negative a debit
    day: date
    description: str = ""
    reference: str = ""  # the clearing system reference (an ACH trace number)
    counterparty: str = ""
    status: str = "BOOK"


def camt053(
    statement_id: str,
    entries: list[Entry],
    opening: Decimal = Decimal("0.00"),
    account: str = "123456789",
    currency: str = "USD",
    namespace: str = CAMT_NS,
) -> str:
    booked = sum((e.amount for e in entries if e.status == "BOOK"), Decimal("0"))
    closing = opening + booked
    days = [e.day for e in entries] or [date(2026, 1, 1)]

    def balance(code: str, amount: Decimal, day: date) -> str:
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="{currency}">{abs(amount):.2f}</Amt><CdtDbtInd>{"DBIT" if amount < 0 else "CRDT"}</CdtDbtInd>'
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
        )

    def entry(number: int, e: Entry) -> str:
        credit = e.amount > 0
        party = "Dbtr" if credit else "Cdtr"
        refs = f"<Refs><EndToEndId>NOTPROVIDED</EndToEndId><ClrSysRef>{escape(e.reference)}</ClrSysRef></Refs>"
        return (
            f'<Ntry><Amt Ccy="{currency}">{abs(e.amount):.2f}</Amt><CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd>'
            f"<Sts><Cd>{e.status}</Cd></Sts><BookgDt><Dt>{e.day.isoformat()}</Dt></BookgDt>"
            f"<ValDt><Dt>{e.day.isoformat()}</Dt></ValDt><AcctSvcrRef>BANKREF-{number:08d}</AcctSvcrRef>"
            f"<BkTxCd><Prtry><Cd>ACH</Cd></Prtry></BkTxCd>"
            f"<NtryDtls><TxDtls>{refs if e.reference else ''}"
            f"<RltdPties><{party}><Pty><Nm>{escape(e.counterparty)}</Nm></Pty></{party}></RltdPties>"
            f"<RmtInf><Ustrd>{escape(e.description)}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        )

    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>MSG-{escape(statement_id)}</MsgId><CreDtTm>{max(days).isoformat()}T18:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{escape(statement_id)}</Id><ElctrncSeqNb>1</ElctrncSeqNb>"
        f"<CreDtTm>{max(days).isoformat()}T18:00:00</CreDtTm>"
        f"<FrToDt><FrDtTm>{min(days).isoformat()}T00:00:00</FrDtTm><ToDtTm>{max(days).isoformat()}T23:59:59</ToDtTm></FrToDt>"
        f"<Acct><Id><Othr><Id>{account}</Id></Othr></Id><Ccy>{currency}</Ccy></Acct>"
        f"{balance('OPBD', opening, min(days))}{balance('CLBD', closing, max(days))}"
        + "".join(entry(n, e) for n, e in enumerate(entries, start=1))
        + "</Stmt></BkToCstmrStmt></Document>\n"
    )


def csv_statement(entries: list[Entry]) -> str:
    rows = ["date,amount,description,reference,counterparty"]
    for e in entries:
        rows.append(f'{e.day.isoformat()},{e.amount:.2f},"{e.description}",{e.reference},"{e.counterparty}"')
    return "\r\n".join(rows) + "\r\n"


def bai2_statement(
    file_id: str, entries: list[Entry], opening: Decimal = Decimal("0.00"), sender: str = "121000248"
) -> str:
    """A BAI2 file of one account: 010/015 summaries, a 16 record per entry (165 an ACH credit, 451 an ACH debit,
    699 a miscellaneous debit when there is no reference), with the control totals and record counts banks write."""
    day = min((e.day for e in entries), default=date(2026, 1, 1))
    closing = opening + sum((e.amount for e in entries), Decimal("0"))
    cents = [int(e.amount.copy_abs() * 100) for e in entries]
    opening_cents, closing_cents = int(opening * 100), int(closing * 100)
    details: list[str] = []
    for e, amount in zip(entries, cents, strict=True):
        code = ("165" if e.reference else "399") if e.amount > 0 else ("451" if e.reference else "699")
        details.append(f"16,{code},{amount},0,BANKREF{len(details) + 1},{e.reference},{e.description}/")
    account_total = opening_cents + closing_cents + sum(cents)
    account = [f"03,123456789,USD,010,{opening_cents},,,015,{closing_cents},,/", *details]
    account.append(f"49,{account_total},{len(account) + 1}/")
    group = [f"02,BACKOFFICE,{sender},1,{day:%y%m%d},1800,USD,2/", *account]
    group.append(f"98,{account_total},1,{len(group) + 1}/")
    lines = [f"01,{sender},BACKOFFICE,{day:%y%m%d},1800,{file_id},,,2/", *group]
    lines.append(f"99,{account_total},1,{len(lines) + 1}/")
    return "\n".join(lines) + "\n"
