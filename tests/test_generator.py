"""Tests for the café Format A file generator (headwater.templates.cafe.generator)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.templates.cafe.generator import GenerateResult, branch_names, generate

# The menu as the spec gives it, kept here on purpose instead of importing the
# generator's table: the test is an independent oracle for prices.
MENU_TEXT = """
Americano 1.95 2.25 | Cappuccino 2.15 2.45 | Chai latte 2.30 2.60 | Cortado 2.05 2.35
Espresso 1.50 1.80 | Filter coffee 1.50 1.80 | Flat white 2.15 2.45
Flavoured hot chocolate - Caramel 2.60 2.90 | Flavoured hot chocolate - Hazelnut 2.60 2.90
Flavoured hot chocolate - Vanilla 2.60 2.90 | Flavoured iced latte - Caramel 2.75 3.25
Flavoured iced latte - Hazelnut 2.75 3.25 | Flavoured iced latte - Vanilla 2.75 3.25
Flavoured latte - Caramel 2.55 2.85 | Flavoured latte - Hazelnut 2.55 2.85
Flavoured latte - Vanilla 2.55 2.85 | Frappes - Coffee 2.75 3.25
Frappes - Strawberries & Cream 2.75 3.25 | Glass of milk 0.70 1.10 | Hot Chocolate 1.40 1.70
Hot chocolate 2.20 2.90 | Iced americano 2.15 2.50 | Iced latte 2.35 2.85 | Latte 2.15 2.45
Luxury hot chocolate 2.40 2.70 | Mocha 2.30 2.70 | Red Label tea 1.20 1.80
Smoothies - Berry Beautiful 2.00 2.50 | Smoothies - Carrot Kick 2.00 2.50
Smoothies - Glowing Greens 2.00 2.50 | Speciality Tea - Camomile 1.30 1.60
Speciality Tea - Darjeeling 1.30 1.60 | Speciality Tea - Earl Grey 1.30 1.60
Speciality Tea - English breakfast 1.30 1.60 | Speciality Tea - Fruit 1.30 1.60
Speciality Tea - Green 1.30 1.60 | Speciality Tea - Peppermint 1.30 1.60
"""


def _menu() -> dict[tuple[str, str], Decimal]:
    prices: dict[tuple[str, str], Decimal] = {}
    for entry in MENU_TEXT.replace("\n", " | ").split("|"):
        if entry.strip():
            name, regular, large = entry.strip().rsplit(" ", 2)
            prices["Regular", name] = Decimal(regular)
            prices["Large", name] = Decimal(large)
    return prices


MENU = _menu()
ITEM_RE = re.compile(r"^(Regular|Large) (.+) - (\d+\.\d\d)$")
TOTAL_RE = re.compile(r"^\d+\.\d{1,2}$")
FILE_RE = re.compile(r"^([a-z_\-]+)_(\d\d-\d\d-\d{4})_(0[89])-00-00\.csv$")
NAME_RE = re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+$")


@dataclass
class Counts:
    files: int = 0
    transactions: int = 0
    items: int = 0
    revenue_pence: int = 0
    bytes_written: int = 0


def check_line(raw: str) -> tuple[int, int]:
    """Check one raw line against Format A; return (items, total in pence)."""
    fields = next(csv.reader(io.StringIO(raw)))
    assert len(fields) == 7, raw
    stamp, branch, customer, basket, total, payment, card = fields
    datetime.datetime.strptime(stamp, "%d/%m/%Y %H:%M")
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", stamp)
    assert branch and branch[0].isupper()
    assert NAME_RE.match(customer), customer

    items = basket.split(", ")
    assert 1 <= len(items) <= 6
    item_sum = Decimal(0)
    for item in items:
        match = ITEM_RE.match(item)
        assert match, item
        size, product, price = match.groups()
        assert MENU[size, product] == Decimal(price), item
        item_sum += Decimal(price)

    assert TOTAL_RE.match(total), total
    assert not (len(total.split(".")[1]) == 2 and total.endswith("0")), total
    assert Decimal(total) == item_sum, raw

    # Quoted in the raw bytes exactly when the basket holds several items.
    if len(items) > 1:
        assert f',"{basket}",' in raw
    else:
        assert '"' not in raw

    assert payment in {"CARD", "CASH"}
    if payment == "CARD":
        assert re.fullmatch(r"[1-9]\d{15}", card), card
    else:
        assert card == ""
        assert raw.endswith(",CASH,")
    return len(items), int(item_sum * 100)


def check_dir(out_dir: Path) -> Counts:
    """Check every file in out_dir; return what they contain."""
    counts = Counts()
    for path in sorted(out_dir.iterdir()):
        data = path.read_bytes()
        counts.files += 1
        counts.bytes_written += len(data)
        assert data.endswith(b"\n") and not data.endswith(b"\n\n")
        assert b"\r" not in data
        lines = data.decode("utf-8").split("\n")[:-1]
        assert lines
        slug, day, open_hour = name_parts(path.name)
        stamps = []
        for raw in lines:
            n_items, pence = check_line(raw)
            counts.transactions += 1
            counts.items += n_items
            counts.revenue_pence += pence
            fields = next(csv.reader(io.StringIO(raw)))
            assert fields[1].lower().replace(" ", "_") == slug
            assert fields[0][:10] == day.replace("-", "/")
            stamps.append(fields[0][11:])
        assert stamps == sorted(stamps)
        assert stamps[0] >= f"{open_hour}:00"
        assert stamps[-1] < "20:00"
    return counts


def name_parts(file_name: str) -> tuple[str, str, str]:
    """(slug, DD-MM-YYYY, opening hour) of a generated file name."""
    match = FILE_RE.match(file_name)
    assert match, file_name
    slug, day, hour = match.groups()
    return slug, day, hour


def as_counts(result: GenerateResult) -> Counts:
    return Counts(
        result.files,
        result.transactions,
        result.items,
        result.revenue_pence,
        result.bytes_written,
    )


def read_all(out_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateResult]:
    out_dir = tmp_path_factory.mktemp("cafe") / "nested" / "out"
    result = generate(out_dir, branches=6, days=3, seed=11, per_day=60)
    return out_dir, result


def test_every_line_is_format_a(sample: tuple[Path, GenerateResult]) -> None:
    out_dir, _ = sample
    assert check_dir(out_dir).transactions > 0


def test_result_counts_match_files(sample: tuple[Path, GenerateResult]) -> None:
    out_dir, result = sample
    assert result.files == 18
    assert as_counts(result) == check_dir(out_dir)


def test_file_names_and_days(sample: tuple[Path, GenerateResult]) -> None:
    out_dir, _ = sample
    names = {p.name for p in out_dir.iterdir()}
    assert {name_parts(n)[1] for n in names} == {"25-08-2021", "26-08-2021", "27-08-2021"}
    slugs = {name_parts(n)[0] for n in names}
    assert slugs == {b.lower().replace(" ", "_") for b in branch_names(6)}
    assert not any(n.startswith(".") for n in names)  # no temporary files left


def test_basket_shapes_occur(sample: tuple[Path, GenerateResult]) -> None:
    out_dir, _ = sample
    text = "".join(p.read_text() for p in out_dir.iterdir())
    rows = list(csv.reader(io.StringIO(text)))
    sizes = {len(r[3].split(", ")) for r in rows}
    assert sizes == {1, 2, 3, 4, 5, 6}
    payments = [r[5] for r in rows]
    assert 0.55 < payments.count("CARD") / len(payments) < 0.85
    baskets = [r[3].split(", ") for r in rows]
    assert any(len(b) != len(set(b)) for b in baskets)  # repeated items are listed again


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", branches=3, days=2, seed=5, per_day=40)
    second = generate(tmp_path / "b", branches=3, days=2, seed=5, per_day=40)
    assert first == second
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")
    generate(tmp_path / "c", branches=3, days=2, seed=6, per_day=40)
    same, other = read_all(tmp_path / "a"), read_all(tmp_path / "c")
    assert len(other) == len(same)
    assert all(same.get(name) != data for name, data in other.items())


def test_files_do_not_depend_on_how_many_were_asked_for(tmp_path: Path) -> None:
    generate(tmp_path / "small", branches=2, days=1, seed=3, per_day=30)
    generate(tmp_path / "big", branches=5, days=3, seed=3, per_day=30)
    small, big = read_all(tmp_path / "small"), read_all(tmp_path / "big")
    assert len(small) == 2
    assert all(big[name] == data for name, data in small.items())


def test_start_date(tmp_path: Path) -> None:
    generate(tmp_path, branches=1, days=3, seed=1, per_day=5, start=datetime.date(2023, 12, 31))
    days = sorted(name_parts(p.name)[1] for p in tmp_path.iterdir())
    assert days == ["01-01-2024", "02-01-2024", "31-12-2023"]


def test_per_day_is_the_mean(tmp_path: Path) -> None:
    result = generate(tmp_path, branches=20, days=3, seed=9, per_day=100)
    per_file = [len(p.read_bytes().splitlines()) for p in tmp_path.iterdir()]
    assert 90 <= result.transactions / result.files <= 110
    assert all(60 <= n <= 140 for n in per_file)
    assert len(set(per_file)) > 10


def test_progress_called_once_per_file(tmp_path: Path) -> None:
    calls: list[int] = []
    result = generate(tmp_path, branches=4, days=2, seed=1, per_day=10, progress=calls.append)
    assert calls == [1] * result.files == [1] * 8


def test_branch_names() -> None:
    many = branch_names(3000)
    assert len(set(many)) == len(many)
    assert branch_names(5) == branch_names(50)[:5] == many[:5]
    assert any(" " in n or "-" in n for n in many[:20])
    for name in many:
        assert name == name.strip() and "  " not in name
        assert name[0].isupper() and not set(name) & set(",\"'\n")


def test_branch_names_in_files_are_prefix_stable(tmp_path: Path) -> None:
    def names_in(out_dir: Path) -> set[str]:
        return {p.read_text().split(",", 2)[1] for p in out_dir.iterdir()}

    generate(tmp_path / "five", branches=5, days=1, seed=2, per_day=1)
    generate(tmp_path / "fifty", branches=150, days=1, seed=2, per_day=1)
    assert names_in(tmp_path / "five") == set(branch_names(5))
    assert names_in(tmp_path / "fifty") == set(branch_names(150))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"branches": 0},
        {"branches": -3},
        {"days": 0},
        {"per_day": 0},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict[str, int]) -> None:
    args = {"branches": 1, "days": 1, "seed": 0, "per_day": 5} | kwargs
    out_dir = tmp_path / "never"
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        generate(
            out_dir,
            branches=args["branches"],
            days=args["days"],
            seed=args["seed"],
            per_day=args["per_day"],
        )
    assert not out_dir.exists()


def test_non_integer_arguments_raise_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="branches"):
        generate(tmp_path, branches=2.0, days=1, seed=0)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, database=None)
@given(
    branches=st.integers(1, 3),
    days=st.integers(1, 2),
    seed=st.integers(0, 2**63),
    per_day=st.integers(1, 25),
)
def test_counts_and_totals_property(branches: int, days: int, seed: int, per_day: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        result = generate(out_dir, branches=branches, days=days, seed=seed, per_day=per_day)
        assert result.files == branches * days
        assert as_counts(result) == check_dir(out_dir)
