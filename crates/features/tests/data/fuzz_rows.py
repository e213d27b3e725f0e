# Deterministic odd and malformed predict-age rows (NDJSON on stdout) for the
# differential test against scripts/reference_features.py.
import json, random, sys
# usage: fuzz_rows.py [seed=7] [rows=2000]
SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 7
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
rnd = random.Random(SEED)
DEG = ["Bachelor of Science", "M.S.", "Ph.D.", "MBA", "high school", "Associate's", "diploma", "B.A.", "Ph. D.", "Doctorate", "certificate", "Ｍ.Ｓ", None, 3]
LEV = ["senior", "manager", "vp", "director", "cxo", "owner", "entry", "training", "intern", "Sr.", 4, None]
TIT = ["Senior Data Engineer", "Vice President, Sales", "Co-Founder & CEO", "Head of Ops", "Software Intern", "Staff Engineer", "analyst", "Jr. Dev", None]
def date():
    c = rnd.random()
    if c < 0.1: return None
    if c < 0.15: return rnd.choice(["2020-02-30", "bad", "2019-13", " 2018", 2017, "2016-02-29", "2000-02-29"])
    y = rnd.randint(1970, 2026); m = rnd.randint(1, 12); d = rnd.randint(1, 28)
    return rnd.choice(["%04d" % y, "%04d-%02d" % (y, m), "%04d-%02d-%02d" % (y, m, d)])
def edu():
    return {"school": rnd.choice([{"name": "u", "type": rnd.choice(["post-secondary institution", "Secondary School", "other"])}, None, "x"]),
            "degrees": rnd.choice([[rnd.choice(DEG) for _ in range(rnd.randint(0, 3))], "mba", None]),
            "majors": ["physics"], "start_date": date(), "end_date": date(), "gpa": 3.4}
def job(heavy):
    return {"company": rnd.choice([{"name": rnd.choice(["Acme", " acme ", "ACME", "Globex", "", "Ünicorn", "ünicorn"]), "size": "51-200"}, None, 5]),
            "title": rnd.choice([{"name": rnd.choice(TIT), "role": "eng", "levels": rnd.choice([[rnd.choice(LEV) for _ in range(rnd.randint(0, 2))], "senior", None])}, "CEO", None]),
            "start_date": date(), "end_date": date(), "is_primary": rnd.choice([True, False, None, 1, "true"]),
            "summary": ("lorem ipsum [x] {y} \"q\" " * (rnd.randint(3000, 5000) if heavy else rnd.randint(1, 20)))}
BAD = ["[", "{}", "[NaN]", "[1,]", "[\"\\ud800\"]", "[1e999]", "\u00a0", "'x'", "[1] 2", "[" * 1100 + "]" * 1100]
def cell(maker, heavy=False):
    c = rnd.random()
    if c < 0.03: return rnd.choice(BAD)
    if c < 0.08: return rnd.choice([None, "", "  \n", "null"])
    return json.dumps([maker(heavy) if rnd.random() > 0.05 else rnd.choice([1, None, "s"]) for _ in range(rnd.randint(0, 6))], ensure_ascii=rnd.random() < 0.5)
for i in range(ROWS):
    heavy = i % 100 == 0
    row = {"pid": "p%05d" % i, "gender": "male", "linkedin_connections": rnd.choice([None, 0, 500, 2**31 - 1]),
           "inferred_years_experience": rnd.choice([None, 0, 12, 32767, 32768, -32769, -5]),
           "education": cell(lambda h: edu()), "work_experience": cell(job, heavy),
           "skills": cell(lambda h: rnd.choice(["python", {"name": "sql"}, 3])),
           "interests": cell(lambda h: "x"), "certifications": cell(lambda h: {"name": "c"}),
           "languages": cell(lambda h: rnd.choice(["en", {"name": "fr"}])), "job_title_levels": "[not parsed"}
    print(json.dumps(row))
