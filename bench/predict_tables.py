#!/usr/bin/python3
# predict_tables.py — formats bench/results/predict_eval*.txt (weft predict eval output) as the
# markdown tables of README/docs: one file -> the per-set table with bootstrap intervals; several
# files -> one verdict line per set and file. Formatting only: every number comes from the files.
# usage: /usr/bin/python3 bench/predict_tables.py FILE [FILE...]
import sys,re
def parse(path):
    L=open(path).read().splitlines()
    main={}; boot={}; mode=0
    for l in L:
        if l.startswith('set ('):
            mode+=1; continue
        if l.startswith('time:') or not l.strip(): continue
        if mode in (1,) and '|' in l:
            parts=[p.strip() for p in l.split('|')]
            name_n=parts[0].split(); name=name_n[0]; n=int(name_n[1])
            m=parts[1].split(); c=parts[2].split(); p=parts[3].split(); v=parts[4]
            main[name]=dict(n=n,rho=float(m[0]),tau=float(m[1]),mae=float(m[2]),cov=float(m[3]),
                crho=float(c[0]),cmae=float(c[2]),prho=float(p[0]),pmae=float(p[2]),verdict=v)
        elif mode==2 and '|' in l:
            parts=[p.strip() for p in l.split('|')]
            name=parts[0].split()[0]
            nums=[float(x) for x in re.findall(r'-?\d+\.\d+',' '.join(parts[1:]))]
            # rho lo hi | dlo dhi | pbeats | dc lo hi | dp lo hi | pboth
            boot[name]=dict(lo=nums[1],hi=nums[2],dlo=nums[3],dhi=nums[4],pb=nums[5],dclo=nums[6],dchi=nums[7],dplo=nums[8],dphi=nums[9],pboth=nums[10])
    return main,boot
def f(x): return f"{x:.3f}".replace('-','−')
def ci(a,b): return f"[{f(a)}, {f(b)}]"
def verdict(v):
    return 'yes' if v=='yes' else '**no** '+v[3:].replace('rho','ρ')
files=sys.argv[1:]
if len(files)==1:
    m,b=parse(files[0])
    print("| set | n | ρ | ρ 90% CI | ρ const | ρ prompt-len | d(ρ) vs plen 90% CI | MAE | MAE const | MAE plen | dMAE vs const 90% CI | dMAE vs plen 90% CI | cov90 | P(both) | beats both |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k,r in m.items():
        bb=b[k]
        print(f"| {k} | {r['n']} | {f(r['rho'])} | {ci(bb['lo'],bb['hi'])} | {f(r['crho'])} | {f(r['prho'])} | {ci(bb['dlo'],bb['dhi'])} | {f(r['mae'])} | {f(r['cmae'])} | {f(r['pmae'])} | {ci(bb['dclo'],bb['dchi'])} | {ci(bb['dplo'],bb['dphi'])} | {f(r['cov'])} | {f(bb['pboth'])} | {verdict(r['verdict'])} |")
else:
    ps=[parse(x) for x in files]
    names=list(ps[0][0].keys())
    print("| set | "+" | ".join(sys.argv[i+1].split('/')[-1] for i in range(len(files)))+" |")
    print("|---|"+"---|"*len(files))
    for k in names:
        cells=[]
        for m,b in ps:
            r=m[k]; cells.append(f"{verdict(r['verdict'])}: ρ {f(r['rho'])} vs {f(max(r['crho'],r['prho']))}, MAE {f(r['mae'])} vs {f(min(r['cmae'],r['pmae']))}; P(both) {f(b[k]['pboth'])}")
        print(f"| {k} | "+" | ".join(cells)+" |")
