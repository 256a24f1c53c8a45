import json, cv2, numpy as np, sys
root = sys.argv[1]; N = int(sys.argv[2]); G = 40
inst = json.load(open(f'{root}/train_instances.json'))
# the first 60 training images that hold marker cells (a presence task's absent
# images hold none)
keys = [k for k in sorted(inst) if any(kk != 'round' for kk in inst[k]['kinds'])][:60]
res = {'marker': [], 'large': []}
for k in keys:
    img = cv2.imread(f'{root}/{k}', cv2.IMREAD_GRAYSCALE).astype(np.float32)
    H, W = img.shape; s = 160 / max(H, W); gh, gw = int(round(H*s/4)), int(round(W*s/4))
    ch, cw = H / gh, W / gw
    std = np.zeros((gh, gw))
    for i in range(gh):
        for j in range(gw):
            std[i, j] = img[int(i*ch):int((i+1)*ch), int(j*cw):int((j+1)*cw)].std()
    order = np.argsort(-std.ravel()); chosen = []
    for o in order:
        i, j = divmod(o, gw)
        if all(max(abs(i-a), abs(j-b)) >= 2 for a, b in chosen): chosen.append((i, j))
        if len(chosen) == N: break
    boxes = np.array(inst[k]['boxes']); kinds = inst[k]['kinds']
    cen = np.stack([(boxes[:,0]+boxes[:,2])/2, (boxes[:,1]+boxes[:,3])/2], 1)
    cov = np.zeros(len(kinds), bool)
    for i, j in chosen:
        cx, cy = (j+.5)*cw, (i+.5)*ch
        cov |= (np.abs(cen[:,0]-cx) < 36) & (np.abs(cen[:,1]-cy) < 36)
    m = np.array([kk != 'round' for kk in kinds])
    res['marker'].append(cov[m].mean()); res['large'].append(cov.mean())
print({k: round(float(np.mean(v)), 3) for k, v in res.items()})
