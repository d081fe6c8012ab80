import json,sys
# subset.py IN OUT: keep lines of the Llama-style held-out sweeps
with open(sys.argv[2],'w') as o:
    for l in open(sys.argv[1]):
        if json.loads(l)['sweep'].startswith('evaluate-llama-2'): o.write(l)
