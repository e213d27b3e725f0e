#!/usr/bin/env python3
"""Independent reference implementation of the "predict-age" feature contract.

Follows ../shared/FEATURES.md (beside this repository), section 3 ("Features table") and 3.1 ("Bad and
odd input"), literally. Plain Python 3.11, standard library only. Meant for
differential testing against the real feature-parser, so it favours precision
over speed.

Usage:
    python3 scripts/reference_features.py 2025-07-01 < raw.ndjson > features.ndjson

Input: NDJSON on stdin, one raw row per line (the raw table keys of section 1).
The six JSON columns (education, work_experience, skills, interests,
certifications, languages) are JSON strings holding the document text, or JSON
null. The first argument is the reference date R (default 2025-07-01).

Output: NDJSON on stdout, one object per input row, in input order, with the 21
feature names of section 3 as keys (NULL is null, booleans true/false, float32
features as the float32-rounded value printed with repr), plus "_rejected": the
sorted names of the JSON columns rejected in that row.
"""

import json
import re
import struct
import sys

sys.setrecursionlimit(20000)

JSON_COLUMNS = (
    "education",
    "work_experience",
    "skills",
    "interests",
    "certifications",
    "languages",
)

FEATURES = (
    "pid",
    "education_level_encoded",
    "graduation_year",
    "number_of_schools",
    "number_of_jobs",
    "skill_count",
    "first_job_start_year",
    "current_job_start_year",
    "total_career_years",
    "job_churn_rate",
    "avg_job_tenure_months",
    "longest_job_tenure_months",
    "current_job_tenure_months",
    "distinct_companies",
    "max_seniority_encoded",
    "has_management_title",
    "certification_count",
    "language_count",
    "interest_count",
    "linkedin_connections",
    "inferred_years_experience",
)

INT16_MIN, INT16_MAX = -32768, 32767
MAX_DEPTH = 1024

# --------------------------------------------------------------------------
# Strict JSON (RFC 8259) on top of the json module
# --------------------------------------------------------------------------


class StrictJSONError(ValueError):
    pass


def _reject_constant(name):
    raise StrictJSONError("non-standard constant %r" % name)


def _strict_float(s):
    v = float(s)
    if v == float("inf") or v == float("-inf") or v != v:
        raise StrictJSONError("number overflows a 64-bit float: %s" % s[:40])
    return v


def _strict_int(s):
    v = int(s)  # may raise ValueError for > 4300 digits: overflows a float anyway
    try:
        float(v)
    except OverflowError:
        raise StrictJSONError("integer overflows a 64-bit float")
    return v


_DECODER = json.JSONDecoder(
    parse_float=_strict_float,
    parse_int=_strict_int,
    parse_constant=_reject_constant,
    strict=True,  # no unescaped control characters inside strings
)

_SURROGATE = re.compile("[\ud800-\udfff]")
# Tokenizer for the depth pre-scan: whole strings (with escapes), or brackets.
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_JSON_WS = " \t\r\n"


def _too_deep(text):
    """True when the text nests containers deeper than MAX_DEPTH levels.

    Exact for any valid JSON text; for invalid text the answer does not matter
    (it is rejected either way)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for m in _DEPTH_TOKEN.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c == "]" or c == "}":
            depth -= 1
    return False


def _has_surrogate(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                if _SURROGATE.search(k):
                    return True
                stack.append(x)
    return False


def strict_loads(text):
    """Parse one complete JSON text strictly; raise on anything RFC 8259 forbids."""
    if _SURROGATE.search(text):
        # a raw lone surrogate cannot come from valid UTF-8
        raise StrictJSONError("invalid UTF-8 (lone surrogate)")
    if _too_deep(text):
        raise StrictJSONError("nesting deeper than %d levels" % MAX_DEPTH)
    # json.loads semantics: leading/trailing JSON whitespace only, no trailing data,
    # a leading BOM is an error.
    if text.startswith("\ufeff"):
        raise StrictJSONError("unexpected BOM")
    value = _DECODER.decode(text)
    if _has_surrogate(value):
        raise StrictJSONError("lone UTF-16 surrogate in \\u escape")
    return value


def parse_cell(raw):
    """Return (rejected: bool, array_or_None)."""
    if raw is None:
        return False, []
    if not isinstance(raw, str):
        # Not expected (cells are JSON strings); be robust: use its JSON text.
        raw = json.dumps(raw, ensure_ascii=False, allow_nan=True)
    if raw.strip(_JSON_WS) == "":
        return False, []
    try:
        value = strict_loads(raw)
    except (ValueError, RecursionError, OverflowError, MemoryError):
        return True, None
    if value is None:
        return False, []
    if isinstance(value, list):
        return False, value
    return True, None


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------

_DIGITS = frozenset("0123456789")


def _is_digits(s):
    return len(s) > 0 and all(c in _DIGITS for c in s)


def _days_in_month(y, m):
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return 29 if leap else 28
    if m in (4, 6, 9, 11):
        return 30
    return 31


def parse_date(v):
    """(year, month, day) or None. Only JSON strings YYYY, YYYY-MM, YYYY-MM-DD."""
    if not isinstance(v, str):
        return None
    n = len(v)
    if n not in (4, 7, 10):
        return None
    if not _is_digits(v[0:4]):
        return None
    y = int(v[0:4])
    m = 1
    d = 1
    if n >= 7:
        if v[4] != "-" or not _is_digits(v[5:7]):
            return None
        m = int(v[5:7])
        if not 1 <= m <= 12:
            return None
    if n == 10:
        if v[7] != "-" or not _is_digits(v[8:10]):
            return None
        d = int(v[8:10])
        if not 1 <= d <= _days_in_month(y, m):
            return None
    return (y, m, d)


def months(a, b):
    return (b[0] - a[0]) * 12 + (b[1] - a[1])


# --------------------------------------------------------------------------
# Words and keywords
# --------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
)
_SPLIT = re.compile("[^a-z0-9]+")


def ascii_lower(s):
    return s.translate(_ASCII_LOWER)


def words(text):
    t = ascii_lower(text).replace(".", "")
    return [w for w in _SPLIT.split(t) if w]


EDU_ONE = {}
for _w in ("phd", "doctor", "doctorate", "doctorates", "doctoral"):
    EDU_ONE[_w] = 5
for _w in ("master", "masters", "mba", "msc", "ms", "meng"):
    EDU_ONE[_w] = 4
for _w in ("bachelor", "bachelors", "bsc", "bs", "ba", "beng", "btech"):
    EDU_ONE[_w] = 3
for _w in ("associate", "associates"):
    EDU_ONE[_w] = 2
for _w in ("diploma", "ged"):
    EDU_ONE[_w] = 1
EDU_TWO = {("ph", "d"): 5, ("high", "school"): 1}

SEN_ONE = {}
for _w in ("chief", "ceo", "cto", "cfo", "coo", "cio", "cxo", "founder", "owner"):
    SEN_ONE[_w] = 7
for _w in ("vp", "svp", "evp", "president"):
    SEN_ONE[_w] = 6
SEN_ONE["director"] = 5
for _w in ("manager", "managers", "head"):
    SEN_ONE[_w] = 4
for _w in ("senior", "sr", "lead", "leader", "principal", "staff"):
    SEN_ONE[_w] = 3
for _w in ("junior", "jr", "entry"):
    SEN_ONE[_w] = 1
for _w in ("intern", "interns", "trainee"):
    SEN_ONE[_w] = 0
SEN_TWO = {}


def best_match(text, one, two):
    """Highest keyword value matched in one text, or None when nothing matches."""
    ws = words(text)
    best = None
    for w in ws:
        v = one.get(w)
        if v is not None and (best is None or v > best):
            best = v
    if two:
        for i in range(len(ws) - 1):
            v = two.get((ws[i], ws[i + 1]))
            if v is not None and (best is None or v > best):
                best = v
    return best


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def cap16(n):
    return INT16_MAX if n > INT16_MAX else n


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def copy_int(v):
    if is_int(v):
        return v
    if isinstance(v, float) and v == v and v not in (float("inf"), float("-inf")) and v.is_integer():
        return int(v)
    return None


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------


def education_own_level(el):
    """Own level of an education element that is an object."""
    level = 0
    degrees = el.get("degrees")
    if isinstance(degrees, list):
        for dg in degrees:
            if isinstance(dg, str):
                b = best_match(dg, EDU_ONE, EDU_TWO)
                if b is not None and b > level:
                    level = b
    school = el.get("school")
    if isinstance(school, dict):
        st = school.get("type")
        if isinstance(st, str) and ascii_lower(st) == "secondary school":
            if level < 1:
                level = 1
    return level


def education_features(edu):
    """(education_level_encoded, graduation_year)."""
    top = 0
    grad_hi = None  # latest end date over elements with own level >= 3
    grad_all = None  # latest end date over all elements
    for el in edu:
        if not isinstance(el, dict):
            continue
        lvl = education_own_level(el)
        if lvl > top:
            top = lvl
        end = parse_date(el.get("end_date"))
        if end is not None:
            if grad_all is None or end > grad_all:
                grad_all = end
            if lvl >= 3 and (grad_hi is None or end > grad_hi):
                grad_hi = end
    if grad_hi is not None:
        grad = grad_hi[0]
    elif grad_all is not None:
        grad = grad_all[0]
    else:
        grad = None
    return top, grad


def job_rank(job):
    best = None
    title = job.get("title")
    if isinstance(title, dict):
        levels = title.get("levels")
        if isinstance(levels, list):
            for lv in levels:
                if isinstance(lv, str):
                    b = best_match(lv, SEN_ONE, SEN_TWO)
                    if b is not None and (best is None or b > best):
                        best = b
        name = title.get("name")
        if isinstance(name, str):
            b = best_match(name, SEN_ONE, SEN_TWO)
            if b is not None and (best is None or b > best):
                best = b
    return 2 if best is None else best


def work_features(jobs, R):
    out = {}
    objs = [j for j in jobs if isinstance(j, dict)]

    # 7 first_job_start_year
    first = None
    for j in objs:
        s = parse_date(j.get("start_date"))
        if s is not None and (first is None or s < first):
            first = s
    out["first_job_start_year"] = None if first is None else first[0]

    # spans for 11/12
    spans = []
    for j in objs:
        s = parse_date(j.get("start_date"))
        if s is None:
            continue
        e = parse_date(j.get("end_date"))
        if e is None:
            e = R
        spans.append(max(0, months(s, e)))
    if spans:
        out["avg_job_tenure_months"] = f32(sum(spans) / len(spans))
        out["longest_job_tenure_months"] = max(spans)
    else:
        out["avg_job_tenure_months"] = None
        out["longest_job_tenure_months"] = None

    # 8 current job
    chosen = None  # (start_date, job) ; start may be None for a primary job
    primary = None
    for j in objs:
        if j.get("is_primary") is True:
            primary = j
            break
    if primary is not None:
        s = parse_date(primary.get("start_date"))
        chosen = (s, primary) if s is not None else None
    else:
        latest = None
        latest_job = None
        for j in objs:
            s = parse_date(j.get("start_date"))
            if s is not None and (latest is None or s > latest):
                latest = s
                latest_job = j
        if latest is not None:
            chosen = (latest, latest_job)
    if chosen is None:
        out["current_job_start_year"] = None
        out["current_job_tenure_months"] = None
    else:
        s, j = chosen
        e = parse_date(j.get("end_date"))
        if e is None:
            e = R
        out["current_job_start_year"] = s[0]
        out["current_job_tenure_months"] = max(0, months(s, e))

    # 14 distinct_companies
    names = set()
    for j in objs:
        comp = j.get("company")
        if isinstance(comp, dict):
            nm = comp.get("name")
            if isinstance(nm, str):
                key = ascii_lower(nm.strip())
                if key != "":
                    names.add(key)
    out["distinct_companies"] = cap16(len(names))

    # 15/16 seniority
    top = 0
    for j in objs:
        r = job_rank(j)
        if r > top:
            top = r
    out["max_seniority_encoded"] = top
    out["has_management_title"] = top >= 4
    return out


def compute_row(row, R):
    cells = {}
    rejected = []
    for col in JSON_COLUMNS:
        bad, arr = parse_cell(row.get(col))
        if bad:
            rejected.append(col)
            cells[col] = None
        else:
            cells[col] = arr

    f = {name: None for name in FEATURES}
    f["pid"] = row.get("pid")

    edu = cells["education"]
    work = cells["work_experience"]

    if edu is not None:
        lvl, grad = education_features(edu)
        f["education_level_encoded"] = lvl
        f["graduation_year"] = grad
        f["number_of_schools"] = cap16(len(edu))

    if work is not None:
        f["number_of_jobs"] = cap16(len(work))
        f.update(work_features(work, R))

    if edu is not None and work is not None:
        grad = f["graduation_year"]
        first = f["first_job_start_year"]
        if grad is not None:
            tcy = R[0] - grad
        elif first is not None:
            tcy = R[0] - first
        else:
            tcy = None
        if tcy is not None:
            tcy = max(0, tcy)
            f["total_career_years"] = tcy
            f["job_churn_rate"] = f32(f["number_of_jobs"] / max(tcy, 1))

    for col, feat in (
        ("skills", "skill_count"),
        ("certifications", "certification_count"),
        ("languages", "language_count"),
        ("interests", "interest_count"),
    ):
        if cells[col] is not None:
            f[feat] = cap16(len(cells[col]))

    f["linkedin_connections"] = copy_int(row.get("linkedin_connections"))
    iye = copy_int(row.get("inferred_years_experience"))
    if iye is not None and not (INT16_MIN <= iye <= INT16_MAX):
        iye = None
    f["inferred_years_experience"] = iye

    f["_rejected"] = sorted(rejected)
    return f


def main(argv):
    ref = argv[1] if len(argv) > 1 else "2025-07-01"
    R = parse_date(ref)
    if R is None:
        sys.stderr.write("bad reference date: %r\n" % ref)
        return 2
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin.buffer, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            sys.stderr.write("line %d: not a JSON object: %s\n" % (lineno, e))
            return 2
        if not isinstance(row, dict):
            sys.stderr.write("line %d: not a JSON object\n" % lineno)
            return 2
        out.write(json.dumps(compute_row(row, R)))
        out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
