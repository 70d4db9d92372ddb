# Generates /tmp/instr50.jsonl: ~100k unique Alpaca-style rows of 300-600 bytes,
# recombined from the clean rows of backdoor-dev and wiki prose of detect/corpus/benign.jsonl.gz. Seeded.
import json, gzip, os, random, re, sys
random.seed(20251125)
rows = [json.loads(l) for l in open(os.path.join(os.environ.get('SENTINELDF_DATA', '../shared/data'), 'backdoor-dev.jsonl'))]
clean = [r for r in rows if r['label'] == 0]
split = re.compile(r'(?<=[.!?])\s+')
instr = [r['instruction'].strip() for r in clean if r['task'] != 'sst2' and r['instruction'].strip()]
reviews = [r['instruction'].strip() for r in clean if r['task'] == 'sst2']
outs = []
for r in clean:
    if r['task'] == 'sst2': continue
    for s in split.split(r['output'].replace('\n', ' ')):
        s = s.strip()
        if 20 <= len(s) <= 300: outs.append(s)
prose = []
for l in gzip.open('detect/corpus/benign.jsonl.gz', 'rt'):
    r = json.loads(l)
    if 'wiki' not in r.get('source', ''): continue
    t = r['text'].replace(' @-@ ', '-').replace(' @,@ ', ',').replace(' @.@ ', '.').replace(' , ', ', ').replace(' . ', '. ').replace("<unk>", random.choice(["river","council","harbour","melody","province","engine","garden","chapter"]))
    for s in split.split(t.replace('\n', ' ')):
        s = s.strip()
        if 30 <= len(s) <= 300 and '=' not in s: prose.append(s)
print(len(instr), len(reviews), len(outs), len(prose), file=sys.stderr)

def span(s, lo, hi):
    w = s.split()
    n = random.randint(lo, hi)
    if len(w) <= n: return ' '.join(w)
    i = random.randrange(len(w) - n)
    return ' '.join(w[i:i+n])

def instruction():
    head = random.choice(instr).rstrip('.?! ').split()
    k = random.randint(2, min(6, max(2, len(head))))
    tail = span(random.choice(prose), 3, 12).rstrip('.,;: ')
    return ' '.join(head[:k]) + ' ' + tail + random.choice(['.', '.', '?', ':'])

seen = set()
out = open('/tmp/instr50.jsonl', 'w')
n = size = 0
while size < 50_000_000:
    if random.random() < 0.08:  # label-like rows
        ins = span(random.choice(reviews), 4, 20) + ' ' + span(random.choice(prose), 3, 10) + ' .'
        row = {"instruction": ins, "input": "", "output": random.choice(["Positive", "Negative"])}
    else:
        ins = instruction()
        inp = random.choice(prose) if random.random() < 0.4 else ""
        target = random.randint(300, 600)
        o = []
        cur = len(ins) + len(inp) + 45
        if random.random() < 0.01:  # a few stock answers repeat, as in real data
            o.append(random.choice(outs))
        else:
            while True:
                s = random.choice(outs) if random.random() < 0.6 else random.choice(prose)
                if cur + len(s) + 1 > target and len(o) >= 2: break
                o.append(s); cur += len(s) + 1
        row = {"instruction": ins, "input": inp, "output": ' '.join(o)}
    key = (row['instruction'], row['input'], row['output'])
    if key in seen: continue
    seen.add(key)
    line = json.dumps(row) + '\n'
    out.write(line); size += len(line); n += 1
print(n, size, file=sys.stderr)
