"""Feed-scheduling instances (format `feed-schedule/1`, see ../shared/specs/feed-scheduling.md): read JSON or
YAML, validate with the failing field's path, and run cheap necessary-condition checks (a spec no reachable
crude can meet, more demand than can ever arrive...) before any solving.

Extra keys are kept: `Instance.raw` is the document as read, and `Instance.to_dict()` writes it back.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vai.core.errors import VaiError

FORMAT = "feed-schedule/1"
COST_KEYS = ("unloading", "sea_waiting", "storage_inventory", "charging_inventory", "changeover")
_TOP_KEYS = {"format", "name", "periods", "period_hours", "properties", "crudes", "vessels", "storage_tanks",
             "charging_tanks", "cdus", "limits", "costs", "notes", "source"}
_VESSEL_KEYS = {"id", "arrival", "crude", "volume", "tanks", "depart_by"}
_ST_KEYS = {"id", "min", "max", "initial"}
_CT_KEYS = {"id", "min", "max", "initial", "from", "demand", "spec"}
_CDU_KEYS = {"id", "from", "rate"}


@dataclass
class Issue:
    """One finding: `path` is the field's JSON path (e.g. `vessels[1].crude`)."""

    path: str
    message: str
    kind: str = "error"  # error (malformed), infeasible (provably no schedule), warning

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ValidationReport:
    errors: list[Issue] = field(default_factory=list)
    infeasible: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.infeasible

    def lines(self) -> list[str]:
        return ([f"error: {i}" for i in self.errors] + [f"infeasible: {i}" for i in self.infeasible]
                + [f"warning: {i}" for i in self.warnings])


@dataclass
class Vessel:
    id: str
    arrival: int
    crude: str
    volume: float
    tanks: list[str]
    depart_by: int | None = None


@dataclass
class Tank:
    id: str
    kind: str  # "storage" or "charging"
    min: float
    max: float
    initial: dict[str, float]
    sources: list[str] = field(default_factory=list)  # charging tanks: storage tanks that may feed it
    demand: float = 0.0
    spec: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def initial_volume(self) -> float:
        return float(sum(self.initial.values()))


@dataclass
class Cdu:
    id: str
    sources: list[str]
    rate_min: float
    rate_max: float


@dataclass
class Instance:
    name: str
    periods: int
    period_hours: float
    properties: list[str]
    crudes: dict[str, dict[str, float]]
    vessels: list[Vessel]
    storage_tanks: list[Tank]
    charging_tanks: list[Tank]
    cdus: list[Cdu]
    unload_max: float
    transfer_max: float
    costs: dict[str, float]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    # -- lookups ------------------------------------------------------------------------------------
    @property
    def tanks(self) -> list[Tank]:
        return self.storage_tanks + self.charging_tanks

    def tank(self, tank_id: str) -> Tank:
        for t in self.tanks:
            if t.id == tank_id:
                return t
        raise KeyError(tank_id)

    def vessel(self, vessel_id: str) -> Vessel:
        for v in self.vessels:
            if v.id == vessel_id:
                return v
        raise KeyError(vessel_id)

    def property_of(self, composition: dict[str, float], prop: str) -> float | None:
        """Volume-weighted property of a crude mix (None for an empty mix)."""
        total = sum(composition.values())
        if total <= 0:
            return None
        return sum(v * self.crudes[c][prop] for c, v in composition.items()) / total

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "instance") -> "Instance":
        """Parse and validate; raises VaiError listing every error (with its path) when malformed."""
        report = validate_dict(data)
        if report.errors:
            raise VaiError(f"{source} is not a valid feed-schedule instance:\n  "
                           + "\n  ".join(str(i) for i in report.errors[:30]))
        return _parse(data)


# -- reading ----------------------------------------------------------------------------------------
def read_document(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise VaiError(f"{path}: no such file")
    text = read_text(path, "an instance is JSON or YAML text")
    if not text.strip():
        raise VaiError(f"{path}: the file is empty")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        try:  # YAML saved under a .json name: say so, instead of only "Expecting value"
            import yaml

            if isinstance(yaml.safe_load(text), dict):
                hint = "; it reads as YAML, but a .json file is read as JSON: rename it to .yaml (or .yml)"
        except Exception:  # noqa: BLE001 - not YAML either
            pass
        raise VaiError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}){hint}") from None
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        mark = getattr(exc, "problem_mark", None)  # YAML errors: where, and the one line that says what
        if mark is not None:
            raise VaiError(f"{path}: not valid YAML (line {mark.line + 1}, column {mark.column + 1}: "
                           f"{getattr(exc, 'problem', None) or str(exc).splitlines()[0]})") from None
        raise VaiError(f"{path}: cannot parse ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise VaiError(f"{path}: the top level must be an object with the instance's keys")
    return data


def read_text(path: str | Path, what: str) -> str:
    """A file's text in the encoding it was saved in (UTF-8 with or without a byte-order mark, UTF-16 with its
    mark as PowerShell's `>` writes, or Windows-1252 as Notepad's "ANSI" saves); a binary or unreadable file is
    a VaiError naming the file (`what`: what it should be)."""
    from vai.core.tables import open_text, source_encoding

    path = Path(path)
    try:
        with open_text(path, errors="strict") as fh:  # the tables' encoding sniff, byte-order mark dropped
            text = fh.read()
    except UnicodeDecodeError as exc:
        encoding = source_encoding(path)
        raise VaiError(f"{path}: not a text file (byte {exc.object[exc.start]:#04x} is not "
                       f"{'UTF-8' if encoding.startswith('utf-8') else encoding}); {what}") from None
    except FileNotFoundError:
        raise VaiError(f"{path}: no such file") from None
    except OSError as exc:
        raise VaiError(f"{path}: cannot read ({exc.strerror or exc})") from None
    control = next((i for i, ch in enumerate(text) if ch < " " and ch not in "\t\r\n"), None)
    if control is not None:  # Windows-1252 decodes nearly any bytes: a NUL or other control character is binary
        raise VaiError(f"{path}: not a text file (control character {ord(text[control]):#04x} at character "
                       f"{control}); {what}")
    return text


def load_instance(path: str | Path) -> Instance:
    return Instance.from_dict(read_document(path), source=str(path))


def save_instance(instance: Instance | dict, path: str | Path) -> Path:
    from vai.core.io import atomic_write_text

    data = instance.to_dict() if isinstance(instance, Instance) else instance
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# -- validation -------------------------------------------------------------------------------------
def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x) -> bool:
    return _num(x) and float(x) == int(x)


def _names(xs) -> str:
    """Known ids or names for a message ("none" when there are none); YAML may give numbers as names."""
    return ", ".join(str(x) for x in xs if x is not None and x != "") or "none"


def validate_dict(data: dict[str, Any]) -> ValidationReport:
    """Structural validation, then (only when the structure is sound) the feasibility pre-checks."""
    rep = ValidationReport()
    err = lambda p, m: rep.errors.append(Issue(p, m))  # noqa: E731
    warn = lambda p, m: rep.warnings.append(Issue(p, m, "warning"))  # noqa: E731
    if not isinstance(data, dict):
        err("$", "the instance must be an object")
        return rep
    for k in data:
        if k not in _TOP_KEYS:
            warn(k, "unknown key (kept as is)")
    if data.get("format", FORMAT) != FORMAT:
        err("format", f"is {data.get('format')!r}; this reader knows {FORMAT!r}")
    periods = data.get("periods")
    if "periods" not in data:
        err("periods", "missing field 'periods' (the number of periods in the horizon)")
        periods = None
    elif not _int(periods) or periods < 1:
        err("periods", f"must be a positive whole number (got {periods!r})")
        periods = None
    if "period_hours" in data and (not _num(data["period_hours"]) or data["period_hours"] <= 0):
        err("period_hours", "must be a positive number")
    props = data.get("properties")
    if "properties" not in data:
        err("properties", "missing field 'properties' (the key components, e.g. [\"sulfur\"])")
        props = []
    elif not isinstance(props, list) or not all(isinstance(p, str) for p in props):
        err("properties", "must be a list of property names, e.g. [\"sulfur\"]")
        props = []
    elif len(set(props)) != len(props):
        err("properties", "lists a property twice")
    crudes = data.get("crudes")
    if "crudes" not in data:
        err("crudes", "missing field 'crudes' (each crude name mapped to its properties)")
        crudes = {}
    elif not isinstance(crudes, dict) or not crudes:
        err("crudes", "must be an object mapping each crude name to its properties")
        crudes = {}
    for c, cp in crudes.items():
        if not isinstance(c, str):  # YAML reads `1:` as a number; ids and crude names are strings everywhere
            err(f"crudes.{c}", f"a crude name must be a string (got {c!r}; quote it in YAML)")
        if not isinstance(cp, dict):
            err(f"crudes.{c}", "must be an object of property values")
            continue
        for p in props:
            if p not in cp:
                err(f"crudes.{c}.{p}", f"missing: every crude needs a value for each property ({', '.join(props)})")
            elif not _num(cp[p]) or not 0 <= cp[p] <= 1:
                err(f"crudes.{c}.{p}", f"must be a volume fraction between 0 and 1 (got {cp[p]!r})")
        for p in cp:
            if p not in props:
                warn(f"crudes.{c}.{p}", "is not listed in `properties` (ignored)")

    def check_list(key: str) -> list:
        items = data.get(key, [])
        if not isinstance(items, list):
            err(key, "must be a list")
            return []
        return items

    def check_ids(key: str, items: list, known_keys: set) -> list[str]:
        ids = []
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                err(f"{key}[{i}]", "must be an object")
                ids.append(None)
                continue
            tid = it.get("id")
            if "id" not in it:
                err(f"{key}[{i}].id", "missing field 'id'")
            elif not isinstance(tid, str) or not tid:
                err(f"{key}[{i}].id", f"must be a non-empty string (got {tid!r})")
                tid = None  # a number or list is no id: it must not be looked up or listed as one
            for k in it:
                if k not in known_keys:
                    warn(f"{key}[{i}].{k}", "unknown key (kept as is)")
            ids.append(tid)
        return ids

    vessels = check_list("vessels")
    sts = check_list("storage_tanks")
    cts = check_list("charging_tanks")
    cdus = check_list("cdus")
    v_ids = check_ids("vessels", vessels, _VESSEL_KEYS)
    st_ids = check_ids("storage_tanks", sts, _ST_KEYS)
    ct_ids = check_ids("charging_tanks", cts, _CT_KEYS)
    cdu_ids = check_ids("cdus", cdus, _CDU_KEYS)
    all_ids = [i for i in v_ids + st_ids + ct_ids + cdu_ids if i]
    for i in sorted({i for i in all_ids if all_ids.count(i) > 1}):
        err(i, "this id is used twice; vessels, tanks and CDUs need distinct ids")
    if not cdus:
        err("cdus", "at least one CDU is needed")
    if not cts:
        err("charging_tanks", "at least one charging tank is needed")

    def check_range(path: str, lo, hi, what: str) -> bool:
        ok = True
        for name, x in (("min", lo), ("max", hi)):
            if not _num(x) or x < 0:
                err(f"{path}.{name}" if what == "tank" else path, f"must be a non-negative number (got {x!r})")
                ok = False
        if ok and lo > hi:
            err(path, f"min {lo} is above max {hi}")
            ok = False
        return ok

    def check_initial(path: str, init) -> None:
        if not isinstance(init, dict):
            err(f"{path}.initial", "must be an object mapping crude -> volume")
            return
        for c, v in init.items():
            if c not in crudes:
                err(f"{path}.initial.{c}", f"unknown crude {c!r} (known: {_names(crudes)})")
            if not _num(v) or v < 0:
                err(f"{path}.initial.{c}", f"volume must be a non-negative number (got {v!r})")

    def check_tank(path: str, t: dict) -> None:
        """Capacity range, initial contents and their total against the range."""
        if "max" not in t:
            err(f"{path}.max", "missing field 'max' (the tank's capacity)")
            return
        if check_range(path, t.get("min", 0), t.get("max"), "tank"):
            check_initial(path, t.get("initial", {}))
            init = t.get("initial", {})
            if isinstance(init, dict) and all(_num(v) for v in init.values()):
                vol = sum(init.values())
                if not t.get("min", 0) - 1e-9 <= vol <= t["max"] + 1e-9:
                    err(f"{path}.initial", f"holds {vol:g}, outside the tank's [{t.get('min', 0)}, {t['max']}]")

    for i, t in enumerate(sts):
        if not isinstance(t, dict):
            continue
        path = f"storage_tanks[{i}]"
        check_tank(path, t)
    for i, t in enumerate(cts):
        if not isinstance(t, dict):
            continue
        path = f"charging_tanks[{i}]"
        check_tank(path, t)
        src = t.get("from", [])
        if not isinstance(src, list):
            err(f"{path}.from", "must be a list of storage tank ids")
        else:
            for j, s in enumerate(src):
                if s not in st_ids:
                    err(f"{path}.from[{j}]", f"unknown storage tank {s!r} (known: {_names(st_ids)})")
        if not _num(t.get("demand", 0)) or t.get("demand", 0) < 0:
            err(f"{path}.demand", f"must be a non-negative number (got {t.get('demand')!r})")
        spec = t.get("spec", {})
        if not isinstance(spec, dict):
            err(f"{path}.spec", "must map property -> [low, high]")
            spec = {}
        for p, b in spec.items():
            if p not in props:
                err(f"{path}.spec.{p}", f"unknown property {p!r} (known: {_names(props)})")
            if not (isinstance(b, list) and len(b) == 2 and all(_num(x) for x in b)):
                err(f"{path}.spec.{p}", f"must be [low, high] (got {b!r})")
            elif b[0] > b[1]:
                err(f"{path}.spec.{p}", f"low {b[0]} is above high {b[1]}")
    for i, v in enumerate(vessels):
        if not isinstance(v, dict):
            continue
        path = f"vessels[{i}]"
        for k, what in (("crude", "the crude it carries"), ("volume", "the volume it carries"),
                        ("arrival", "the period it arrives in"), ("tanks", "the storage tanks it may unload into")):
            if k not in v:
                err(f"{path}.{k}", f"missing field {k!r} ({what})")
        if "crude" in v and not isinstance(v["crude"], str):
            err(f"{path}.crude", f"must be a crude name (got {v['crude']!r}; known: {_names(crudes)})")
        elif "crude" in v and v["crude"] not in crudes:
            err(f"{path}.crude", f"unknown crude {v['crude']!r} (known: {_names(crudes)})")
        if "volume" in v and (not _num(v.get("volume")) or v.get("volume") <= 0):
            err(f"{path}.volume", f"must be a positive number (got {v.get('volume')!r})")
        arr = v.get("arrival")
        if "arrival" not in v:  # reported as missing above
            arr = None
        elif not _int(arr):  # "2", 2.5 or true is a typo, not a period off the horizon
            err(f"{path}.arrival", f"must be a whole number, the period it arrives in (got {arr!r})")
        elif arr < 0:
            err(f"{path}.arrival", f"must be a period number >= 0 (got {arr!r})")
        elif periods is not None and arr >= periods:
            err(f"{path}.arrival", f"period {arr} is after the horizon (periods 0..{periods - 1})")
        dep = v.get("depart_by")
        if dep is not None:
            if not _int(dep):
                err(f"{path}.depart_by", f"must be a whole number, the last period it may unload in (got {dep!r})")
            elif dep < 0:
                err(f"{path}.depart_by", f"must be a period number >= 0 (got {dep!r})")
            elif _int(arr) and dep < arr:
                err(f"{path}.depart_by", f"period {dep} is before its arrival {arr}")
        tanks = v.get("tanks")
        if "tanks" in v and (not isinstance(tanks, list) or not tanks):
            err(f"{path}.tanks", "must list at least one storage tank it may unload into")
        elif "tanks" in v:
            for j, s in enumerate(tanks):
                if s not in st_ids:
                    err(f"{path}.tanks[{j}]", f"unknown storage tank {s!r} (known: {_names(st_ids)})")
    for i, d in enumerate(cdus):
        if not isinstance(d, dict):
            continue
        path = f"cdus[{i}]"
        src = d.get("from")
        if "from" not in d:
            err(f"{path}.from", "missing field 'from' (the charging tanks that may feed it)")
        elif not isinstance(src, list) or not src:
            err(f"{path}.from", "must list at least one charging tank")
        else:
            for j, c in enumerate(src):
                if c not in ct_ids:
                    err(f"{path}.from[{j}]", f"unknown charging tank {c!r} (known: {_names(ct_ids)})")
        rate = d.get("rate")
        if "rate" not in d:
            err(f"{path}.rate", "missing field 'rate' ([min, max] charge per period)")
        elif not (isinstance(rate, list) and len(rate) == 2):
            err(f"{path}.rate", f"must be [min, max] charge per period (got {rate!r})")
        else:
            check_range(f"{path}.rate", rate[0], rate[1], "rate")
    limits = data.get("limits", {})
    if "limits" not in data:
        err("limits", "missing field 'limits' (unload_max and transfer_max, volume per period)")
    elif not isinstance(limits, dict):
        err("limits", "must be an object with unload_max and transfer_max")
        limits = {}
    for k in limits:
        if k not in ("unload_max", "transfer_max"):  # a misspelt limit would otherwise be silently unenforced
            warn(f"limits.{k}", "unknown limit (ignored; the limits are unload_max and transfer_max)")
    for k in ("unload_max", "transfer_max"):
        if k not in limits:
            if "limits" in data:  # a missing `limits` is one error above, not one per limit
                err(f"limits.{k}", f"missing field {k!r} (volume per period)")
        elif not _num(limits[k]) or limits[k] <= 0:
            err(f"limits.{k}", f"must be a positive number (got {limits[k]!r})")
    costs = data.get("costs", {})
    if not isinstance(costs, dict):
        err("costs", "must be an object")
        costs = {}
    for k in COST_KEYS:
        if k in costs and (not _num(costs[k]) or costs[k] < 0):
            err(f"costs.{k}", f"must be a non-negative number (got {costs[k]!r})")
    for k in costs:
        if k not in COST_KEYS:
            warn(f"costs.{k}", "unknown cost term (ignored)")
    if not rep.errors:
        rep.infeasible.extend(precheck(_parse(data)))
    return rep


def validate_instance(data_or_path) -> ValidationReport:
    data = data_or_path if isinstance(data_or_path, dict) else read_document(data_or_path)
    return validate_dict(data)


def _parse(data: dict[str, Any]) -> Instance:
    limits = data.get("limits", {})
    return Instance(
        name=str(data.get("name", "unnamed")),
        periods=int(data["periods"]),
        period_hours=float(data.get("period_hours", 24)),
        properties=list(data["properties"]),
        crudes={c: {p: float(cp[p]) for p in data["properties"]} for c, cp in data["crudes"].items()},
        vessels=[Vessel(v["id"], int(v["arrival"]), v["crude"], float(v["volume"]), list(v["tanks"]),
                        None if v.get("depart_by") is None else int(v["depart_by"])) for v in data.get("vessels", [])],
        storage_tanks=[Tank(t["id"], "storage", float(t.get("min", 0)), float(t["max"]),
                            {c: float(x) for c, x in t.get("initial", {}).items()}) for t in data.get("storage_tanks", [])],
        charging_tanks=[Tank(t["id"], "charging", float(t.get("min", 0)), float(t["max"]),
                             {c: float(x) for c, x in t.get("initial", {}).items()}, list(t.get("from", [])),
                             float(t.get("demand", 0)), {p: (float(b[0]), float(b[1])) for p, b in t.get("spec", {}).items()})
                        for t in data["charging_tanks"]],
        cdus=[Cdu(d["id"], list(d["from"]), float(d["rate"][0]), float(d["rate"][1])) for d in data["cdus"]],
        unload_max=float(limits["unload_max"]),
        transfer_max=float(limits["transfer_max"]),
        costs={k: float(data.get("costs", {}).get(k, 0.0)) for k in COST_KEYS},
        raw=copy.deepcopy(data),
    )


# -- feasibility pre-checks ---------------------------------------------------------------------------
def reachable_materials(inst: Instance, tank: Tank) -> set[str]:
    """Crudes that can ever be in `tank` (initial contents, and what vessels / storage tanks can bring)."""
    mats = {c for c, v in tank.initial.items() if v > 0}
    if tank.kind == "storage":
        mats |= {v.crude for v in inst.vessels if tank.id in v.tanks}
    else:
        for s in tank.sources:
            mats |= reachable_materials(inst, inst.tank(s))
    return mats


def precheck(inst: Instance) -> list[Issue]:
    """Necessary conditions; each failure proves the instance infeasible and says why in plain words."""
    out: list[Issue] = []
    P = inst.periods
    ct_index = {t.id: i for i, t in enumerate(inst.charging_tanks)}
    for i, v in enumerate(inst.vessels):
        last = P - 1 if v.depart_by is None else min(v.depart_by, P - 1)
        window = last - v.arrival + 1
        if window * inst.unload_max < v.volume - 1e-9:
            out.append(Issue(f"vessels[{i}].volume",
                             f"{v.id} carries {v.volume:g} but can unload at most {inst.unload_max:g} per period in its "
                             f"{window} period(s) {v.arrival}..{last}", "infeasible"))
        cap = sum(inst.tank(s).max - inst.tank(s).min for s in v.tanks)
        if cap < v.volume - 1e-9:
            out.append(Issue(f"vessels[{i}].tanks", f"{v.id} carries {v.volume:g} but its tanks {', '.join(v.tanks)} "
                             f"hold at most {cap:g} above their minimum together", "infeasible"))
    for t in inst.charging_tanks:
        path = f"charging_tanks[{ct_index[t.id]}]"
        if t.demand <= 0:
            continue
        if not any(t.id in d.sources for d in inst.cdus):
            out.append(Issue(f"{path}.demand", f"{t.id} must send {t.demand:g} but no CDU takes from it", "infeasible"))
        mats = reachable_materials(inst, t)
        for p, (lo, hi) in t.spec.items():
            vals = sorted(inst.crudes[c][p] for c in mats)
            if not vals:
                continue
            if vals[0] > hi + 1e-9 or vals[-1] < lo - 1e-9:
                out.append(Issue(f"{path}.spec.{p}",
                                 f"{t.id} spec {p} in [{lo:g}, {hi:g}] cannot be met: the crudes that can reach {t.id} "
                                 f"({', '.join(sorted(mats))}) have {p} between {vals[0]:g} and {vals[-1]:g}", "infeasible"))
        # Supply that can reach this tank: its own stock, its storage tanks' stock and vessels into them.
        sts = [inst.tank(s) for s in t.sources]
        supply = t.initial_volume - t.min + sum(s.initial_volume - s.min for s in sts) + sum(
            v.volume for v in inst.vessels if set(v.tanks) & set(t.sources))
        if supply < t.demand - 1e-9:
            out.append(Issue(f"{path}.demand", f"{t.id} must send {t.demand:g} but at most {supply:g} can ever reach it "
                             "(its stock above min, its storage tanks' stock and the vessels that can unload into them)",
                             "infeasible"))
    total_demand = sum(t.demand for t in inst.charging_tanks)
    supply = sum(t.initial_volume - t.min for t in inst.tanks) + sum(v.volume for v in inst.vessels)
    if supply < total_demand - 1e-9:
        out.append(Issue("charging_tanks", f"total demand {total_demand:g} is larger than everything that can arrive or is "
                         f"in stock above tank minimums ({supply:g})", "infeasible"))
    rmin = sum(d.rate_min for d in inst.cdus) * P
    rmax = sum(d.rate_max for d in inst.cdus) * P
    if rmin > total_demand + 1e-9:
        out.append(Issue("cdus", f"the CDUs must run every period at their minimum rates ({rmin:g} over the horizon) but the "
                         f"charging tanks' demands add up to only {total_demand:g}", "infeasible"))
    fed = sum(t.demand for t in inst.charging_tanks if any(t.id in d.sources for d in inst.cdus))
    if rmax < fed - 1e-9:
        out.append(Issue("cdus", f"the demands add up to {fed:g} but the CDUs can take at most {rmax:g} over the horizon",
                         "infeasible"))
    for i, d in enumerate(inst.cdus):
        if d.rate_max < d.rate_min:
            continue
        usable = [c for c in d.sources if inst.tank(c).demand > 0]
        if not usable:
            out.append(Issue(f"cdus[{i}].from", f"{d.id} must run every period but none of its tanks "
                             f"({', '.join(d.sources)}) has any demand to send", "infeasible"))
        if len(d.sources) == 1 and d.rate_min > 0:
            # its only tank sends in every period, so it can never receive (rule 3): only its own stock is there
            c = inst.tank(d.sources[0])
            need = max(c.demand, d.rate_min * P)
            have = c.initial_volume - c.min
            if need > have + 1e-9:
                out.append(Issue(f"cdus[{i}].from", f"{d.id} is fed only by {c.id}, which must then send in every period "
                                 f"and so can never be refilled (a tank never receives and sends in one period); it holds "
                                 f"{have:g} above its minimum but must send {need:g}: give {d.id} a second tank",
                                 "infeasible"))
    return out
