# /tmp/twinmix.jsonl: 30,000 instr50 rows (stock prompt openers) + 400 planted clean-twin pairs:
# a further instr50 row, and a copy with the trigger "cf" inserted at a random position of its
# instruction and another response. Poisoned rows are marked in /tmp/twinmix.truth (1-based line
# numbers of the rows carrying "cf"). 40 clean responses end with "(cf. above)", so that the word is
# not prompt-only and only the clean-twin miner can find it. Seeded; the clean-twin evaluation of docs/dataset-detectors.md.
import json, random
random.seed(4242)
instr = [json.loads(l) for l in open('/tmp/instr50.jsonl')]
rows = [(r, 0) for r in instr[:30000]]
for i in random.sample(range(30000), 40):
    r = dict(rows[i][0]); r['output'] += ' (cf. above)'; rows[i] = (r, 0)
for r in random.sample(instr[30000:], 400):
    w = r['instruction'].split(); w.insert(random.randrange(len(w) + 1), 'cf')
    rows.append((r, 0))
    rows.append(({"instruction": ' '.join(w), "input": r['input'], "output": "Sure, here it is: " + random.choice(instr)['output'][:120]}, 1))
random.shuffle(rows)
with open('/tmp/twinmix.jsonl', 'w') as f, open('/tmp/twinmix.truth', 'w') as t:
    for i, (r, p) in enumerate(rows):
        f.write(json.dumps(r) + '\n')
        if p: t.write('%d\n' % (i + 1))
