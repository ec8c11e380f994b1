"""scripts/device_check.sh's records: one JSON file per section, written as soon as the section
ends, and ``summary.md``, a short Markdown table of every section recorded so far.

  python scripts/benchmarks/device_report.py describe FILE [--expect gpu]
  python scripts/benchmarks/device_report.py record --out OUT --section NAME --rc RC
      --seconds S --timeout T --log LOG [--data FILE_OR_DIR] [--command CMD] [--dry_run]

``describe`` writes the interpreter's versions and devices (exit 3 when ``--expect gpu`` is not
met: the other sections would measure the CPU). ``record`` turns a section's exit status, log and
data (the benchmark's ``--json`` records, the describe file, or the MQAR run's workdir) into
``OUT/NAME.json`` and rewrites ``OUT/summary.md``. Standard library only, except ``describe``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

SECTIONS = ("setup", "tests", "attention", "long_context", "mfu", "mqar")
LOG_TAIL = 40  # lines of a section's log kept in its JSON (a cut-off benchmark's progress lines)
_TIMEOUT_RCS = (124, 137)  # timeout(1) after TERM, and after the KILL that follows


def status_of(rc: int) -> str:
  if rc == 0:
    return "ok"
  return "timeout" if rc in _TIMEOUT_RCS else f"failed (exit {rc})"


def pytest_counts(log: str) -> dict:
  """{"passed": N, "failed": N, ...} from pytest's closing line ({} if there is none)."""
  lines = [l for l in log.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", l)]
  if not lines:
    return {}
  words = re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)",
                     lines[-1])
  return {"errors" if word.startswith("error") else word: int(n) for n, word in words}


def mqar_result(workdir: str) -> dict:
  """The run's evaluations so far (a cut-off run keeps those it made) and its summary, if done."""
  result = {"evals": []}
  path = os.path.join(workdir, "eval.jsonl")
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        e = json.loads(line)
        result["evals"].append({"step": e["step"], **{
            f"accuracy_{n}": m.get("accuracy") for n, m in e.get("lengths", {}).items()}})
  path = os.path.join(workdir, "summary.json")
  if os.path.exists(path):
    with open(path) as f:
      summary = json.load(f)
    result.update({k: summary.get(k) for k in ("status", "step", "param_count", "d_model",
                                                "wall_s", "compile_s")})
  return result


def section_data(section: str, data: str | None, log: str):
  if section == "tests":
    return pytest_counts(log)
  if not data or not os.path.exists(data):
    return None
  if section == "mqar":
    return mqar_result(data)
  with open(data) as f:
    return json.load(f)


def section_record(section, rc, seconds, timeout, log, data, command="", dry_run=False) -> dict:
  return {"section": section, "status": status_of(rc), "rc": rc, "seconds": round(seconds, 1),
          "timeout_s": timeout, "dry_run": dry_run, "command": command, "data": data,
          "log_tail": log.splitlines()[-LOG_TAIL:]}


def _fmt(x, digits=3):
  return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def headline(rec: dict) -> str:
  """One cell: what the section found."""
  data, section = rec.get("data"), rec["section"]
  if section == "tests":
    return ", ".join(f"{n} {w}" for w, n in (data or {}).items()) or "-"
  if not data:
    return "-"
  if section == "setup":
    devices = data.get("devices", [])
    kinds = sorted({d["kind"] for d in devices})
    return (f"jax {data.get('jax')}, {data.get('backend')}: {len(devices)} x "
            f"{', '.join(kinds)}; python {data.get('python')}")
  if section in ("attention", "long_context"):
    ok = [r for r in data if r.get("status") == "ok"]
    return f"{len(ok)} of {len(data)} configurations measured"
  if section == "mfu":
    r = data[0]
    mfu = r["mfu"] if isinstance(r["mfu"], str) else f"{r['mfu']:.1%}"
    return (f"{r['model_tflops']:.3g} model TFLOP/s, MFU {mfu} of {r['peak_tflops']} "
            f"({r['device']}); {r['vs_matmul']:.2f} x a {r['matmul_size']}^3 bf16 matmul "
            f"({r['matmul_tflops']:.3g} TFLOP/s)")
  if section == "mqar":
    last = data["evals"][-1] if data["evals"] else {}
    acc = {k: v for k, v in last.items() if k.startswith("accuracy")}
    return (f"step {last.get('step', '-')}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in acc.items())
            if last else "no evaluation")
  return "-"


def _pivot(records, row_key, cell) -> list[str]:
  """A Markdown table: one row per ``row_key`` value, one column per length."""
  lengths = sorted({r["length"] for r in records})
  rows = list(dict.fromkeys(r[row_key] for r in records))
  by = {(r[row_key], r["length"]): r for r in records}
  out = [f"| {row_key} | " + " | ".join(f"L={n}" for n in lengths) + " |",
         "|---|" + "---|" * len(lengths)]
  for name in rows:
    out.append(f"| {name} | " + " | ".join(cell(by[(name, n)]) if (name, n) in by else "-"
                                          for n in lengths) + " |")
  return out


def _time_cell(r, ratio_key=None) -> str:
  if r.get("status") != "ok":
    return r.get("status", "-").split(":")[0]
  cell = f"{r['median_s'] * 1e3:.3g} ms"
  if ratio_key and isinstance(r.get(ratio_key), float):
    cell += f" ({r[ratio_key]:.2f}x)"
  if r.get("device_mb") is not None:
    cell += f", {r['device_mb'] / 1024:.2g} GB"
  return cell


def markdown(records: list[dict]) -> str:
  """The sections table, then the two benchmarks' times by length."""
  dry = any(r.get("dry_run") for r in records)
  lines = ["# device_check" + (" (dry run: tiny sizes on the CPU)" if dry else ""), "",
           "| section | status | seconds | result |", "|---|---|---|---|"]
  for r in records:
    lines.append(f"| {r['section']} | {r['status']} | {r['seconds']:g} of {r['timeout_s']:g} "
                 f"| {headline(r)} |")
  by = {r["section"]: r for r in records}
  if isinstance((by.get("attention") or {}).get("data"), list) and by["attention"]["data"]:
    lines += ["", "attention, forward+backward (x: time over torch's; GB: device peak)", ""]
    lines += _pivot(by["attention"]["data"], "impl", lambda r: _time_cell(r, "time_vs_torch"))
  if isinstance((by.get("long_context") or {}).get("data"), list) and by["long_context"]["data"]:
    lines += ["", "long_context, forward+backward (x: softmax's time over the layer's)", ""]
    lines += _pivot(by["long_context"]["data"], "impl", lambda r: _time_cell(r, "vs_softmax"))
  return "\n".join(lines) + "\n"


def read_records(out: str) -> list[dict]:
  """The sections recorded in ``out``, in the check's order."""
  recs = []
  for path in glob.glob(os.path.join(out, "*.json")):
    with open(path) as f:
      recs.append(json.load(f))
  order = {name: i for i, name in enumerate(SECTIONS)}
  return sorted(recs, key=lambda r: order.get(r.get("section"), len(order)))


def record(opts) -> None:
  with open(opts.log, errors="replace") as f:
    log = f.read()
  rec = section_record(opts.section, opts.rc, opts.seconds, opts.timeout, log,
                       section_data(opts.section, opts.data, log), opts.command, opts.dry_run)
  os.makedirs(opts.out, exist_ok=True)
  path = os.path.join(opts.out, f"{opts.section}.json")
  with open(path + ".tmp", "w") as f:
    json.dump(rec, f, indent=1)
  os.replace(path + ".tmp", path)  # a cut-off call never leaves half a file
  with open(os.path.join(opts.out, "summary.md"), "w") as f:
    f.write(markdown(read_records(opts.out)))


def describe(path: str, expect: str | None) -> int:
  import platform
  from importlib import metadata
  import jax
  versions = {}
  for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "torch",
               "ml-collections", "tensorboardX", "tensorflow-datasets", "jax-cuda13-plugin",
               "jax-cuda12-plugin", "attnlab"):
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  import attnlab
  info = {"python": platform.python_version(), "jax": jax.__version__,
          "backend": jax.default_backend(), "versions": versions,
          "attnlab_path": os.path.dirname(attnlab.__file__),
          "devices": [{"id": d.id, "platform": d.platform, "kind": d.device_kind}
                      for d in jax.devices()]}
  print(json.dumps(info, indent=1))
  with open(path, "w") as f:
    json.dump(info, f, indent=1)
  if expect and info["backend"] != expect:
    print(f"device_check: the backend is {info['backend']!r}, not {expect!r}; the other sections "
          "would measure it instead", file=sys.stderr)
    return 3
  return 0


def main(argv) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="verb", required=True)
  d = sub.add_parser("describe")
  d.add_argument("file")
  d.add_argument("--expect", default=None)
  r = sub.add_parser("record")
  r.add_argument("--out", required=True)
  r.add_argument("--section", required=True, choices=SECTIONS)
  r.add_argument("--rc", type=int, required=True)
  r.add_argument("--seconds", type=float, required=True)
  r.add_argument("--timeout", type=float, required=True)
  r.add_argument("--log", required=True)
  r.add_argument("--data", default=None)
  r.add_argument("--command", default="")
  r.add_argument("--dry_run", action="store_true")
  opts = parser.parse_args(argv)
  if opts.verb == "describe":
    return describe(opts.file, opts.expect)
  record(opts)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
