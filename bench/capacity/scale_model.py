"""Where it breaks first: 10k, 100k and 1M users over the key design, against AWS's limits.

The shape of one conversation comes from the cost model's measurement (the same run:
every request of a real conversation on moto, metered per partition of the table):
what it reads and writes in the owner's partition, in the thread's, in each shard of
the gc and sweep indexes; its API requests, Lambda time, S3 requests and WebSocket
traffic, and when in the conversation each happens. A population of users with a
stated, skewed activity (Pareto, a few heavy users and many light ones) has those
conversations in its peak hour, each starting at a random second (fixed seed); the
model adds them up second by second and compares the busiest second of each resource
with its limit: DynamoDB's 3,000 RCU / 1,000 WCU per partition (the owner partition
`OWNER#{owner}`, a thread's `OWNER#…#THREAD#…`, each `GC#n` and `REPLY#n` shard) and
its table maximum, Lambda's account concurrency, the generate queue's event source,
SQS in flight, the HTTP API stage's throttle (`infra/config.py`) and the account's,
S3 requests per prefix (`{owner}/`), WebSocket connections per second.

Configure the population with CAPACITY_POPULATION (inline JSON or a file of
`Population` fields), the conversation with CAPACITY_WORKLOAD (see cost_model).
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agentfiles import topology
from bench.capacity import cost_model
from bench.capacity import pricing as q
from bench.capacity.meter import Call, partition_kind
from infra.config import DeploymentConfig

DAY_S = 86_400
HOUR_S = 3_600
OPENING_S = 10  # from opening the thread to the first prompt: the uploads and their checks


class Population(BaseModel):
    """Who uses it, and when."""

    model_config = ConfigDict(extra="forbid")

    scales: list[int] = [10_000, 100_000, 1_000_000]
    conversations_per_user_per_day: float = 1.0  # the mean over all users, light and heavy
    pareto_alpha: float = 1.2  # each user's activity ~ Pareto(alpha): a few heavy users, many light
    max_conversations_per_user_per_day: float = 300.0  # the heaviest (scripted) users are capped here
    peak_hour_share: float = 0.10  # of a day's conversations, in its busiest hour
    top_owners: int = 10  # the heaviest users, whose own partitions and prefixes are followed
    seed: int = 2026


def load_population(environ: Mapping[str, str] = os.environ) -> Population:
    text = environ.get("CAPACITY_POPULATION", "").strip()
    if not text:
        return Population()
    return Population.model_validate_json(text if text.startswith("{") else Path(text).read_text())


# ---- one conversation's shape, from the measurement -------------------------------------

HTTP = "HTTP API requests/s"
TABLE_READ = "table RRU/s"
TABLE_WRITE = "table WRU/s"
OWNER_READ = "owner read"
OWNER_WRITE = "owner write"
THREAD_READ = "thread read"
THREAD_WRITE = "thread write"
GC_WRITE = f"{topology.GC_INDEX.name} write"
SWEEP_WRITE = f"{topology.SWEEP_INDEX.name} write"
S3_PUT = "S3 PUT/s"
S3_GET = "S3 GET/s"
WS_MESSAGES = "WebSocket messages/s"
WS_CONNECTS = "WebSocket connects/s"
SHORT_BUSY = "short functions busy"  # seconds of api, upload_trigger, WebSocket handlers per second
GENERATE = "generate running"

STREAM_LABELS = {"poll", "reply progress", "delta row", "subscriber look-up", "delta frame"}
MIDDLE_LABELS = {"catch-up read", "view image"}


@dataclass
class Shape:
    """What one conversation does, when. Per-turn moments are means over its turns."""

    mode: str
    turns: int
    stream_s: float
    period_s: float  # from one prompt to the next
    generate_s: float  # one reply's generate invocation, billed
    files: int
    opening: Counter[str] = field(default_factory=Counter)  # spread over the first OPENING_S
    save: Counter[str] = field(default_factory=Counter)  # at each prompt
    start: Counter[str] = field(default_factory=Counter)  # as each reply starts
    stream: Counter[str] = field(default_factory=Counter)  # spread over each reply's stream
    middle: Counter[str] = field(default_factory=Counter)  # once, half way

    @property
    def duration_s(self) -> float:
        return OPENING_S + self.turns * self.period_s

    def save_at(self, turn: int) -> int:
        return round(OPENING_S + turn * self.period_s)


def _amounts(call: Call, weight: float) -> Counter[str]:
    usage = call.usage
    out: Counter[str] = Counter()
    out[HTTP] += usage[q.HTTP_API_REQUESTS]
    out[TABLE_READ] += usage[q.DDB_READ_UNITS]
    out[TABLE_WRITE] += usage[q.DDB_WRITE_UNITS] + usage[q.DDB_INDEX_WRITE_UNITS]
    for (partition, access), request_units in call.partitions.items():
        out[f"{partition_kind(partition)} {access}"] += request_units
    out[S3_PUT] += usage[q.S3_PUT_REQUESTS]
    out[S3_GET] += usage[q.S3_GET_REQUESTS]
    out[WS_MESSAGES] += usage[q.WEBSOCKET_MESSAGES]
    if call.service == "lambda" and call.caller != "generate":
        function = topology.FUNCTIONS.get(call.caller, topology.FUNCTIONS["api"])
        out[SHORT_BUSY] += usage[q.LAMBDA_GB_SECONDS] / (function.memory_mb / 1024)
        if call.label == "connect":
            out[WS_CONNECTS] += 1
    return Counter({k: v * weight for k, v in out.items() if v})


def _moment(call: Call) -> str:
    if call.turn < 0:
        return "middle" if call.label in MIDDLE_LABELS else "opening"
    if call.label == "save message":
        return "save"
    return "stream" if call.label in STREAM_LABELS else "start"


def shape(m: cost_model.Measurement, mode: str) -> Shape:
    w = m.workload
    weighted = cost_model.polling_scenario(m) if mode == "polling" else cost_model.push_scenario(m)
    generate_gb_s = sum(c.usage[q.LAMBDA_GB_SECONDS] * wt for c, wt in weighted if c.caller == "generate")
    memory_gb = topology.FUNCTIONS["generate"].memory_mb / 1024
    s = Shape(
        mode=mode,
        turns=w.turns,
        stream_s=w.stream_seconds,
        period_s=w.stream_seconds + w.think_seconds,
        generate_s=generate_gb_s / memory_gb / w.turns,
        files=w.images + w.pdfs,
    )
    for call, weight in weighted:
        getattr(s, _moment(call)).update(_amounts(call, weight))
    for moment in (s.save, s.start, s.stream):
        for key in moment:
            moment[key] /= w.turns
    return s


# ---- a population's busiest hour ----------------------------------------------------------


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


@dataclass
class Series:
    """Per-second totals over the peak hour, with the conversations already running at
    its start (`lead` seconds before it)."""

    lead: int
    _steps: dict[str, list[float]] = field(default_factory=dict)  # x[t] - x[t-1]
    _values: dict[str, list[float]] = field(default_factory=dict)

    def steps(self, metric: str) -> list[float]:
        if metric not in self._steps:
            self._steps[metric] = [0.0] * (2 * self.lead + HOUR_S + 2)
        self._values.pop(metric, None)
        return self._steps[metric]

    def values(self, metric: str) -> list[float]:
        if metric not in self._values:
            total, values = 0.0, []
            for step in self._steps.get(metric, []):
                total += step
                values.append(total)
            self._values[metric] = values
        return self._values[metric]

    def peak(self, metric: str) -> float:
        values = self.values(metric)
        return max(values[self.lead : self.lead + HOUR_S]) if values else 0.0


def _template(s: Shape) -> dict[str, list[tuple[int, float]]]:
    """One conversation as steps per metric: (second from its start, change of the
    per-second amount). An event within a second is a step up and one down."""
    template: dict[str, list[tuple[int, float]]] = {}

    def rate(metric: str, start: int, end: int, amount: float) -> None:
        template.setdefault(metric, []).extend(((start, amount), (end, -amount)))

    for metric, amount in s.opening.items():
        rate(metric, 0, OPENING_S, amount / OPENING_S)
    middle = round(s.duration_s / 2)
    for metric, amount in s.middle.items():
        rate(metric, middle, middle + 1, amount)
    stream = math.ceil(s.stream_s)
    whole, part = divmod(s.generate_s, 1)
    for turn in range(s.turns):
        at = s.save_at(turn)
        for metric, amount in (s.save + s.start).items():
            rate(metric, at, at + 1, amount)
        for metric, amount in s.stream.items():
            rate(metric, at, at + stream, amount / s.stream_s)
        rate(GENERATE, at, at + int(whole), 1)
        rate(GENERATE, at + int(whole), at + int(whole) + 1, part)
    return template


def _spread(series: Series, starts: Mapping[int, float], s: Shape) -> None:
    """Every conversation started at second t (`starts[t]` of them) adds its shape."""
    for metric, changes in _template(s).items():
        steps = series.steps(metric)  # long enough: a start is before 2 leads + an hour
        for t, n in starts.items():
            for offset, change in changes:
                steps[t + offset] += change * n


@dataclass
class Crowd:
    """Who starts a conversation when, in and just before the peak hour."""

    users: int
    lead: int
    conversations: int  # started in the hour
    top_share: float  # of all conversations, held by the 1% busiest users
    heaviest_daily: float
    starts: Counter[int]  # second → conversations started
    heavy: list[Counter[int]]  # the same for each of the heaviest users
    gc: list[Counter[int]]  # per gc shard: second → files registered on it
    sweep: list[Counter[int]]  # per sweep shard: second → replies asked on it


def crowd(users: int, s: Shape, p: Population) -> Crowd:
    rng = random.Random(f"{p.seed}:{users}")
    raw = [rng.paretovariate(p.pareto_alpha) for _ in range(users)]
    scale = p.conversations_per_user_per_day / (sum(raw) / users)
    daily = [min(r * scale, p.max_conversations_per_user_per_day) for r in raw]
    lead = math.ceil(s.duration_s)
    window = (HOUR_S + lead) / HOUR_S
    heavy = sorted(range(users), key=daily.__getitem__, reverse=True)[: p.top_owners]
    heavy_starts: dict[int, Counter[int]] = {u: Counter() for u in heavy}
    starts: Counter[int] = Counter()
    gc: list[Counter[int]] = [Counter() for _ in range(topology.GC_SHARDS)]
    sweep: list[Counter[int]] = [Counter() for _ in range(topology.SWEEP_SHARDS)]
    saves = [s.save_at(turn) for turn in range(s.turns)]
    random_ = rng.random
    for user in range(users):
        for _ in range(_poisson(rng, daily[user] * p.peak_hour_share * window)):
            t = int(random_() * (HOUR_S + lead))  # second `lead` is the hour's first
            starts[t] += 1
            if user in heavy_starts:
                heavy_starts[user][t] += 1
            for _ in range(s.files):  # each file's gc writes land on one shard
                gc[int(random_() * topology.GC_SHARDS)][t] += 1
            for at in saves:  # each reply's sweep writes land on one shard
                sweep[int(random_() * topology.SWEEP_SHARDS)][t + at] += 1
    ranked = sorted(daily, reverse=True)
    return Crowd(
        users=users,
        lead=lead,
        conversations=sum(n for t, n in starts.items() if t >= lead),
        top_share=sum(ranked[: max(1, users // 100)]) / sum(daily),
        heaviest_daily=ranked[0],
        starts=starts,
        heavy=[heavy_starts[u] for u in heavy],
        gc=gc,
        sweep=sweep,
    )


@dataclass
class Hour:
    """A crowd's peak hour, second by second, for one way of delivering replies."""

    crowd: Crowd
    everyone: Series
    owners: list[Series]  # the heaviest users, one each
    gc_shards: list[Series]
    sweep_shards: list[Series]
    thread: Series  # one conversation alone


def simulate(c: Crowd, s: Shape) -> Hour:
    everyone = Series(c.lead)
    _spread(everyone, c.starts, s)
    owners = []
    for starts in c.heavy:
        series = Series(c.lead)
        _spread(series, starts, s)
        owners.append(series)
    gc_per_file = (s.opening[GC_WRITE] + s.turns * (s.save[GC_WRITE] + s.start[GC_WRITE])) / max(1, s.files)
    sweep_per_reply = s.save[SWEEP_WRITE] + s.start[SWEEP_WRITE]
    shards: dict[str, list[Series]] = {"gc": [], "sweep": []}
    for name, counts_by_shard, per_event in (("gc", c.gc, gc_per_file), ("sweep", c.sweep, sweep_per_reply)):
        for counts in counts_by_shard:
            series = Series(c.lead)
            steps = series.steps("writes")
            for t, n in counts.items():
                steps[t] += per_event * n
                steps[t + 1] -= per_event * n
            shards[name].append(series)
    thread = Series(c.lead)
    _spread(thread, {c.lead: 1}, s)
    return Hour(c, everyone, owners, shards["gc"], shards["sweep"], thread)


# ---- limits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    name: str
    kind: str  # setting, quota, design
    limit: float
    unit: str
    change: str

    def demand(self, hour: Hour) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Peak(Limit):
    metrics: tuple[str, ...] = ()
    where: str = "everyone"  # everyone, owners, thread, gc, sweep

    def demand(self, hour: Hour) -> float:
        if self.where == "everyone":
            return sum(hour.everyone.peak(m) for m in self.metrics)
        if self.where == "gc":
            return max(series.peak("writes") for series in hour.gc_shards)
        if self.where == "sweep":
            return max(series.peak("writes") for series in hour.sweep_shards)
        group = hour.owners if self.where == "owners" else [hour.thread]
        return max(sum(series.peak(m) for m in self.metrics) for series in group)


@dataclass(frozen=True)
class Concurrency(Limit):
    """Concurrent executions: generate's running invocations, and for the account the
    short functions' busy seconds per second (Little's law) on top."""

    with_short: bool = False

    def demand(self, hour: Hour) -> float:
        generate = hour.everyone.values(GENERATE)
        short = hour.everyone.values(SHORT_BUSY) if self.with_short else []
        lead = hour.everyone.lead
        busiest = 0.0
        for t in range(lead, lead + HOUR_S):
            busiest = max(busiest, generate[t] + (short[t] if short else 0.0))
        return busiest


def limits(config: DeploymentConfig | None = None) -> list[Limit]:
    config = config or DeploymentConfig()
    return [
        Peak(
            f"API stage throttle (burst {config.throttle_burst})",
            "setting",
            config.throttle_rate,
            "requests/s",
            "raise throttleRate and throttleBurst (cdk -c throttleRate=...); push needs far fewer requests",
            metrics=(HTTP,),
        ),
        Peak(
            "API Gateway account throttle",
            "quota",
            10_000,
            "requests/s",
            "ask for a higher 'throttle rate' quota for the account and Region; push removes the polls",
            metrics=(HTTP,),
        ),
        Concurrency(
            "Lambda concurrent executions",
            "quota",
            1_000,
            "running",
            "ask for a higher concurrency quota; reserve concurrency for api so generate cannot starve it,"
            " and cap generate with the generations event source's MaximumConcurrency",
            with_short=True,
        ),
        Concurrency(
            "generations event source",
            "AWS limit",
            1_000,
            "running",
            "an SQS event source runs at most 1,000 batches at once (batch size 1 here): use its provisioned"
            " mode, or shard the generations queue",
        ),
        Concurrency(
            "SQS in flight (generations)",
            "quota",
            120_000,
            "messages",
            "never reached before Lambda concurrency; a second queue if it were",
        ),
        Peak(
            "DynamoDB table reads",
            "quota",
            40_000,
            "RRU/s",
            "ask for a higher table-level quota; set warm throughput before a launch (a new on-demand table"
            " starts at 12,000 RRU/s)",
            metrics=(TABLE_READ,),
        ),
        Peak(
            "DynamoDB table writes",
            "quota",
            40_000,
            "WRU/s",
            "ask for a higher table-level quota; set warm throughput before a launch (a new on-demand table"
            " starts at 4,000 WRU/s)",
            metrics=(TABLE_WRITE,),
        ),
        Peak(
            "owner partition reads (busiest owner)",
            "design",
            3_000,
            "RCU/s",
            "move file and hash rows out of the owner's partition (their own partition keys)",
            metrics=(OWNER_READ,),
            where="owners",
        ),
        Peak(
            "owner partition writes (busiest owner)",
            "design",
            1_000,
            "WCU/s",
            "move file and hash rows out of the owner's partition; a per-owner generation rate limit",
            metrics=(OWNER_WRITE,),
            where="owners",
        ),
        Peak(
            "thread partition reads (one conversation)",
            "design",
            3_000,
            "RCU/s",
            "smaller pages (limit) for polling; push reads only deltas",
            metrics=(THREAD_READ,),
            where="thread",
        ),
        Peak(
            "thread partition writes (one conversation)",
            "design",
            1_000,
            "WCU/s",
            "a longer STREAM_FLUSH_MS",
            metrics=(THREAD_WRITE,),
            where="thread",
        ),
        Peak(
            f"{topology.GC_INDEX.name} shard writes",
            "setting",
            1_000,
            "WCU/s",
            f"raise GC_SHARDS (now {topology.GC_SHARDS}) in layers/agentfiles/topology.py",
            where="gc",
        ),
        Peak(
            f"{topology.SWEEP_INDEX.name} shard writes",
            "setting",
            1_000,
            "WCU/s",
            f"raise SWEEP_SHARDS (now {topology.SWEEP_SHARDS}) in layers/agentfiles/topology.py",
            where="sweep",
        ),
        Peak(
            "S3 PUT per prefix (busiest owner)",
            "AWS limit",
            3_500,
            "requests/s",
            "keys are already {owner}/{fileId}; a hashed prefix would spread one owner",
            metrics=(S3_PUT,),
            where="owners",
        ),
        Peak(
            "S3 GET per prefix (busiest owner)",
            "AWS limit",
            5_500,
            "requests/s",
            "keys are already {owner}/{fileId}; a hashed prefix would spread one owner",
            metrics=(S3_GET,),
            where="owners",
        ),
        Peak(
            "WebSocket new connections",
            "quota",
            500,
            "connections/s",
            "ask for a higher quota for new WebSocket connections per second",
            metrics=(WS_CONNECTS,),
        ),
    ]


# ---- report ---------------------------------------------------------------------------------


@dataclass
class Row:
    limit: Limit
    demand: dict[str, float]  # mode → busiest second

    def use(self, mode: str) -> float:
        return self.demand[mode] / self.limit.limit


@dataclass
class Scale:
    users: int
    hours: dict[str, Hour]  # mode → the peak hour
    rows: list[Row]

    def first(self, mode: str) -> Row:
        """The limit the busiest second comes closest to (or passes the most)."""
        return max(self.rows, key=lambda row: row.use(mode))


@dataclass
class ScaleReport:
    population: Population
    scales: list[Scale]
    shapes: dict[str, Shape]


def report(m: cost_model.Measurement | None = None, population: Population | None = None) -> ScaleReport:
    m = m or cost_model.measure()
    p = population or load_population()
    shapes = {mode: shape(m, mode) for mode in ("polling", "push")}
    checks = limits()
    scales = []
    for users in p.scales:
        people = crowd(users, shapes["polling"], p)
        hours = {mode: simulate(people, s) for mode, s in shapes.items()}
        rows = [Row(limit, {mode: limit.demand(hour) for mode, hour in hours.items()}) for limit in checks]
        scales.append(Scale(users, hours, rows))
    return ScaleReport(p, scales, shapes)


def users_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def describe(r: ScaleReport) -> list[str]:
    p, s = r.population, r.shapes["polling"]
    return [
        f"population: each user's conversations a day ~ Pareto(alpha={p.pareto_alpha}), scaled to a mean of "
        f"{p.conversations_per_user_per_day:g} and capped at {p.max_conversations_per_user_per_day:g}; "
        f"{p.peak_hour_share:.0%} of a day's conversations in the peak hour, each starting at a random "
        f"second (seed {p.seed})",
        f"conversation (measured by cost_model): {s.turns} turns, one every {s.period_s:g} s, each reply "
        f"streaming {s.stream_s:g} s with generate running {s.generate_s:.1f} s; {s.files} uploads first",
        f"limits: HTTP API stage {DeploymentConfig().throttle_rate:g} requests/s (infra/config.py), "
        f"GC_SHARDS={topology.GC_SHARDS}, SWEEP_SHARDS={topology.SWEEP_SHARDS} (topology.py); the rest "
        "are AWS's defaults per account and Region",
    ]


def population_table(r: ScaleReport) -> list[str]:
    rows = [
        f"{'users':>7}{'conv. in peak hour':>20}{'top 1% share':>14}{'heaviest/day':>14}"
        f"{'generate at peak':>18}{'others (polling)':>18}"
    ]
    for scale in r.scales:
        people = scale.hours["polling"].crowd
        hour = scale.hours["polling"]
        rows.append(
            f"{users_label(scale.users):>7}{people.conversations:>20,}{people.top_share:>14.0%}"
            f"{people.heaviest_daily:>14.0f}{hour.everyone.peak(GENERATE):>18,.0f}"
            f"{hour.everyone.peak(SHORT_BUSY):>18,.0f}"
        )
    return rows


def limits_table(scale: Scale) -> list[str]:
    rows = [f"{'limit':<44}{'kind':<10}{'value':>9}{'polling':>18}{'push':>16}"]
    for row in sorted(scale.rows, key=lambda row: -max(row.use("polling"), row.use("push"))):
        cells = "".join(f"{row.demand[mode]:>9,.0f} {row.use(mode):>6.0%}" for mode in ("polling", "push"))
        rows.append(f"{row.limit.name:<44}{row.limit.kind:<10}{row.limit.limit:>9,.0f}  {cells}")
    return rows


def first_limits(r: ScaleReport) -> list[str]:
    """At each scale and for each delivery: the first limit, what moves it, and what
    binds once it has moved."""
    rows = []
    for scale in r.scales:
        for mode in ("polling", "push"):
            ranked = sorted(scale.rows, key=lambda row: -row.use(mode))
            first, rest = ranked[0], ranked[1:]
            hit = "hits" if first.use(mode) >= 1 else "comes closest to"
            rows.append(
                f"{users_label(scale.users)} users, {mode}: {hit} {first.limit.name} "
                f"({first.demand[mode]:,.0f} of {first.limit.limit:,.0f} {first.limit.unit}, "
                f"{first.use(mode):.0%}) → {first.limit.change}"
            )
            over = [row for row in rest if row.use(mode) >= 1]
            if over:
                for row in over:
                    rows.append(f"    then {row.limit.name} ({row.use(mode):.0%}) → {row.limit.change}")
            elif rest:
                rows.append(
                    f"    then nothing else; the nearest is {rest[0].limit.name} at {rest[0].use(mode):.0%}"
                )
    return rows


def run() -> None:
    r = report()
    for line in describe(r):
        print(f"   {line}")
    print()
    for line in population_table(r):
        print(f"   {line}")
    for scale in r.scales:
        print()
        print(f"   {users_label(scale.users)} users: the busiest second of the peak hour against each limit")
        for line in limits_table(scale):
            print(f"   {line}")
    print()
    print("   First limit at each scale, and what moves it:")
    for line in first_limits(r):
        print(f"   {line}")
