"""Coffee-shop order events: a deterministic generator with countable, injectable faults.

An event is one order line as JSON, keyed by order id, with a stable `event_id`. For a given
`seed` the same messages come out in the same order, so every figure downstream is fixed.
Each message carries the label of what it is (`kind`) and where it must end up
(`destination`: `raw`, or `quarantine:<reason>`), so tests can assert that each injected
fault lands exactly where it should.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

COFFEE_TYPES = ("Arabica", "Robusta", "Liberica", "Excelsa")
ROASTS = ("Light", "Medium", "Dark")
SIZES_KG = (0.2, 0.5, 1.0, 2.5)
COUNTRIES = ("United States", "Ireland", "United Kingdom")
CURRENCY = {"United States": "USD", "Ireland": "EUR", "United Kingdom": "GBP"}
# The currencies sales are made in, in COUNTRIES' order (silver's known_currency expectation, 06).
CURRENCIES = tuple(dict.fromkeys(CURRENCY[c] for c in COUNTRIES))

# Fields every valid event has; a message missing one of them is quarantined.
REQUIRED_FIELDS = ("event_id", "order_id", "event_ts", "customer_id", "product_id", "quantity")
# The new field that starts to appear part-way through the stream (schema drift).
DRIFT_FIELD = "promo_code"

# Quarantine reasons, shared by the stream (02) and the quality checks (04).
MALFORMED_JSON = "malformed_json"
MISSING_REQUIRED = "missing_required_field"
INVALID_QUANTITY = "invalid_quantity"
UNKNOWN_PRODUCT = "unknown_product"
REASONS = (MALFORMED_JSON, MISSING_REQUIRED, INVALID_QUANTITY, UNKNOWN_PRODUCT)


@dataclass(frozen=True)
class Product:
    product_id: str
    coffee_type: str
    roast: str
    size_kg: float
    unit_price: float


def _price(coffee: str, roast: str, size: float) -> float:
    per_kg = {"Arabica": 24.0, "Robusta": 16.0, "Liberica": 28.0, "Excelsa": 26.0}[coffee]
    per_kg *= {"Light": 1.0, "Medium": 1.05, "Dark": 1.1}[roast]
    # Bigger bags are cheaper per kilogram.
    per_kg *= {0.2: 1.25, 0.5: 1.1, 1.0: 1.0, 2.5: 0.9}[size]
    return round(per_kg * size, 2)


# A product id is <coffee>-<roast>-<size>, e.g. ARA-L-0.2: these are its three parts.
def _coffee_code(coffee: str) -> str:
    return coffee[:3].upper()


def _roast_code(roast: str) -> str:
    return roast[0]


def _size_code(size_kg: float) -> str:
    return f"{size_kg:g}"


PRODUCTS: tuple[Product, ...] = tuple(
    Product(f"{_coffee_code(c)}-{_roast_code(r)}-{_size_code(s)}", c, r, s, _price(c, r, s))
    for c in COFFEE_TYPES
    for r in ROASTS
    for s in SIZES_KG
)
PRODUCT_IDS = frozenset(p.product_id for p in PRODUCTS)
# A regular expression that matches exactly the ids of PRODUCTS (silver's known_product
# expectation, 06). It means the same in Python's re, in Spark's RLIKE (Java regex) and inside a
# Spark SQL string literal: a literal dot is written [.], not \., because Spark SQL reads a
# backslash in a string literal as an escape ('\.' is just '.').
PRODUCT_ID_PATTERN = "^({})-[{}]-({})$".format(
    "|".join(_coffee_code(c) for c in COFFEE_TYPES),
    "".join(_roast_code(r) for r in ROASTS),
    "|".join(_size_code(s).replace(".", "[.]") for s in SIZES_KG),
)


@dataclass(frozen=True)
class Customer:
    customer_id: str
    email: str
    country: str
    loyalty: bool


def customers(seed: int, count: int = 200) -> tuple[Customer, ...]:
    rng = random.Random(f"customers-{seed}")
    first = ("ana", "ben", "cara", "dan", "eve", "finn", "gia", "hugo", "isla", "jack", "kai", "lea")
    domains = ("example.com", "example.org", "example.net")
    out = []
    for i in range(1, count + 1):
        name = rng.choice(first)
        out.append(
            Customer(f"C{i:05d}", f"{name}.{i}@{rng.choice(domains)}", rng.choice(COUNTRIES), rng.random() < 0.3)
        )
    return tuple(out)


@dataclass(frozen=True)
class GeneratorConfig:
    events: int = 2000  # distinct order-line events (faulty ones included)
    seed: int = 42
    malformed_rate: float = 0.01  # share sent as broken JSON
    invalid_rate: float = 0.02  # share with a bad value (negative quantity, unknown product, missing key)
    duplicate_rate: float = 0.02  # share sent a second time, byte for byte
    late_rate: float = 0.02  # share whose event time is hours behind the stream
    drift_after: float = 0.5  # fraction of the stream after which `promo_code` appears (1.0 = never)
    start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    mean_gap_s: float = 7.0  # average time between orders

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError(f"events must be >= 0, got {self.events}")
        for name in ("malformed_rate", "invalid_rate", "duplicate_rate", "late_rate", "drift_after"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.malformed_rate + self.invalid_rate > 1.0:
            raise ValueError("malformed_rate + invalid_rate must not exceed 1")


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    # valid | late | drift | malformed_json | invalid_quantity | unknown_product | missing_required_field | duplicate
    kind: str
    destination: str  # raw | quarantine:<reason>
    event_id: str | None = None


@dataclass
class Batch:
    """The generated messages and what each fault count is, for tests and the run summary."""

    config: GeneratorConfig
    messages: list[Message] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(m.kind for m in self.messages)
        return {k: c.get(k, 0) for k in ("valid", "late", "drift", *REASONS, "duplicate")}

    @property
    def expected(self) -> dict[str, int]:
        """Where every message must end up: raw rows and quarantined rows per reason."""
        dest = Counter(m.destination for m in self.messages)
        out = {"messages": len(self.messages), "raw": dest.get("raw", 0)}
        out.update({f"quarantine_{r}": dest.get(f"quarantine:{r}", 0) for r in REASONS})
        out["quarantine"] = sum(out[f"quarantine_{r}"] for r in REASONS)
        out["distinct_valid_events"] = len({m.event_id for m in self.messages if m.destination == "raw"})
        out["duplicates"] = sum(1 for m in self.messages if m.kind == "duplicate")
        return out


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _FaultPlan:
    """Which message indexes get which fault. Exact counts (not per-message coin flips), so a
    test can assert them to the unit."""

    malformed: set[int]
    invalid: set[int]
    late: set[int]
    drift_from: int


def _fault_plan(rng: random.Random, config: GeneratorConfig) -> _FaultPlan:
    n = config.events
    n_malformed, n_invalid = round(n * config.malformed_rate), round(n * config.invalid_rate)
    n_late = round(n * config.late_rate)
    order = list(range(n))
    rng.shuffle(order)
    return _FaultPlan(malformed=set(order[:n_malformed]), invalid=set(order[n_malformed : n_malformed + n_invalid]),
                      late=set(order[n_malformed + n_invalid : n_malformed + n_invalid + n_late]),
                      drift_from=int(n * config.drift_after))


def _order_line(rng: random.Random, config: GeneratorConfig, order_no: int, line_no: int, customer, ts: datetime):
    """One order line as the shop emits it, and its event time."""
    product = rng.choice(PRODUCTS)
    event_ts = ts + timedelta(milliseconds=rng.randrange(0, 1000))
    event = {
        "event_id": _event_id(rng),
        "order_id": f"O{config.seed:03d}-{order_no:07d}",
        "line_no": line_no,
        "event_ts": _iso(event_ts),
        "customer_id": customer.customer_id,
        "customer_email": customer.email,
        "country": customer.country,
        "loyalty_member": customer.loyalty,
        "product_id": product.product_id,
        "coffee_type": product.coffee_type,
        "roast": product.roast,
        "size_kg": product.size_kg,
        "unit_price": product.unit_price,
        "currency": CURRENCY[customer.country],
        "quantity": rng.choice((1, 1, 1, 2, 2, 3, 4, 6)),
    }
    return event, event_ts


def _with_faults(rng: random.Random, i: int, event: dict, event_ts: datetime, plan: _FaultPlan) -> tuple[str, str]:
    """Apply message `i`'s planned faults to `event` (in place): its kind and destination."""
    kind, destination = "valid", "raw"
    if i >= plan.drift_from:
        event[DRIFT_FIELD] = rng.choice(("WELCOME10", "LOYAL5", None, None))
        kind = "drift"
    if i in plan.late:
        event["event_ts"] = _iso(event_ts - timedelta(hours=rng.uniform(2, 6)))
        kind = "late"
    if i in plan.invalid:
        kind = rng.choice((INVALID_QUANTITY, UNKNOWN_PRODUCT, MISSING_REQUIRED))
        if kind == INVALID_QUANTITY:
            event["quantity"] = -rng.randint(1, 5)
        elif kind == UNKNOWN_PRODUCT:
            event["product_id"] = f"XXX-{rng.randint(100, 999)}"
        else:
            del event[rng.choice(REQUIRED_FIELDS)]
        destination = f"quarantine:{kind}"
    return kind, destination


def _message(rng: random.Random, event: dict, kind: str, destination: str, malformed: bool) -> Message:
    key = event.get("order_id", "").encode() or None
    value = json.dumps(event, separators=(",", ":")).encode()
    if malformed:
        kind, destination = MALFORMED_JSON, f"quarantine:{MALFORMED_JSON}"
        value = value[: rng.randrange(5, max(6, len(value) // 2))]  # truncated mid-object
    return Message(key, value, kind, destination, event.get("event_id") if destination == "raw" else None)


def _with_duplicates(rng: random.Random, config: GeneratorConfig, messages: list[Message],
                     valid: list[tuple[int, Message]]) -> list[Message]:
    """The same bytes again, a little later in the stream (a producer retry)."""
    n_dup = min(round(config.events * config.duplicate_rate), len(valid))
    after: dict[int, list[Message]] = {}
    for index, original in rng.sample(valid, n_dup):
        position = rng.randrange(index, len(messages))
        after.setdefault(position, []).append(
            Message(original.key, original.value, "duplicate", "raw", original.event_id))
    if not after:
        return messages
    merged: list[Message] = []
    for index, message in enumerate(messages):
        merged.append(message)
        merged.extend(after.get(index, ()))
    return merged


def generate(config: GeneratorConfig | None = None, **kwargs) -> Batch:
    """All messages for `config`: `events` distinct events, then duplicates interleaved."""
    config = config or GeneratorConfig(**kwargs)
    rng = random.Random(config.seed)
    people = customers(config.seed)
    batch = Batch(config)
    plan = _fault_plan(rng, config)
    ts, order_no, line_no, customer = config.start, 0, 0, people[0]
    valid: list[tuple[int, Message]] = []
    for i in range(config.events):
        # Orders have 1-3 lines; a new order starts with probability 1/2.
        if line_no == 0 or line_no >= 3 or rng.random() < 0.5:
            order_no, line_no = order_no + 1, 0
            customer = rng.choice(people)
            ts = ts + timedelta(seconds=rng.expovariate(1.0 / config.mean_gap_s))
        line_no += 1
        event, event_ts = _order_line(rng, config, order_no, line_no, customer, ts)
        kind, destination = _with_faults(rng, i, event, event_ts, plan)
        message = _message(rng, event, kind, destination, i in plan.malformed)
        batch.messages.append(message)
        if message.destination == "raw":
            valid.append((i, message))
    batch.messages = _with_duplicates(rng, config, batch.messages, valid)
    return batch
