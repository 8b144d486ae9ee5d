"""Seeded, reproducible generator of café branch CSV files in "Format A".

Format A is what the branches' point-of-sale systems upload each night: one file
per branch per day, 7 comma separated columns, no header, LF line endings::

    25/08/2021 09:02,Leeds,Ann Smith,"Large Latte - 2.45, Regular Mocha - 2.30",4.75,CARD,4929…
    25/08/2021 09:02,Leeds,Bob Jones,Regular Espresso - 1.50,1.5,CASH,

(the card number is cut short here: it has 16 digits).

Columns: timestamp, branch, customer name, basket (items joined by ``", "``,
quoted only when it holds more than one item), total (trailing zeros dropped,
at least one decimal), payment (``CARD``/``CASH``), card number (16 digits for
CARD, empty for CASH).

Every file depends only on ``(seed, branch index, day index, per_day, start)``:
each branch has a profile (opening hours, favoured products, card share,
regular customers) drawn from its own random stream, and each branch-day draws
from another. So asking for more branches or days adds files without changing
the others, and the same arguments always give byte-identical files.

For speed nothing loops over transactions or items in Python: the random draws
are made per file with numpy, and the text of a whole batch of files (one day of
many branches) is assembled at once with pyarrow compute kernels, then written
file by file as slices of one buffer.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["GenerateResult", "branch_names", "branch_slug", "generate"]


def _name_list(text: str) -> tuple[str, ...]:
    """Split a comma separated, line wrapped list of names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# (product name, regular price in pence, large price in pence). Case-sensitive:
# "Hot Chocolate" and "Hot chocolate" are different products.
MENU: tuple[tuple[str, int, int], ...] = (
    ("Americano", 195, 225),
    ("Cappuccino", 215, 245),
    ("Chai latte", 230, 260),
    ("Cortado", 205, 235),
    ("Espresso", 150, 180),
    ("Filter coffee", 150, 180),
    ("Flat white", 215, 245),
    ("Flavoured hot chocolate - Caramel", 260, 290),
    ("Flavoured hot chocolate - Hazelnut", 260, 290),
    ("Flavoured hot chocolate - Vanilla", 260, 290),
    ("Flavoured iced latte - Caramel", 275, 325),
    ("Flavoured iced latte - Hazelnut", 275, 325),
    ("Flavoured iced latte - Vanilla", 275, 325),
    ("Flavoured latte - Caramel", 255, 285),
    ("Flavoured latte - Hazelnut", 255, 285),
    ("Flavoured latte - Vanilla", 255, 285),
    ("Frappes - Coffee", 275, 325),
    ("Frappes - Strawberries & Cream", 275, 325),
    ("Glass of milk", 70, 110),
    ("Hot Chocolate", 140, 170),
    ("Hot chocolate", 220, 290),
    ("Iced americano", 215, 250),
    ("Iced latte", 235, 285),
    ("Latte", 215, 245),
    ("Luxury hot chocolate", 240, 270),
    ("Mocha", 230, 270),
    ("Red Label tea", 120, 180),
    ("Smoothies - Berry Beautiful", 200, 250),
    ("Smoothies - Carrot Kick", 200, 250),
    ("Smoothies - Glowing Greens", 200, 250),
    ("Speciality Tea - Camomile", 130, 160),
    ("Speciality Tea - Darjeeling", 130, 160),
    ("Speciality Tea - Earl Grey", 130, 160),
    ("Speciality Tea - English breakfast", 130, 160),
    ("Speciality Tea - Fruit", 130, 160),
    ("Speciality Tea - Green", 130, 160),
    ("Speciality Tea - Peppermint", 130, 160),
)
SIZES: tuple[str, str] = ("Regular", "Large")

# Branch names, in a fixed order: branch i is always TOWNS[i] (see branch_names).
TOWNS: tuple[str, ...] = _name_list(
    """
Chesterfield, Leeds, Newcastle upon Tyne, Southend-on-Sea, London Camden, Manchester,
Stoke-on-Trent, Birmingham, Milton Keynes, Bristol, Weston-super-Mare, Liverpool,
London Soho, Sheffield, Bury St Edmunds, Nottingham, Stratford-upon-Avon, Leicester,
Kingston upon Hull, Brighton, Cambridge, Oxford, York, Norwich, Exeter, Plymouth,
Southampton, Portsmouth, Reading, Coventry, Derby, Bradford, Wakefield, Huddersfield,
Halifax, Harrogate, Scarborough, Lincoln, Peterborough, Ipswich, Colchester, Chelmsford,
Canterbury, Dover, Maidstone, Guildford, Woking, Basingstoke, Winchester, Salisbury, Bath,
Gloucester, Cheltenham, Worcester, Hereford, Shrewsbury, Telford, Wolverhampton, Walsall,
Dudley, Stafford, Lichfield, Tamworth, Nuneaton, Rugby, Northampton, Kettering, Bedford,
Luton, Watford, St Albans, Stevenage, Hemel Hempstead, High Wycombe, Slough, Swindon,
Taunton, Barnstaple, Truro, Bournemouth, Poole, Weymouth, Carlisle, Kendal, Lancaster,
Preston, Blackpool, Blackburn, Bolton, Wigan, Warrington, Chester, Crewe, Durham,
Sunderland, Middlesbrough, Darlington, Barrow-in-Furness, Ashby-de-la-Zouch,
Berwick-upon-Tweed
"""
)
# Used to derive further unique names once TOWNS runs out ("Leeds North", ...).
BRANCH_SUFFIXES: tuple[str, ...] = _name_list(
    """
North, South, East, West, Central, Station, High Street, Market Square, Retail Park,
Old Town
"""
)

FIRST_NAMES: tuple[str, ...] = _name_list(
    """
Aaron, Abigail, Adam, Aisha, Alan, Alice, Amelia, Amir, Andrew, Angela, Anna, Anthony,
Barbara, Ben, Beth, Brian, Carl, Caroline, Charles, Chloe, Chris, Claire, Daniel, David,
Deborah, Dennis, Diane, Dominic, Donna, Edward, Eleanor, Elijah, Emily, Emma, Eric, Fatima,
Fiona, Frances, Francis, Gary, George, Grace, Graham, Hannah, Harry, Helen, Henry, Holly,
Ian, Imran, Isabel, Jack, James, Jane, Jason, Jennifer, Jessica, Joan, John, Joseph,
Joshua, Julie, Karen, Kate, Kevin, Laura, Leah, Lee, Liam, Linda, Lucy, Luke, Margaret,
Maria, Mark, Martin, Mary, Matthew, Megan, Michael, Mohammed, Nathan, Neil, Nicola, Noah,
Olivia, Oscar, Patricia, Paul, Peter, Priya, Rachel, Raj, Rebecca, Richard, Robert, Rodney,
Ruth, Ryan, Samuel, Sandra, Sarah, Scott, Sharon, Sophie, Stephen, Susan, Thomas, Tom,
Valerie, Victoria, William, Yusuf, Zoe
"""
)
LAST_NAMES: tuple[str, ...] = _name_list(
    """
Adams, Ahmed, Allen, Anderson, Atkinson, Bailey, Baker, Barnes, Bell, Bennett, Brown,
Butler, Campbell, Carter, Chapman, Clark, Clarke, Cole, Collins, Cook, Cooper, Copeland,
Cox, Davies, Davis, Dixon, Drake, Edwards, Ellis, Evans, Fisher, Foster, Fox, Frew, Gibson,
Graham, Gray, Green, Griffiths, Hall, Harris, Harrison, Hill, Holmes, Hughes, Hunt,
Hussain, Jackson, James, Jenkins, Johnson, Jones, Kaur, Kelly, Khan, King, Knight, Lee,
Lewis, Lloyd, Marshall, Martin, Mason, Matthews, Miller, Mills, Mitchell, Moore, Morgan,
Morris, Murphy, Murray, Owen, Owens, Palmer, Parker, Patel, Pearson, Phillips, Powell,
Price, Reid, Richards, Richardson, Roberts, Robinson, Rogers, Russell, Scott, Shaw,
Simpson, Singh, Smith, Sparrow, Stevens, Stewart, Taylor, Thomas, Thompson, Turner, Walker,
Ward, Watson, White, Wilkinson, Williams, Wilson, Wood, Wright, Young
"""
)

# Relative transactions per hour of day, shaped like the real files: a morning
# peak at 10:00 and an early afternoon one at 13:00-15:00. Needs every hour in
# [min(OPEN_HOURS), max(CLOSE_HOURS)).
HOUR_WEIGHTS: dict[int, float] = {
    8: 3.0,
    9: 5.5,
    10: 6.5,
    11: 2.6,
    12: 3.4,
    13: 7.3,
    14: 7.4,
    15: 6.5,
    16: 4.0,
    17: 2.0,
    18: 1.6,
    19: 1.2,
}
# P(basket holds 1..6 items), from the real files.
BASKET_SIZE_PROBS: tuple[float, ...] = (0.25, 0.25, 0.20, 0.15, 0.10, 0.05)
MAX_BASKET = len(BASKET_SIZE_PROBS)

OPEN_HOURS: tuple[int, ...] = (8, 9)
OPEN_HOUR_PROBS: tuple[float, ...] = (0.35, 0.65)
CLOSE_HOURS: tuple[int, ...] = (17, 18, 19, 20)
CLOSE_HOUR_PROBS: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
FAVOURITES_RANGE: tuple[int, int] = (5, 16)  # favoured products per branch: [low, high)
OTHER_PRODUCTS_SHARE = 0.04  # share of items outside a branch's favourites
LARGE_SHARE_RANGE: tuple[float, float] = (0.35, 0.65)
CARD_SHARE_RANGE: tuple[float, float] = (0.62, 0.78)
REGULAR_SHARE_RANGE: tuple[float, float] = (0.2, 0.5)  # transactions by regulars
N_CUSTOMERS = len(FIRST_NAMES) * len(LAST_NAMES)  # customer code = first * len(LAST) + last
REGULARS_PER_BRANCH = 150
BRANCH_VOLUME_RANGE: tuple[float, float] = (0.85, 1.15)  # branch size, times per_day
DAY_VOLUME_RANGE: tuple[float, float] = (0.85, 1.15)  # day-to-day variation
CARD_GROUPS = 4  # a card number is 4 groups of 4 digits
GROUP_SIZE = 10_000

BATCH_ROWS = 50_000  # transactions per batch (bigger batches run slower: cache, allocator)
DEFAULT_START = datetime.date(2021, 8, 25)


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote."""

    files: int
    transactions: int
    items: int  # sum of quantities (every listed item counts 1)
    revenue_pence: int  # sum of totals in pence
    bytes_written: int


@dataclass(frozen=True)
class _Branch:
    """A branch's fixed character, drawn once from its own random stream."""

    index: int
    name: str
    open_hour: int
    minute_cdf: npt.NDArray[np.float64]  # over the minutes of the day from opening
    item_cdf: npt.NDArray[np.float64]  # over item codes (2 * product + size)
    card_share: float
    regular_share: float
    regulars: IntArray  # customer codes of the regulars
    volume: float


@dataclass(frozen=True)
class _FileDraws:
    """The random content of one branch-day file (numbers only, no text)."""

    branch: int  # index into the batch's branch list
    minutes: IntArray  # minute of day per transaction, sorted
    sizes: IntArray  # items per transaction
    items: IntArray  # item codes, flattened over transactions
    customers: IntArray  # customer codes
    is_card: BoolArray
    card_groups: IntArray  # (transactions, 4) groups of 4 card digits, 0000-9999

    @property
    def transactions(self) -> int:
        return len(self.sizes)


# --------------------------------------------------------------------------- names


def branch_names(count: int) -> list[str]:
    """The first ``count`` branch names; branch i is the same name for any count."""
    return [_branch_name(i) for i in range(count)]


def _branch_name(index: int) -> str:
    if index < len(TOWNS):
        return TOWNS[index]
    derived = index - len(TOWNS)
    town = TOWNS[derived % len(TOWNS)]
    suffix_round, suffix_index = divmod(derived // len(TOWNS), len(BRANCH_SUFFIXES))
    name = f"{town} {BRANCH_SUFFIXES[suffix_index]}"
    return name if suffix_round == 0 else f"{name} {suffix_round + 1}"


def branch_slug(name: str) -> str:
    """File name stem of a branch: lower case, spaces to underscores."""
    return name.lower().replace(" ", "_")


def _file_name(branch: str, day: datetime.date, open_hour: int) -> str:
    return f"{branch_slug(branch)}_{day:%d-%m-%Y}_{open_hour:02d}-00-00.csv"


# --------------------------------------------------------------------------- lookup tables


def _money(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


def _total_text(pence: int) -> str:
    """A total as the real files write it: ``5.2``, ``4.0``, ``2.45``."""
    text = _money(pence)
    return text[:-1] if pence % 10 == 0 else text


@cache
def _item_table() -> tuple[pa.Array, IntArray]:
    """Item texts and prices in pence, by item code ``2 * product + size``.

    The texts come three times: plain, with a leading ``"`` (code + 74) and with
    a trailing ``"`` (code + 148), to quote multi-item baskets without a pass.
    """
    texts = [
        f"{size} {name} - {_money(price)}"
        for name, regular, large in MENU
        for size, price in zip(SIZES, (regular, large), strict=True)
    ]
    quoted = [*texts, *(f'"{t}' for t in texts), *(f'{t}"' for t in texts)]
    prices = np.array([p for _, regular, large in MENU for p in (regular, large)], np.int64)
    return pa.array(quoted, pa.string()), prices


@cache
def _total_table() -> pa.Array:
    max_total = MAX_BASKET * max(large for _, _, large in MENU)
    return pa.array([_total_text(p) for p in range(max_total + 1)], pa.string())


@cache
def _customer_table() -> pa.Array:
    """Full names by customer code ``first * len(LAST_NAMES) + last``."""
    return pa.array([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], pa.string())


def _timestamp_table(day: datetime.date) -> pa.Array:
    """``DD/MM/YYYY HH:MM`` for every minute of ``day``, by minute of day."""
    date = f"{day:%d/%m/%Y}"
    return pa.array([f"{date} {m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)], pa.string())


# --------------------------------------------------------------------------- random draws


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, keys); never shared between files."""
    return np.random.default_rng([seed, *keys])


def _cdf(weights: npt.ArrayLike) -> npt.NDArray[np.float64]:
    cdf = np.cumsum(np.asarray(weights, np.float64))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _make_branch(seed: int, index: int) -> _Branch:
    rng = _rng(seed, index, 0)
    open_hour = int(rng.choice(OPEN_HOURS, p=OPEN_HOUR_PROBS))
    close_hour = int(rng.choice(CLOSE_HOURS, p=CLOSE_HOUR_PROBS))
    n_products = len(MENU)
    favourites = rng.choice(n_products, int(rng.integers(*FAVOURITES_RANGE)), replace=False)
    product_w = np.full(n_products, OTHER_PRODUCTS_SHARE / (n_products - len(favourites)))
    fav_w = rng.gamma(2.0, 1.0, len(favourites))
    product_w[favourites] = (1.0 - OTHER_PRODUCTS_SHARE) * fav_w / fav_w.sum()
    large = rng.uniform(*LARGE_SHARE_RANGE)
    item_w = np.stack([product_w * (1.0 - large), product_w * large], axis=1).ravel()
    return _Branch(
        index=index,
        name=_branch_name(index),
        open_hour=open_hour,
        minute_cdf=_cdf(np.repeat([HOUR_WEIGHTS[h] for h in range(open_hour, close_hour)], 60)),
        item_cdf=_cdf(item_w),
        card_share=float(rng.uniform(*CARD_SHARE_RANGE)),
        regular_share=float(rng.uniform(*REGULAR_SHARE_RANGE)),
        regulars=rng.integers(0, N_CUSTOMERS, REGULARS_PER_BRANCH),
        volume=float(rng.uniform(*BRANCH_VOLUME_RANGE)),
    )


BASKET_CDF = _cdf(BASKET_SIZE_PROBS)


def _draw_file(seed: int, branch: _Branch, slot: int, day: int, per_day: int) -> _FileDraws:
    rng = _rng(seed, branch.index, day + 1)
    low, high = DAY_VOLUME_RANGE
    n = max(1, round(per_day * branch.volume * (low + (high - low) * rng.random())))
    uniform = rng.random((6 + CARD_GROUPS, n))
    minutes = np.searchsorted(branch.minute_cdf, uniform[0], side="right")
    minutes.sort()
    sizes = 1 + np.searchsorted(BASKET_CDF, uniform[1], side="right")
    anyone = (uniform[2] * N_CUSTOMERS).astype(np.int64)
    regular = branch.regulars[(uniform[3] * len(branch.regulars)).astype(np.int64)]
    groups = uniform[6:].T * GROUP_SIZE
    groups[:, 0] = GROUP_SIZE // 10 + 0.9 * groups[:, 0]  # no leading zero
    return _FileDraws(
        branch=slot,
        minutes=minutes + branch.open_hour * 60,
        sizes=sizes,
        items=np.searchsorted(branch.item_cdf, rng.random(int(sizes.sum())), side="right"),
        customers=np.where(uniform[4] < branch.regular_share, regular, anyone),
        is_card=uniform[5] < branch.card_share,
        card_groups=groups.astype(np.int64),
    )


# --------------------------------------------------------------------------- text assembly


def _concat(draws: Sequence[_FileDraws], field: str) -> IntArray:
    arrays: list[IntArray] = [getattr(d, field) for d in draws]
    return np.concatenate(arrays)


def _quoted_item_codes(items: IntArray, sizes: IntArray, offsets: IntArray) -> IntArray:
    """Item codes into :func:`_item_table` texts, with the opening quote on the
    first item and the closing quote on the last item of multi-item baskets."""
    n_items = 2 * len(MENU)
    codes = items.copy()
    multi = sizes > 1
    codes[offsets[:-1][multi]] += n_items
    codes[offsets[1:][multi] - 1] += 2 * n_items
    return codes


@cache
def _digit_groups() -> npt.NDArray[np.uint8]:
    """ASCII ``0000`` .. ``9999``, one row per value."""
    text = "".join(f"{i:04d}" for i in range(GROUP_SIZE)).encode()
    return np.frombuffer(text, np.uint8).reshape(GROUP_SIZE, 4)


def _payment_tails(is_card: BoolArray, groups: IntArray) -> pa.Array:
    """``CARD,<16 digits>\\n`` or ``CASH,\\n`` per row, built as raw bytes.

    Every row is laid out as a CARD tail in a fixed-width block; CASH rows are
    overwritten with their shorter tail and the unused bytes masked away.
    """
    card, cash = np.frombuffer(b"CARD,", np.uint8), np.frombuffer(b"CASH,\n", np.uint8)
    width = len(card) + 4 * CARD_GROUPS + 1
    block = np.empty((len(is_card), width), np.uint8)
    block[:, : len(card)] = card
    block[:, len(card) : -1] = _digit_groups()[groups].reshape(len(groups), -1)
    block[:, -1] = ord("\n")
    is_cash = ~is_card
    block[is_cash, : len(cash)] = cash
    keep = np.ones(block.shape, np.bool_)
    keep[is_cash, len(cash) :] = False
    offsets = np.zeros(len(is_card) + 1, np.int32)
    np.cumsum(np.where(is_card, width, len(cash)), out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(is_card), pa.py_buffer(offsets), pa.py_buffer(block[keep])
    )


def _render(draws: Sequence[_FileDraws], names: pa.Array, timestamps: pa.Array) -> pa.Array:
    """One CSV line (with its ``\\n``) per transaction of ``draws``, in order."""
    item_texts, item_prices = _item_table()
    sizes = _concat(draws, "sizes")
    items = _concat(draws, "items")
    is_card = np.concatenate([d.is_card for d in draws])
    row_branch = np.repeat([d.branch for d in draws], [d.transactions for d in draws])

    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    totals = np.add.reduceat(item_prices[items], offsets[:-1])
    texts = item_texts.take(_quoted_item_codes(items, sizes, offsets))
    baskets = pc.binary_join(pa.ListArray.from_arrays(offsets.astype(np.int32), texts), ", ")
    return pc.binary_join_element_wise(
        timestamps.take(_concat(draws, "minutes")),
        names.take(row_branch),
        _customer_table().take(_concat(draws, "customers")),
        baskets,
        _total_table().take(totals),
        _payment_tails(is_card, _concat(draws, "card_groups")),
        ",",
    )


def _slices(lines: pa.Array, counts: Sequence[int]) -> Iterator[memoryview]:
    """The bytes of consecutive runs of ``counts`` lines, without copying."""
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(data_buf)
    row = 0
    for count in counts:
        yield data[int(offsets[row]) : int(offsets[row + count])]
        row += count


@dataclass(frozen=True)
class _Batch:
    """The drawn files of one day for a run of branches."""

    paths: list[Path]
    names: pa.Array  # branch name per file
    timestamps: pa.Array  # see _timestamp_table
    draws: list[_FileDraws]

    @property
    def transactions(self) -> int:
        return sum(d.transactions for d in self.draws)

    @property
    def items(self) -> int:
        return sum(len(d.items) for d in self.draws)

    @property
    def revenue_pence(self) -> int:
        _, item_prices = _item_table()
        return sum(int(item_prices[d.items].sum()) for d in self.draws)


def _draw_batch(
    branches: Sequence[_Branch],
    *,
    seed: int,
    out_dir: Path,
    day_index: int,
    day: datetime.date,
    timestamps: pa.Array,
    per_day: int,
) -> _Batch:
    return _Batch(
        paths=[out_dir / _file_name(b.name, day, b.open_hour) for b in branches],
        names=pa.array([b.name for b in branches], pa.string()),
        timestamps=timestamps,
        draws=[_draw_file(seed, b, slot, day_index, per_day) for slot, b in enumerate(branches)],
    )


def _write(path: Path, payload: memoryview) -> None:
    """Write a whole file in one go, under a hidden name, then rename it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(payload)
    tmp.replace(path)


def _render_and_write(batch: _Batch) -> int:
    """Render the files of ``batch`` and write them; return the bytes written."""
    lines = _render(batch.draws, batch.names, batch.timestamps)
    counts = [d.transactions for d in batch.draws]
    written = 0
    for path, payload in zip(batch.paths, _slices(lines, counts), strict=True):
        _write(path, payload)
        written += len(payload)
    return written


# --------------------------------------------------------------------------- driver


def _check(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _batches(branches: Sequence[_Branch], per_day: int) -> Iterator[Sequence[_Branch]]:
    """Split a day's branches into runs of about BATCH_ROWS transactions."""
    step = max(1, BATCH_ROWS // per_day)
    for start in range(0, len(branches), step):
        yield branches[start : start + step]


class _Tally:
    """Running totals; counts a batch once its files are on disk."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.files = self.transactions = self.items = self.revenue = self.written = 0

    def add(self, batch: _Batch, written: Future[int]) -> None:
        self.written += written.result()
        self.files += len(batch.paths)
        self.transactions += batch.transactions
        self.items += batch.items
        self.revenue += batch.revenue_pence
        if self.progress is not None:
            for _ in batch.paths:
                self.progress(1)

    def result(self) -> GenerateResult:
        return GenerateResult(self.files, self.transactions, self.items, self.revenue, self.written)


def generate(
    out_dir: Path,
    *,
    branches: int,
    days: int,
    seed: int,
    start: datetime.date = DEFAULT_START,
    per_day: int = 300,
    progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Write ``branches * days`` Format A files into ``out_dir`` (created if missing).

    ``per_day`` is the mean number of transactions per branch-day; each file
    varies around it. ``progress(1)`` is called once per file, from the calling
    thread, after the file is written. Same arguments give byte-identical
    files, and a file does not depend on how many branches or days were asked
    for. Raises ValueError for ``branches``, ``days`` or ``per_day`` below 1 or
    a negative ``seed``.
    """
    _check("branches", branches)
    _check("days", days)
    _check("per_day", per_day)
    _check("seed", seed, minimum=0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    profiles = [_make_branch(seed, i) for i in range(branches)]
    tally = _Tally(progress)
    # Two stages: this thread draws batch k + 1 (many small numpy calls) while a
    # worker renders and writes batch k (big pyarrow/numpy kernels and file I/O,
    # which release the GIL).
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending: tuple[_Batch, Future[int]] | None = None
        for day_index in range(days):
            day = start + datetime.timedelta(days=day_index)
            timestamps = _timestamp_table(day)
            for run in _batches(profiles, per_day):
                batch = _draw_batch(
                    run,
                    seed=seed,
                    out_dir=out_dir,
                    day_index=day_index,
                    day=day,
                    timestamps=timestamps,
                    per_day=per_day,
                )
                if pending is not None:
                    tally.add(*pending)
                pending = (batch, worker.submit(_render_and_write, batch))
        if pending is not None:
            tally.add(*pending)
    return tally.result()
