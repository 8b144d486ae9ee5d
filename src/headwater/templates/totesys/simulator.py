"""Seeded simulator of the `totesys` database (see docs/templates/totesys-source.md).

- :func:`simulate`: reference tables (if empty), then about 22 sales and 9 purchase orders
  per weekday, 08:00-18:59, each with its transaction and payment. A day depends only on
  ``(seed, date, scale)``; ids continue from the largest in the database.
- :func:`live_step`: one tick of live mode (new orders at ``now``, some payments paid).
- :func:`apply_change_batch`: a dimension edit like the 2024-11-20 event.

Whether a payment is ever paid is a hash of its id and company account number (about
60% are), so live mode keeps that share without knowing the seed. Timestamps are naive,
in milliseconds.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.templates.totesys import source_db
from headwater.templates.totesys.source_db import ENUMS, TABLES, Db, SourceDbError

__all__ = ["apply_change_batch", "live_step", "simulate"]

IntArray = npt.NDArray[np.int64]
EPOCH = datetime.datetime(1970, 1, 1)
DAY_MS = 86_400_000
REFERENCE = ("address", "currency", "department", "design", "payment_type", "counterparty", "staff")
ORDERS = ("sales_order", "purchase_order", "transaction", "payment")
SALES_PER_DAY, PURCHASES_PER_DAY = 22.0, 9.0
PAID_SHARE = 0.6
FLIP_MS = (DAY_MS // 2, 6 * DAY_MS)  # a payment is paid 0.5 to 6 days after its order
SWAP_SHARE = 0.0025  # payments whose id is swapped with the next one's
LIVE_FLIP_CHANCE = 0.2  # per tick, for each payment due to be paid
BULK_ORDERS = 50_000  # above this, PostgreSQL foreign keys are checked once after the load
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


FIRST = _words("""Ada, Alfonso, Angel, Beulah, Brant, Carmen, Cecil, Darnell, Della, Domingo,
Elvira, Ernest, Fannie, Felipe, Gwen, Hattie, Hector, Irma, Jasmin, Kurt, Lavonne, Lorenzo,
Mabel, Marvin, Nelda, Noe, Opal, Orville, Pearl, Quinn, Rosalind, Salvador, Tamara, Ulises,
Velma, Wilfred, Yolanda, Zane""")
LAST = _words("""Abbott, Bahringer, Bechtelar, Bergstrom, Bode, Carroll, Collier, Cremin,
Cummerata, Dach, Daugherty, Dickens, Ebert, Feest, Friesen, Gleichner, Goyette, Hagenes, Hammes,
Hartmann, Heathcote, Hilpert, Jacobi, Jaskolski, Kassulke, Koelpin, Kuhlman, Kunze, Lebsack,
Lueilwitz, Mante, McGlynn, Mertz, Monahan, Nader, Nolan, Okuneva, Pagac, Quigley, Rempel,
Runte, Schaden, Schowalter, Stiedemann, Towne, Treutel, VonRueden, Wehner, Wisoky, Ziemann""")
APOSTROPHE_LAST = ("O'Conner", "O'Keefe", "O'Reilly", "O'Kon")
STREETS = _words("""Via, Cliffs, Fort, Trafficway, Underpass, Freeway, Green, Mission, Ports,
Square, Lodge, Crossroad, Junctions, Hollow, Isle, Mall, Parkway, Ridge, Shoals, Station,
Summit, Trail, Walks, Gardens, Knoll""")
CITY_PREFIX = ("North", "South", "East", "West", "New", "Lake", "Port")
CITY_SUFFIX = _words(
    "burgh, borough, bury, chester, fort, haven, land, mouth, side, ton, view, ville, worth"
)
DISTRICTS = _words("""Avon, Bedfordshire, Berkshire, Borders, Buckinghamshire, Cambridgeshire,
Cheshire, Cleveland, Cornwall, Cumbria""")
COUNTRIES = _words("""Democratic People's Republic of Korea, Svalbard & Jan Mayen Islands,
Bouvet Island (Bouvetoya), Heard Island and McDonald Islands, Turkey, San Marino, Indonesia,
Austria, Chile, Cuba, Estonia, Ghana, Guyana, Iceland, Jordan, Kenya, Lesotho, Malawi, Nauru,
Oman, Peru, Qatar, Romania, Samoa, Tonga, Uganda, Vanuatu, Yemen, Zambia""")  # 29
DEPARTMENTS = (
    ("Sales", "Manchester"), ("Purchasing", "Manchester"), ("Production", "Leeds"),
    ("Dispatch", "Leds"), ("Finance", "Manchester"), ("Facilities", "Manchester"),
    ("Communications", "Leeds"), ("HR", "Leeds"),
)  # fmt: skip
DESIGN_NAMES = _words("""Steel, Soft, Granite, Concrete, Frozen, Bronze, Plastic, Cotton, Metal,
Fresh, Wooden, Rubber""")
FILE_LOCATIONS = _words("""/usr, /private, /lost+found, /etc/periodic, /usr/local/src,
/home/user/dir, /lib, /System, /usr/local/bin, /opt/bin, /var/log, /var/tmp, /tmp, /bin, /boot,
/dev, /etc, /home, /mnt, /net, /opt, /opt/lib, /opt/include, /opt/share, /proc, /root, /run,
/sbin, /srv, /sys, /usr/bin, /usr/lib, /usr/sbin, /usr/share, /usr/src, /usr/include,
/usr/libexec, /usr/local, /usr/ports, /var, /var/mail, /var/spool, /var/yp, /var/lib,
/var/cache, /etc/ppp, /etc/mail, /etc/defaults, /Applications, /Library, /Network, /Users,
/Volumes, /cores, /media, /private/tmp, /private/var, /usr/X11R6, /etc/namedb, /var/db""")  # 60
N_ADDRESSES, N_COUNTERPARTIES, N_STAFF, N_DESIGNS = 30, 20, 20, 473
SHARED_ADDRESS = 17  # the legal address of 4 counterparties
DESIGN_DATES = (datetime.date(2020, 11, 24), datetime.date(2024, 10, 26))


def _ms(moment: datetime.datetime) -> int:
    """Epoch milliseconds of a naive timestamp (truncated to the millisecond)."""
    return (moment.replace(tzinfo=None) - EPOCH) // datetime.timedelta(milliseconds=1)


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _digits(rng: np.random.Generator, count: int) -> str:
    return f"{int(rng.integers(10**count)):0{count}d}"


def _postal_code(rng: np.random.Generator) -> str:
    return _digits(rng, 5) + (f"-{_digits(rng, 4)}" if rng.random() < 0.5 else "")


def _phone(rng: np.random.Generator) -> str:
    return f"{_digits(rng, 4)} {_digits(rng, 6)}"


# --------------------------------------------------------------------------- reference data


def _person(rng: np.random.Generator, fancy: bool = False) -> str:
    name = f"{_pick(rng, FIRST)} {_pick(rng, LAST)}"
    if fancy and rng.random() < 0.2:
        name = f"{_pick(rng, ('Mr.', 'Mrs.', 'Ms.', 'Dr.'))} {name}"
    if fancy and rng.random() < 0.15:
        name = f"{name} {_pick(rng, ('II', 'III', 'Jr.', 'Sr.'))}"
    return name


def _company(rng: np.random.Generator, form: int) -> str:
    a, b, c = (_pick(rng, LAST) for _ in range(3))
    return (f"{a} and Sons", f"{a}, {b} and {c}", f"{a} - {b}", f"{a} Inc", f"{a} LLC",
            f"{a} Group")[form]  # fmt: skip


def _city(rng: np.random.Generator) -> str:
    stem = _pick(rng, FIRST + LAST)
    city = f"{stem}{_pick(rng, CITY_SUFFIX)}" if rng.random() < 0.7 else stem
    return f"{_pick(rng, CITY_PREFIX)} {city}" if rng.random() < 0.4 else city


def _reference(seed: int, at: datetime.datetime) -> dict[str, pa.Table]:
    """The 7 small tables; counterparty and staff are created 1.601 s after the rest."""
    rng = np.random.default_rng([seed, 0])
    later = at + datetime.timedelta(milliseconds=1601)
    line2 = set(rng.choice(N_ADDRESSES, 10, replace=False).tolist())
    district = set(rng.choice(N_ADDRESSES, 16, replace=False).tolist())
    countries = [*COUNTRIES, _pick(rng, COUNTRIES)]
    rng.shuffle(countries)
    addresses = []
    for i in range(N_ADDRESSES):
        postal, phone = _postal_code(rng), _phone(rng)
        postal = "0" + postal[1:] if i in (4, 11) else postal  # leading zeros occur
        phone = "0" + phone[1:] if i == 20 else phone
        addresses.append((
            i + 1, f"{int(rng.integers(1, 10_000))} {_pick(rng, LAST)} {_pick(rng, STREETS)}",
            f"{_pick(rng, FIRST)} {_pick(rng, STREETS)}" if i in line2 else None,
            _pick(rng, DISTRICTS) if i in district else None,
            _city(rng), postal, countries[i], phone,
        ))  # fmt: skip
    others = [a for a in range(1, N_ADDRESSES + 1) if a != SHARED_ADDRESS]
    legal = rng.choice(others, N_COUNTERPARTIES).tolist()
    for slot in rng.choice(N_COUNTERPARTIES, 4, replace=False).tolist():
        legal[slot] = SHARED_ADDRESS
    parties = []
    for i in range(N_COUNTERPARTIES):
        form = {1: 1, 2: 2}.get(i, int(rng.integers(6)))
        delivery = _person(rng, fancy=True)
        if i == 5:  # apostrophes occur
            delivery = f"{_pick(rng, FIRST)} {_pick(rng, APOSTROPHE_LAST)}"
        parties.append((i + 1, _company(rng, form), legal[i], _person(rng), delivery))
    people: list[tuple[str, str]] = []
    while len(people) < N_STAFF:
        person = (_pick(rng, FIRST), _pick(rng, LAST))
        people += [] if person in people else [person]
    staff = [
        (i + 1, first, last, int(rng.integers(2, 9)),  # nobody is in department 1 (Sales)
         re.sub("[^a-z.]", "", f"{first}.{last}".lower()) + "@terrifictotes.com")
        for i, (first, last) in enumerate(people)
    ]  # fmt: skip
    span = (DESIGN_DATES[1] - DESIGN_DATES[0]).days
    designs = []
    for i in range(N_DESIGNS):
        kind = _pick(rng, DESIGN_NAMES)
        day = DESIGN_DATES[0] + datetime.timedelta(days=int(rng.integers(span + 1)))
        tag = "".join(_pick(rng, ALNUM.lower()) for _ in range(4))
        designs.append((i + 1, kind, _pick(rng, FILE_LOCATIONS),
                        f"{kind.lower()}-{day:%Y%m%d}-{tag}.json"))  # fmt: skip
    designs = [designs[i] for i in rng.permutation(N_DESIGNS)]  # not stored in id order
    rows: dict[str, list[tuple[Any, ...]]] = {
        "address": addresses,
        "currency": [(1, "GBP"), (2, "USD"), (3, "EUR")],
        "department": [(i + 1, n, loc, _person(rng)) for i, (n, loc) in enumerate(DEPARTMENTS)],
        "design": designs,
        "payment_type": [(i + 1, name) for i, name in enumerate(ENUMS["PaymentTypeName"])],
        "counterparty": parties,
        "staff": staff,
    }
    tables = {}
    for table, values in rows.items():  # values: the columns other than the timestamps
        names = [c.name for c in TABLES[table] if c.kind not in ("created", "ts")]
        columns: dict[str, Any] = {n: [r[i] for r in values] for i, n in enumerate(names)}
        moment = later if table in ("counterparty", "staff") else at
        columns |= {"created_at": [moment] * len(values), "last_updated": [moment] * len(values)}
        tables[table] = source_db.arrow_table(table, columns)
    return tables


def _ensure_reference(db: Db, seed: int, at: datetime.datetime) -> dict[str, int]:
    """Fill the reference tables if they are all empty; rows written per table."""
    filled = [t for t in REFERENCE if db.fetchall(f"SELECT 1 FROM {db.q(t)} LIMIT 1")]
    if len(filled) == len(REFERENCE):
        return {}
    if filled:
        raise SourceDbError(
            f"{db.public_url}: reference tables partly filled ({', '.join(filled)}); "
            "fill all of them or none"
        )
    return {t: source_db.write_table(db, t, data) for t, data in _reference(seed, at).items()}


# --------------------------------------------------------------------------- orders


def _ids(db: Db, table: str, top: bool = False) -> IntArray:
    """The ids of `table` in order, or (`top`) one more than the largest."""
    pk = db.q(TABLES[table][0].name)
    sql = f"SELECT COALESCE(MAX({pk}), 0) + 1" if top else f"SELECT {pk}"
    rows = db.fetchall(f"{sql} FROM {db.q(table)}{'' if top else f' ORDER BY {pk}'}")
    return np.array([r[0] for r in rows], np.int64)


def _next_ids(db: Db) -> dict[str, int]:
    return {table: int(_ids(db, table, top=True)[0]) for table in ORDERS}


def _draw(
    rng: np.random.Generator, refs: dict[str, IntArray], is_sale: npt.NDArray[np.bool_],
    created: IntArray,
) -> dict[str, npt.NDArray[Any]]:  # fmt: skip
    """Every random attribute of the orders `is_sale` (True: sales, False: purchases)."""
    n = len(is_sale)

    def ref(table: str) -> IntArray:
        return refs[table][rng.integers(0, len(refs[table]), n)]

    return {  # drawn in this order
        "is_sale": is_sale, "created": created, "staff": ref("staff"),
        "counterparty": ref("counterparty"), "currency": ref("currency"),
        "location": ref("address"), "design": ref("design"),
        "quantity": np.where(is_sale, rng.integers(1000, 100_001, n), rng.integers(1, 1000, n)),
        "price": np.where(is_sale, rng.integers(200, 401, n), rng.integers(300, 100_000, n)),
        "delivery_days": rng.integers(0, 8, n), "payment_days": rng.integers(0, 7, n),
        "company_ac": rng.integers(10_000_000, 100_000_000, n),
        "counterparty_ac": rng.integers(10_000_000, 100_000_000, n),
        "flip": rng.integers(FLIP_MS[0], FLIP_MS[1] + 1, n), "swap": rng.random(n) < SWAP_SHARE,
    }  # fmt: skip


def _day(seed: int, day: datetime.date, scale: float, refs: dict[str, IntArray]) -> dict[str, Any]:
    """One weekday's orders, sorted by creation time (08:00:00 to 18:59:10.999)."""
    rng = np.random.default_rng([seed, 1, day.toordinal()])
    sales, purchases = rng.poisson(SALES_PER_DAY * scale), rng.poisson(PURCHASES_PER_DAY * scale)
    n = int(sales + purchases)
    minute = rng.integers(8 * 60, 19 * 60, n)
    # written at about 9-10 s past the minute, as by the real per-minute generator
    offset = minute * 60_000 + 9_000 + rng.integers(0, 2_000, n)
    created = _ms(datetime.datetime.combine(day, datetime.time())) + offset
    parts = _draw(rng, refs, np.arange(n) < sales, created)
    order = np.argsort(created, kind="stable")
    return {k: v[order] for k, v in parts.items()}


def _hash(values: IntArray) -> npt.NDArray[np.uint64]:
    """splitmix64, element-wise (array arithmetic wraps silently)."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _will_be_paid(payment_id: IntArray, company_ac: IntArray) -> npt.NDArray[np.bool_]:
    return (_hash(payment_id * 2**27 + company_ac) % np.uint64(1000)) < PAID_SHARE * 1000


def _item_codes(ids: IntArray, seed: int) -> pa.Array:
    """7 characters [0-9A-Z] per purchase order id, a bijection of the id (so unique)."""
    size = len(ALNUM) ** 7
    x = (ids * 2_654_435_761 + (seed * 7_919 + 12_345) % size) % size
    digits = [(x // len(ALNUM) ** k) % len(ALNUM) for k in range(7)]
    x = sum(d * len(ALNUM) ** (6 - k) for k, d in enumerate(digits))  # digits reversed
    x = (x * 97_654_321 + (seed * 104_729 + 67_890) % size) % size
    chars = np.frombuffer(ALNUM.encode(), np.uint8)
    text = np.stack([chars[(x // len(ALNUM) ** (6 - k)) % len(ALNUM)] for k in range(7)], 1)
    offsets = np.arange(0, 7 * len(ids) + 1, 7, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(ids), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(text))
    )


def _dates(epoch_days: IntArray) -> pa.Array:
    """`YYYY-MM-DD` text per epoch day."""
    low = int(epoch_days.min()) if len(epoch_days) else 0
    high = int(epoch_days.max()) + 1 if len(epoch_days) else 0
    table = [f"{EPOCH.date() + datetime.timedelta(days=d):%Y-%m-%d}" for d in range(low, high)]
    return pa.array(table, pa.string()).take(pa.array(epoch_days - low))


def _tables(
    p: dict[str, Any], next_ids: dict[str, int], seed: int, now_ms: int | None
) -> dict[str, pa.Table]:
    """The order, transaction and payment rows of drawn orders; advances `next_ids`."""
    sale: npt.NDArray[np.bool_] = p["is_sale"]
    n, created = len(sale), p["created"]
    tx = next_ids["transaction"] + np.arange(n)
    so = next_ids["sales_order"] + np.cumsum(sale) - 1
    po = next_ids["purchase_order"] + np.cumsum(~sale) - 1
    pay = next_ids["payment"] + np.arange(n)
    swap = np.flatnonzero(p["swap"][:-1])
    swap = swap[np.diff(swap, prepend=-2) > 1]
    pay[swap], pay[swap + 1] = pay[swap + 1], pay[swap]
    for table, used in zip(ORDERS, (sale.sum(), (~sale).sum(), n, n), strict=True):
        next_ids[table] += int(used)
    flip_at = created + p["flip"]
    paid = _will_be_paid(pay, p["company_ac"]) & (flip_at <= (now_ms or 0))
    day = created // DAY_MS
    delivery, payment_date = _dates(day + p["delivery_days"]), _dates(day + p["payment_days"])
    amount = p["quantity"] * p["price"]
    mask, pmask = pa.array(sale), pa.array(~sale)

    def order(keep: npt.NDArray[np.bool_], m: pa.Array) -> dict[str, Any]:
        return {
            "created_at": created[keep], "last_updated": created[keep],
            "staff_id": p["staff"][keep], "counterparty_id": p["counterparty"][keep],
            "currency_id": p["currency"][keep], "agreed_delivery_date": delivery.filter(m),
            "agreed_payment_date": payment_date.filter(m),
            "agreed_delivery_location_id": p["location"][keep],
        }  # fmt: skip

    return {
        "sales_order": source_db.arrow_table("sales_order", order(sale, mask) | {
            "sales_order_id": so[sale], "design_id": p["design"][sale],
            "units_sold": p["quantity"][sale], "unit_price": p["price"][sale]}),
        "purchase_order": source_db.arrow_table("purchase_order", order(~sale, pmask) | {
            "purchase_order_id": po[~sale], "item_code": _item_codes(po[~sale], seed),
            "item_quantity": p["quantity"][~sale], "item_unit_price": p["price"][~sale]}),
        "transaction": source_db.arrow_table("transaction", {
            "transaction_id": tx,
            "transaction_type": pa.array(np.where(sale, "SALE", "PURCHASE").tolist()),
            "sales_order_id": pa.array(so, mask=~sale),
            "purchase_order_id": pa.array(po, mask=sale),
            "created_at": created, "last_updated": created}),
        "payment": source_db.arrow_table("payment", {
            "payment_id": pay, "created_at": created,
            "last_updated": np.where(paid, flip_at, created), "transaction_id": tx,
            "counterparty_id": p["counterparty"], "payment_amount": amount,
            "currency_id": p["currency"], "payment_type_id": np.where(sale, 1, 3), "paid": paid,
            "payment_date": payment_date, "company_ac_number": p["company_ac"],
            "counterparty_ac_number": p["counterparty_ac"]}),
    }  # fmt: skip


def _refs(db: Db) -> dict[str, IntArray]:
    refs = {t: _ids(db, t) for t in ("staff", "counterparty", "currency", "address", "design")}
    empty = [t for t, ids in refs.items() if not len(ids)]
    if empty:
        raise SourceDbError(f"{db.public_url}: no rows in {', '.join(empty)}")
    return refs


def simulate(
    url: str, *, seed: int, start: datetime.date, days: int, scale: float = 1.0
) -> dict[str, int]:
    """Fill the reference tables if empty, then the orders of every weekday of
    ``[start, start + days)``; rows written per table. Payments are paid only up to
    the end of the range (``start + days`` at 00:00)."""
    if days < 1 or not scale > 0 or seed < 0:
        raise ValueError(f"need days >= 1, scale > 0, seed >= 0 (got {days}, {scale}, {seed})")
    reference_at = datetime.datetime.combine(start, datetime.time(14, 20, 49, 962_000))
    reference_at -= datetime.timedelta(days=1)
    now_ms = _ms(datetime.datetime.combine(start + datetime.timedelta(days=days), datetime.time()))
    weekdays = [d for i in range(days) if (d := start + datetime.timedelta(days=i)).weekday() < 5]
    counts = dict.fromkeys([*REFERENCE, *ORDERS], 0)
    with source_db.connect(url) as db:
        counts |= _ensure_reference(db, seed, reference_at)
        refs, next_ids = _refs(db), _next_ids(db)
        big = len(weekdays) * (SALES_PER_DAY + PURCHASES_PER_DAY) * scale > BULK_ORDERS
        with source_db.foreign_keys_set_aside(db, ORDERS) if big else contextlib.nullcontext():
            for first in range(0, len(weekdays), 32):
                drawn = [_day(seed, d, scale, refs) for d in weekdays[first : first + 32]]
                parts = {k: np.concatenate([d[k] for d in drawn]) for k in drawn[0]}
                for table, data in _tables(parts, next_ids, seed, now_ms).items():
                    counts[table] += source_db.write_table(db, table, data)
        source_db.sync_sequences(db)
    return counts


def live_step(url: str, *, now: datetime.datetime, rng_seed: int) -> dict[str, int]:
    """One tick of live mode: 1-3 sales and 0-1 purchase orders created at ``now``, and
    each payment due to be paid, unpaid and 12 h to 6 days old, paid with a 20% chance."""
    now_ms = _ms(now)
    moment = EPOCH + datetime.timedelta(milliseconds=now_ms)
    rng = np.random.default_rng([rng_seed, 2, now_ms])
    with source_db.connect(url) as db:
        counts = dict.fromkeys(ORDERS, 0) | _ensure_reference(db, rng_seed, moment)
        sales, purchases = int(rng.integers(1, 4)), int(rng.integers(0, 2))
        is_sale = np.arange(sales + purchases) < sales
        parts = _draw(rng, _refs(db), is_sale, np.full(len(is_sale), now_ms, np.int64))
        for table, data in _tables(parts, _next_ids(db), rng_seed, None).items():
            counts[table] += source_db.write_table(db, table, data)
        rows = db.fetchall(
            "SELECT payment_id, company_ac_number FROM payment WHERE paid = FALSE "
            "AND created_at <= %s AND created_at >= %s ORDER BY payment_id",
            [moment - datetime.timedelta(hours=12), moment - datetime.timedelta(days=6)],
        )
        ids = np.array([r[0] for r in rows], np.int64)
        accounts = np.array([r[1] for r in rows], np.int64)
        due = ids[_will_be_paid(ids, accounts) & (rng.random(len(ids)) < LIVE_FLIP_CHANCE)]
        counts["paid"] = 0
        if len(due):
            counts["paid"] = db.execute(
                "UPDATE payment SET paid = TRUE, last_updated = %s "
                f"WHERE payment_id IN ({', '.join(['%s'] * len(due))})",
                [moment, *due.tolist()],
            )
        source_db.sync_sequences(db)
    return counts


def apply_change_batch(url: str, *, at: datetime.datetime) -> dict[str, int]:
    """A dimension edit stamped ``at``: a new phone for one address; a new street, city
    and postcode for address 17, touching the counterparties that use it; one staff
    member moved to another department. Rows changed per table."""
    moment = EPOCH + datetime.timedelta(milliseconds=_ms(at))
    rng = np.random.default_rng([3, _ms(at)])
    with source_db.connect(url) as db:
        addresses = _ids(db, "address").tolist()
        staff = db.fetchall("SELECT staff_id, department_id FROM staff ORDER BY staff_id")
        departments = [d for d in _ids(db, "department").tolist() if d != 1]
        if SHARED_ADDRESS not in addresses or not staff or len(departments) < 2:
            raise SourceDbError(f"{db.public_url}: reference data missing (address 17, staff)")
        phone_of = [a for a in addresses if a != SHARED_ADDRESS][
            int(rng.integers(len(addresses) - 1))
        ]
        changed = db.execute(
            "UPDATE address SET phone = %s, last_updated = %s WHERE address_id = %s",
            [_phone(rng), moment, phone_of],
        )
        street = f"{int(rng.integers(1, 10_000))} {_pick(rng, LAST)} {_pick(rng, STREETS)}"
        changed += db.execute(
            "UPDATE address SET address_line_1 = %s, city = %s, postal_code = %s, "
            "last_updated = %s WHERE address_id = %s",
            [street, _city(rng), _postal_code(rng), moment, SHARED_ADDRESS],
        )
        parties = db.execute(
            "UPDATE counterparty SET last_updated = %s WHERE legal_address_id = %s",
            [moment, SHARED_ADDRESS],
        )
        staff_id, current = staff[int(rng.integers(len(staff)))]
        choices = [d for d in departments if d != current]
        moved = db.execute(
            "UPDATE staff SET department_id = %s, last_updated = %s WHERE staff_id = %s",
            [choices[int(rng.integers(len(choices)))], moment, staff_id],
        )
    return {"address": changed, "counterparty": parties, "staff": moved}
