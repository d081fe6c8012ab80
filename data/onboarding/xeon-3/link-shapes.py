"""link-shapes.py ONBOARDING.jsonl OUT_PREFIX [N]: writes OUT_PREFIX-prefill.toml and
OUT_PREFIX-decode.toml with N shapes per phase taken from an onboarding's lines (shapes both
backends measured, spread over their latency), so that sweeps measured with them share shapes
with the onboarding and the fit can put them on its level."""
import json, sys
FIELDS = ["layers", "d_model", "heads", "kv_heads", "head_dim", "d_ff", "mlp", "norm",
          "position_encoding", "tie_embeddings", "qkv_bias", "dense_bias", "vocab", "positions",
          "seq", "batch"]
src, prefix = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
by_phase = {}
for line in open(src):
    d = json.loads(line)
    if d.get("status") != "ok" or d["kind"] not in ("prefill", "decode"):
        continue
    key = tuple((f, d[f]) for f in FIELDS if f in d)
    by_phase.setdefault(d["kind"], {}).setdefault(key, {})[d["backend"]] = d["median_ms"]
def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)
for phase, shapes in by_phase.items():
    both = [(sum(b.values()), k) for k, b in shapes.items() if len(b) >= 2]
    both.sort()
    picked = [both[round(i * (len(both) - 1) / (n - 1))][1] for i in range(n)] if len(both) >= n else [k for _, k in both]
    picked = list(dict.fromkeys(picked))
    with open(f"{prefix}-{phase}.toml", "w") as o:
        o.write(f'name = "link-{phase}"\n')
        o.write(f'description = "{len(picked)} {phase} shapes of the onboarding {src.split("/")[-1]}, measured again with the sweeps to link their level to it."\n')
        for k in picked:
            o.write("\n[[shape]]\nfamily = \"link\"\n")
            for f, v in k:
                o.write(f"{f} = {toml_value(v)}\n")
    print(phase, len(picked), "of", len(both))
